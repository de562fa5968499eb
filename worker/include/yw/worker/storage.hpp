#pragma once
// Where job audio comes from and artifacts go (design.md §2). Implemented with the storage work
// (file:// under YW_INPUT_ROOTS, http(s):// with a size cap, supabase://bucket/path).
#include <filesystem>
#include <string>
#include <string_view>

#include "yw/worker/config.hpp"

namespace yw::worker {

// A local copy of an input: the file itself for file:// URIs, a temporary download otherwise
// (removed on destruction).
class LocalInput {
 public:
  LocalInput() = default;
  LocalInput(std::filesystem::path path, bool temporary)
      : path_(std::move(path)), temporary_(temporary) {}
  LocalInput(LocalInput&& other) noexcept;
  LocalInput& operator=(LocalInput&& other) noexcept;
  LocalInput(const LocalInput&) = delete;
  LocalInput& operator=(const LocalInput&) = delete;
  ~LocalInput();
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  bool temporary_ = false;
};

// Resolves an audio URI. Throws yw::InputError for URIs that can never work (unknown scheme,
// a path outside YW_INPUT_ROOTS, a 404, an HTML page) and yw::Error for transient trouble.
LocalInput fetch_input(std::string_view uri, const WorkerConfig& config);

// Stores `local_file` as artifact `key` ("<record_id or job id>/<name>.<ext>") under
// YW_OUTPUT_URI, completely (temporary name then rename, or a whole upload), and returns its URI.
// A retry overwrites the same key.
std::string put_artifact(const std::filesystem::path& local_file, std::string_view key,
                         const WorkerConfig& config);

}  // namespace yw::worker
