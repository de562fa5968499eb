// supabase://bucket/path through Supabase Storage's REST API: downloads from
// GET /storage/v1/object/authenticated/{bucket}/{path}, uploads with
// POST /storage/v1/object/{bucket}/{path} and `x-upsert: true`. Answers that are not 2xx are
// classified in supabase_errors.cpp.
#include <array>
#include <cerrno>
#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "storage/detail.hpp"
#include "yw/common/error.hpp"
#include "yw/common/log.hpp"
#include "yw/worker/supabase_errors.hpp"

namespace yw::worker::storage_detail {
namespace {

// Objects are immutable between reruns of a record, and a rerun overwrites them (x-upsert):
// an hour of caching (Supabase's client default) instead of the server's `no-cache` default.
constexpr std::string_view kCacheControl = "max-age=3600";

struct SupabaseObject {
  std::string bucket;
  std::string path;  // without leading slash, segments already validated
};

SupabaseObject parse_supabase(std::string_view uri, std::string_view what) {
  const std::string decoded = percent_decode(uri.substr(kSupabaseScheme.size()), uri);
  const auto segs = path_segments(decoded, what, uri);
  if (segs.size() < 2) YW_THROW_INPUT("{}: expected supabase://bucket/path, got '{}'", what, uri);
  SupabaseObject o;
  o.bucket = segs[0];
  for (size_t i = 1; i < segs.size(); ++i) {
    if (i > 1) o.path += '/';
    o.path += segs[i];
  }
  return o;
}

// Percent-encodes each segment, keeping the slashes between them.
std::string encode_path(const std::string& path) {
  CurlPtr c = make_curl();
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const auto seg =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    char* enc = curl_easy_escape(c.get(), seg.data(), static_cast<int>(seg.size()));
    if (enc == nullptr) YW_THROW("storage: out of memory escaping a path");
    out += enc;
    curl_free(enc);
    if (slash == std::string::npos) break;
    out += '/';
    start = slash + 1;
  }
  return out;
}

// Which variable's key is sent: the service role key when set (server-side access to private
// buckets), else the anon key.
const char* key_name(const WorkerConfig& config) {
  return !config.supabase_service_role_key.empty() ? "SUPABASE_SERVICE_ROLE_KEY"
                                                   : "SUPABASE_ANON_KEY";
}

std::vector<std::string> supabase_headers(const WorkerConfig& config) {
  if (config.supabase_url.empty()) {
    YW_THROW("storage: supabase:// needs SUPABASE_URL to be set on this worker");
  }
  const std::string& key = !config.supabase_service_role_key.empty()
                               ? config.supabase_service_role_key
                               : config.supabase_anon_key;
  if (key.empty()) {
    YW_THROW(
        "storage: supabase:// needs SUPABASE_SERVICE_ROLE_KEY or SUPABASE_ANON_KEY to be set on "
        "this worker");
  }
  return {fmt::format("Authorization: Bearer {}", key), fmt::format("apikey: {}", key)};
}

std::string supabase_base(const WorkerConfig& config) {
  std::string base = config.supabase_url;
  while (base.ends_with('/'))
    base.pop_back();
  return base + "/storage/v1";
}

std::string content_type_for(const fs::path& p) {
  const std::string ext = p.extension().string();
  if (ext == ".json") return "application/json";
  if (ext == ".wav") return "audio/wav";
  if (ext == ".flac") return "audio/flac";
  if (ext == ".mp3") return "audio/mpeg";
  if (ext == ".ogg") return "audio/ogg";
  return "application/octet-stream";
}

size_t keep_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<std::string*>(user);
  if (s->size() < 4096) s->append(data, std::min(size * n, 4096 - s->size()));
  return size * n;
}

// GET /storage/v1/bucket/{id} within `timeout_s`: the HTTP status (0 when no answer came) and the
// body's start.
std::pair<long, std::string> get_bucket(const WorkerConfig& config, const std::string& bucket,
                                        long timeout_s) {
  CurlPtr curl = make_curl();
  CURL* c = curl.get();
  const SlistPtr list = make_header_list(supabase_headers(config));
  const std::string url = fmt::format("{}/bucket/{}", supabase_base(config), encode_path(bucket));
  std::string body;
  const std::string agent = user_agent();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, timeout_s);
  curl_easy_setopt(c, CURLOPT_USERAGENT, agent.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &keep_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  if (curl_easy_perform(c) != CURLE_OK) return {0, {}};
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  return {status, std::move(body)};
}

// The bucket's file_size_limit, -1 when it cannot be read: only to name the limit in a message.
long long bucket_size_limit(const WorkerConfig& config, const std::string& bucket) {
  try {
    const auto [status, body] = get_bucket(config, bucket, 10);
    if (status != 200) return -1;
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_object() && j.contains("file_size_limit") && j["file_size_limit"].is_number())
      return j["file_size_limit"].get<long long>();
  } catch (const std::exception&) {
    // Only for the message; the upload's own error is what the caller reports.
  }
  return -1;
}

}  // namespace

