#pragma once
// LISTEN on pg-boss's channel (pgboss-protocol.md §9) on a dedicated connection, delivering each
// notification's payload (a queue name) to a callback from the listener's own thread. A lost
// connection is re-established with backoff (0.1 s doubling to 5 s); after every (re)connect the
// callback receives "" meaning "fetch every notify queue now", because notifications sent while
// we were away are lost.
#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace yw::queue {

class Listener {
 public:
  using Callback = std::function<void(const std::string& queue)>;

  Listener(std::string url, std::string channel, Callback callback);
  ~Listener();  // stops and joins
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Whether LISTEN is established right now.
  bool listening() const { return listening_.load(); }
  // How many times the connection was re-established after a loss.
  int reconnects() const { return reconnects_.load(); }

 private:
  void run(std::stop_token stop);

  std::string url_;
  std::string channel_;
  Callback callback_;
  std::atomic<bool> listening_{false};
  std::atomic<int> reconnects_{0};
  std::jthread thread_;
};

}  // namespace yw::queue
