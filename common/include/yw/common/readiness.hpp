#pragma once
// Why the worker is not ready: a process-wide set of named reasons that /readyz lists (design.md
// §6). Each part of the worker owns its names ("storage.upload", "database.pool", ...), sets one
// while its trouble lasts and clears it when the trouble is over; /readyz answers 503 while any
// is set. Adding a reason needs no change to the HTTP route. Thread-safe.
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace yw {

class Readiness {
 public:
  static Readiness& global();

  // Sets (or replaces) the reason `name`. Returns true when it was not set with this text
  // before, so a caller can log a change once instead of once per job.
  bool set(std::string_view name, std::string_view reason);
  void clear(std::string_view name);
  // name -> reason of every reason set now.
  std::map<std::string, std::string, std::less<>> reasons() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::string, std::less<>> reasons_;
};

}  // namespace yw