LocalInput fetch_supabase(std::string_view uri, const WorkerConfig& config,
                          const FetchLimits& limits) {
  const SupabaseObject o = parse_supabase(uri, "audio");
  const auto headers = supabase_headers(config);
  const std::string url = fmt::format("{}/object/authenticated/{}/{}", supabase_base(config),
                                      encode_path(o.bucket), encode_path(o.path));
  fs::path tmp = make_temp_file(url_extension(url));
  LocalInput result(tmp, true);  // removes the file on every error path below
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (out == nullptr) YW_THROW("storage: cannot write '{}': {}", tmp.string(), errno_text(errno));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out_guard(out, &std::fclose);
  const Transfer t = http_get(url, headers, limits, out);
  throw_transport_errors(t, uri, limits);
  if (t.status < 200 || t.status >= 300) {
    SupabaseRequest request;
    request.op = SupabaseRequest::Op::download;
    request.object = std::string(uri);
    request.bucket = o.bucket;
    request.key_name = key_name(config);
    request.base_url = config.supabase_url;
    throw_storage_verdict(request,
                          classify_supabase(request, parse_supabase_answer(t.status, t.head)));
  }
  storage_request_worked(SupabaseRequest::Op::download);
  check_audio_body(t, uri);
  if (std::fflush(out) != 0) {
    YW_THROW("storage: cannot write '{}': {}", tmp.string(), errno_text(errno));
  }
  return result;
}

std::string put_supabase(const fs::path& local_file, const std::vector<std::string>& key_segs,
                         const WorkerConfig& config) {
  const SupabaseObject root = parse_supabase(config.output_uri, "YW_OUTPUT_URI");
  std::string object = root.path;
  for (const auto& s : key_segs)
    object += "/" + s;
  const std::string mime = content_type_for(local_file);
  auto headers = supabase_headers(config);
  headers.push_back("x-upsert: true");
  headers.push_back("Content-Type: " + mime);
  headers.push_back(fmt::format("Cache-Control: {}", kCacheControl));
  headers.push_back("Expect:");  // send the body at once instead of waiting for 100-continue

  std::FILE* in = std::fopen(local_file.c_str(), "rb");
  if (in == nullptr) {
    YW_THROW("storage: cannot read '{}': {}", local_file.string(), errno_text(errno));
  }
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> in_guard(in, &std::fclose);
  std::error_code ec;
  const auto size = fs::file_size(local_file, ec);
  if (ec) YW_THROW("storage: cannot stat '{}': {}", local_file.string(), ec.message());

  const std::string url = fmt::format("{}/object/{}/{}", supabase_base(config),
                                      encode_path(root.bucket), encode_path(object));
  CurlPtr curl = make_curl();
  CURL* c = curl.get();
  const SlistPtr list = make_header_list(headers);
  std::string body;
  std::array<char, CURL_ERROR_SIZE> errbuf{};
  const std::string agent = user_agent();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf.data());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_READDATA, in);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, agent.c_str());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, FetchLimits::kStallBytesPerSecond);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &keep_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(c);
  const std::string shown = fmt::format("supabase://{}/{}", root.bucket, object);
  if (rc != CURLE_OK) {
    YW_THROW("storage: upload of '{}' failed: {}", shown,
             errbuf[0] != '\0' ? errbuf.data() : curl_easy_strerror(rc));
  }
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status < 200 || status >= 300) {
    SupabaseRequest request;
    request.op = SupabaseRequest::Op::upload;
    request.object = shown;
    request.bucket = root.bucket;
    request.key_name = key_name(config);
    request.base_url = config.supabase_url;
    request.mime_type = mime;
    request.bytes = size;
    const SupabaseAnswer answer = parse_supabase_answer(status, body);
    if (answer.status == 413 || answer.code == "EntityTooLarge") {
      request.bucket_size_limit = bucket_size_limit(config, root.bucket);
    }
    throw_storage_verdict(request, classify_supabase(request, answer));
  }
  storage_request_worked(SupabaseRequest::Op::upload);
  return shown;
}

}  // namespace yw::worker::storage_detail

namespace yw::worker {

void probe_storage(const WorkerConfig& config) {
  for (const StorageHold& hold : storage_holds()) {
    try {
      // Short: the worker's shutdown waits for a probe in progress.
      auto [status, body] = storage_detail::get_bucket(config, hold.bucket, 2);
      if (status == 0) continue;  // no answer: the server's trouble, no news about the fault
      if (hold.baseline_status == 0) {
        set_storage_hold_baseline(hold.op, status, std::move(body));
        continue;
      }
      // Readable now where it was not, or its settings (mime types, size limit) changed.
      const bool changed =
          status == 200 && (hold.baseline_status != 200 || body != hold.baseline_body);
      if (!changed) continue;
      log(LogLevel::info, "storage", "the bucket answers differently now; claims resume",
          {field("bucket", hold.bucket), field("status", status)});
      storage_request_worked(hold.op);
    } catch (const std::exception& e) {
      log(LogLevel::warn, "storage", "cannot probe the bucket",
          {field("bucket", hold.bucket), field("error", e.what())});
    }
  }
}

}  // namespace yw::worker
