#pragma once
// Where job audio comes from and artifacts go (design.md §2). Implemented with the storage work
// (file:// under YW_INPUT_ROOTS, http(s):// with a size cap, supabase://bucket/path).
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

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

// Limits on remote downloads (http(s):// and supabase://).
struct FetchLimits {
  std::uint64_t max_bytes = std::uint64_t{2} << 30;  // a larger body is an InputError
  long connect_timeout_s = 10;                       // TCP + TLS handshake
  long total_timeout_s = 600;                        // whole transfer
  long stall_timeout_s = 30;  // fewer than kStallBytesPerSecond for this long: give up
  static constexpr long kStallBytesPerSecond = 1024;
};

// Resolves an audio URI. Throws yw::InputError for URIs that can never work (unknown scheme,
// a path outside YW_INPUT_ROOTS, a 404, an HTML page) and yw::Error for transient trouble.
// Messages start with "audio: " and name the URI (without credentials).
//  - file:///abs/path (or file://./relative, resolved against the working directory): must
//    resolve (symlinks followed) to a regular file inside one of config.input_roots; any `..`
//    component is refused before resolution.
//  - http(s)://: downloaded to a temporary file (same extension) with `limits`; 4xx and a
//    text/HTML body are InputErrors, 5xx, 408, 429 and timeouts are retryable.
//  - supabase://bucket/path: GET {SUPABASE_URL}/storage/v1/object/authenticated/{bucket}/{path}
//    with `Authorization: Bearer <key>` and `apikey: <key>` (the service role key when set,
//    else the anon key).
LocalInput fetch_input(std::string_view uri, const WorkerConfig& config);
LocalInput fetch_input(std::string_view uri, const WorkerConfig& config, const FetchLimits& limits);

// Stores `local_file` as artifact `key` ("<record_id or job id>/<name>.<ext>") under
// YW_OUTPUT_URI, completely (temporary name then rename, or a whole upload), and returns its URI.
// A retry overwrites the same key. `key` must be relative and free of `..` (yw::InputError).
//  - file://DIR: written as DIR/.<name>.tmp-* in the destination folder, fsync'ed, renamed over
//    DIR/key; a failed write (disk full) removes the temporary and throws a retryable yw::Error.
//    Returns file://<absolute path>.
//  - supabase://bucket/prefix: POST {SUPABASE_URL}/storage/v1/object/{bucket}/{prefix}/{key}
//    with `x-upsert: true` (so a retry replaces the object). Returns supabase://bucket/prefix/key.
std::string put_artifact(const std::filesystem::path& local_file, std::string_view key,
                         const WorkerConfig& config);
// The same for bytes in memory (a JSON document): written to a temporary file, then put_artifact.
std::string put_artifact_bytes(std::string_view bytes, std::string_view key,
                               const WorkerConfig& config);

// While a storage fault holds claims (supabase_errors.hpp): GETs each held fault's bucket and
// ends the hold when a 200 answer differs from the first one this probe saw (the bucket was
// created or its settings changed). Called every kStorageProbeInterval by the
// worker; one request per hold, none when nothing is held. Never throws.
void probe_storage(const WorkerConfig& config);

// The first segment of artifact keys for a job: its record_id (a number or a non-empty string,
// as job data carries it) made path-safe (characters outside [A-Za-z0-9._-] become '_'), else the
// job id. Every handler of a record uses it, so a record's artifacts share one folder.
std::string artifact_prefix(const nlohmann::json& record_id, std::string_view job_id);

}  // namespace yw::worker
