// The storage module's entry points (design.md §2): which source or destination a URI names.
#include "yw/worker/storage.hpp"

#include <cstdio>

#include <fmt/format.h>

#include "storage/detail.hpp"
#include "yw/common/error.hpp"
#include "yw/common/log.hpp"

namespace yw::worker {

using namespace storage_detail;

LocalInput fetch_input(std::string_view uri, const WorkerConfig& config) {
  return fetch_input(uri, config, FetchLimits{});
}

LocalInput fetch_input(std::string_view uri, const WorkerConfig& config,
                       const FetchLimits& limits) {
  if (uri.empty()) YW_THROW_INPUT("audio: empty URI");
  if (uri.starts_with(kFileScheme)) return fetch_file(uri, config);
  if (uri.starts_with(kHttpScheme) || uri.starts_with(kHttpsScheme)) {
    return fetch_http(uri, limits);
  }
  if (uri.starts_with(kSupabaseScheme)) return fetch_supabase(uri, config, limits);
  const auto colon = uri.find(':');
  YW_THROW_INPUT(
      "audio: unsupported URI scheme '{}' in '{}' (expected file://, http(s):// or "
      "supabase://)",
      colon == std::string_view::npos ? std::string_view("none") : uri.substr(0, colon),
      mask_secrets(uri));
}

std::string put_artifact(const std::filesystem::path& local_file, std::string_view key,
                         const WorkerConfig& config) {
  if (key.starts_with('/')) YW_THROW_INPUT("artifact key must be relative, got '{}'", key);
  const auto segs = path_segments(key, "artifact key", key);
  if (segs.empty()) YW_THROW_INPUT("artifact key is empty");
  if (std::string_view(config.output_uri).starts_with(kFileScheme)) {
    return put_file(local_file, segs, config);
  }
  if (std::string_view(config.output_uri).starts_with(kSupabaseScheme)) {
    return put_supabase(local_file, segs, config);
  }
  throw ConfigError(fmt::format("YW_OUTPUT_URI: unsupported '{}'", config.output_uri));
}

std::string put_artifact_bytes(std::string_view bytes, std::string_view key,
                               const WorkerConfig& config) {
  const auto slash = key.rfind('/');
  const auto name = slash == std::string_view::npos ? key : key.substr(slash + 1);
  const auto dot = name.rfind('.');
  const std::string ext = dot == std::string_view::npos ? "" : std::string(name.substr(dot));
  LocalInput tmp(make_temp_file(ext), true);
  {
    std::FILE* out = std::fopen(tmp.path().c_str(), "wb");
    if (out == nullptr) {
      YW_THROW("storage: cannot write '{}': {}", tmp.path().string(), errno_text(errno));
    }
    const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), out) == bytes.size();
    const bool closed = std::fclose(out) == 0;
    if (!ok || !closed) {
      YW_THROW("storage: cannot write '{}': {}", tmp.path().string(), errno_text(errno));
    }
  }
  return put_artifact(tmp.path(), key, config);
}

std::string artifact_prefix(const nlohmann::json& record_id, std::string_view job_id) {
  const std::string text = record_id.is_string()   ? record_id.get<std::string>()
                           : record_id.is_number() ? record_id.dump()
                                                   : std::string();
  std::string out;
  for (char ch : text) {
    const bool safe =
        std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '.' || ch == '_' || ch == '-';
    out.push_back(safe ? ch : '_');
  }
  if (out.empty() || out == "." || out == "..") return std::string(job_id);
  return out;
}

}  // namespace yw::worker
