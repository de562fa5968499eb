// Storage for job inputs and artifacts (design.md §2): file:// under YW_INPUT_ROOTS, http(s)://
// through libcurl, and supabase://bucket/path through Supabase Storage's REST API.
#include "yw/worker/storage.hpp"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "yw/common/error.hpp"
#include "yw/common/log.hpp"

namespace yw::worker {

namespace fs = std::filesystem;

LocalInput::LocalInput(LocalInput&& other) noexcept
    : path_(std::move(other.path_)), temporary_(std::exchange(other.temporary_, false)) {}

LocalInput& LocalInput::operator=(LocalInput&& other) noexcept {
  if (this != &other) {
    if (temporary_) {
      std::error_code ec;
      fs::remove(path_, ec);
    }
    path_ = std::move(other.path_);
    temporary_ = std::exchange(other.temporary_, false);
  }
  return *this;
}

LocalInput::~LocalInput() {
  if (temporary_) {
    std::error_code ec;
    fs::remove(path_, ec);
  }
}

namespace {

constexpr std::string_view kFileScheme = "file://";
constexpr std::string_view kHttpScheme = "http://";
constexpr std::string_view kHttpsScheme = "https://";
constexpr std::string_view kSupabaseScheme = "supabase://";

std::string errno_text(int err) {
  return std::system_category().message(err);
}

bool ascii_iequals_prefix(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    const auto a = static_cast<unsigned char>(text[i]);
    const auto b = static_cast<unsigned char>(prefix[i]);
    if (std::tolower(a) != std::tolower(b)) return false;
  }
  return true;
}

std::string percent_decode(std::string_view s, std::string_view uri) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    auto hex = [&](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    const int hi = i + 2 < s.size() ? hex(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? hex(s[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      YW_THROW_INPUT("audio: malformed percent-escape in '{}'", mask_secrets(uri));
    }
    const char decoded = static_cast<char>(hi * 16 + lo);
    if (decoded == '\0') YW_THROW_INPUT("audio: NUL byte in '{}'", mask_secrets(uri));
    out.push_back(decoded);
    i += 2;
  }
  return out;
}

// Splits on '/', keeping empty segments out; refuses `..` (design.md §2: never resolve upwards).
std::vector<std::string> path_segments(std::string_view path, std::string_view what,
                                       std::string_view uri) {
  std::vector<std::string> out;
  while (!path.empty()) {
    const auto slash = path.find('/');
    const auto seg = path.substr(0, slash);
    if (seg == "..") {
      YW_THROW_INPUT("{}: '..' is not allowed in '{}'", what, mask_secrets(uri));
    }
    if (!seg.empty() && seg != ".") out.emplace_back(seg);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

bool is_within(const fs::path& child, const fs::path& root) {
  auto c = child.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++c) {
    if (r->empty()) continue;  // a trailing separator yields an empty last element
    if (c == child.end() || *c != *r) return false;
  }
  return true;
}

// ---- file:// -------------------------------------------------------------------------------

LocalInput fetch_file(std::string_view uri, const WorkerConfig& config) {
  std::string_view rest = uri.substr(kFileScheme.size());
  // file://localhost/abs and file:///abs are the same; file://./rel is relative to the cwd.
  if (rest.starts_with("localhost/")) rest.remove_prefix(std::string_view("localhost").size());
  if (!rest.starts_with('/') && !rest.starts_with("./")) {
    YW_THROW_INPUT("audio: file URI must be file:///absolute/path, got '{}'", uri);
  }
  const std::string decoded = percent_decode(rest, uri);
  path_segments(decoded, "audio", uri);  // refuses `..`
  if (config.input_roots.empty()) {
    YW_THROW_INPUT("audio: file:// inputs are disabled (YW_INPUT_ROOTS is empty): '{}'", uri);
  }
  const fs::path requested = fs::absolute(fs::path(decoded));
  std::error_code ec;
  const fs::path real = fs::canonical(requested, ec);
  if (ec) YW_THROW_INPUT("audio: cannot open '{}': {}", requested.string(), ec.message());

  bool inside = false;
  for (const auto& root : config.input_roots) {
    std::error_code rec;
    const fs::path real_root = fs::canonical(fs::absolute(fs::path(root)), rec);
    if (!rec && is_within(real, real_root)) {
      inside = true;
      break;
    }
  }
  if (!inside) {
    // The resolved path is named so a symlink that leaves the roots is visible as such.
    YW_THROW_INPUT("audio: '{}' resolves to '{}', outside YW_INPUT_ROOTS", requested.string(),
                   real.string());
  }
  if (!fs::is_regular_file(real, ec)) {
    YW_THROW_INPUT("audio: '{}' is not a regular file", requested.string());
  }
  return LocalInput(real, false);
}

// ---- libcurl helpers -------------------------------------------------------------------------

void ensure_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

CurlPtr make_curl() {
  ensure_curl();
  CurlPtr c(curl_easy_init());
  if (!c) YW_THROW("storage: curl_easy_init failed");
  return c;
}

// Extension of the last path segment of a URL ("" when none), so decoders and TagLib that go by
// the file name see the same name the source had.
std::string url_extension(std::string_view url) {
  const auto end = url.find_first_of("?#");
  url = url.substr(0, end);
  const auto slash = url.rfind('/');
  const auto name = slash == std::string_view::npos ? url : url.substr(slash + 1);
  const auto dot = name.rfind('.');
  if (dot == std::string_view::npos || name.size() - dot > 8 || dot + 1 == name.size()) return "";
  const auto ext = name.substr(dot);
  const bool plain = std::all_of(ext.begin() + 1, ext.end(), [](char ch) {
    return std::isalnum(static_cast<unsigned char>(ch)) != 0;
  });
  return plain ? std::string(ext) : "";
}

// A new empty temporary file; the caller owns (and removes) it.
fs::path make_temp_file(const std::string& extension) {
  std::string tmpl = (fs::temp_directory_path() / "yw-input-XXXXXX").string() + extension;
  const int fd = mkstemps(tmpl.data(), static_cast<int>(extension.size()));
  if (fd < 0) YW_THROW("storage: cannot create a temporary file: {}", errno_text(errno));
  ::close(fd);
  return fs::path(tmpl);
}

struct Download {
  std::FILE* out = nullptr;
  std::uint64_t max_bytes = 0;
  std::uint64_t received = 0;
  bool too_big = false;
  std::string head;  // the first bytes, to recognise HTML and to quote error bodies
};

size_t write_body(char* data, size_t size, size_t n, void* user) {
  auto* d = static_cast<Download*>(user);
  const size_t bytes = size * n;
  if (d->received + bytes > d->max_bytes) {
    d->too_big = true;
    return 0;  // aborts the transfer with CURLE_WRITE_ERROR
  }
  if (d->head.size() < 512) d->head.append(data, std::min(bytes, 512 - d->head.size()));
  if (std::fwrite(data, 1, bytes, d->out) != bytes) return 0;
  d->received += bytes;
  return bytes;
}

bool looks_like_html(std::string_view head) {
  size_t i = 0;
  if (head.starts_with("\xEF\xBB\xBF")) i = 3;
  while (i < head.size() && std::isspace(static_cast<unsigned char>(head[i])) != 0)
    ++i;
  const auto rest = head.substr(i);
  return ascii_iequals_prefix(rest, "<!doctype html") || ascii_iequals_prefix(rest, "<html") ||
         ascii_iequals_prefix(rest, "<head") || ascii_iequals_prefix(rest, "<body");
}

// Content types that are never audio: an error page, an API error, a directory listing.
bool textual_content_type(std::string_view type) {
  return ascii_iequals_prefix(type, "text/") || ascii_iequals_prefix(type, "application/json") ||
         ascii_iequals_prefix(type, "application/xml") ||
         ascii_iequals_prefix(type, "application/xhtml");
}

std::string quote_body(std::string_view head) {
  std::string out;
  for (char ch : head.substr(0, 160)) {
    out.push_back(std::isprint(static_cast<unsigned char>(ch)) != 0 ? ch : ' ');
  }
  return out;
}

// GETs `url` into a temporary file. `shown` is how the source is named in messages.
// `auth_is_ours`: 401/403 mean the worker's credentials are wrong, not the job's input, so they
// are retryable (another worker, or this one after a fix, can succeed).
LocalInput http_download(const std::string& url, const std::string& shown,
                         const std::vector<std::string>& headers, const FetchLimits& limits,
                         bool auth_is_ours) {
  fs::path tmp = make_temp_file(url_extension(url));
  LocalInput result(tmp, true);  // removes the file on every error path below
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (out == nullptr) YW_THROW("storage: cannot write '{}': {}", tmp.string(), errno_text(errno));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out_guard(out, &std::fclose);

  CurlPtr curl = make_curl();
  Download d;
  d.out = out;
  d.max_bytes = limits.max_bytes;
  SlistPtr list;
  for (const auto& h : headers) {
    curl_slist* next = curl_slist_append(list.get(), h.c_str());
    if (next == nullptr) YW_THROW("storage: out of memory building headers");
    static_cast<void>(list.release());
    list.reset(next);
  }
  std::array<char, CURL_ERROR_SIZE> errbuf{};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf.data());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, limits.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, limits.total_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, FetchLimits::kStallBytesPerSecond);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, limits.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(limits.max_bytes));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &write_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "yesod-worker");
  if (list) curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());

  const CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  char* ctype_raw = nullptr;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype_raw);
  const std::string ctype = ctype_raw != nullptr ? ctype_raw : "";

  if (d.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
    YW_THROW_INPUT("audio: '{}' is larger than the {} byte limit", shown, limits.max_bytes);
  }
  if (rc == CURLE_OPERATION_TIMEDOUT) {
    YW_THROW("audio: download of '{}' timed out after {} bytes ({})", shown, d.received,
             errbuf.data());
  }
  if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && status >= 400)) {
    YW_THROW("audio: download of '{}' failed: {}", shown,
             errbuf[0] != '\0' ? errbuf.data() : curl_easy_strerror(rc));
  }
  if (status >= 500 || status == 408 || status == 429 ||
      (auth_is_ours && (status == 401 || status == 403))) {
    YW_THROW("audio: '{}' answered HTTP {}{}{}", shown, status, d.head.empty() ? "" : ": ",
             quote_body(d.head));
  }
  if (status >= 400) {
    YW_THROW_INPUT("audio: '{}' answered HTTP {}{}{}", shown, status, d.head.empty() ? "" : ": ",
                   quote_body(d.head));
  }
  if (status < 200 || status >= 300) {
    YW_THROW_INPUT("audio: '{}' answered HTTP {}, not a file", shown, status);
  }
  if (textual_content_type(ctype) || looks_like_html(d.head)) {
    const auto semi = ctype.find(';');
    YW_THROW_INPUT("audio: unsupported format '{}' from '{}'",
                   ctype.empty() ? std::string("text/html") : ctype.substr(0, semi), shown);
  }
  if (d.received == 0) YW_THROW_INPUT("audio: '{}' is empty", shown);
  if (std::fflush(out) != 0) {
    YW_THROW("storage: cannot write '{}': {}", tmp.string(), errno_text(errno));
  }
  return result;
}

// ---- Supabase Storage ------------------------------------------------------------------------

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

// The service role key when set (server-side access to private buckets), else the anon key.
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

LocalInput fetch_supabase(std::string_view uri, const WorkerConfig& config,
                          const FetchLimits& limits) {
  const SupabaseObject o = parse_supabase(uri, "audio");
  const auto headers = supabase_headers(config);
  const std::string url = fmt::format("{}/object/authenticated/{}/{}", supabase_base(config),
                                      encode_path(o.bucket), encode_path(o.path));
  return http_download(url, std::string(uri), headers, limits, /*auth_is_ours=*/true);
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

size_t discard_body(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<std::string*>(user);
  if (s->size() < 512) s->append(data, std::min(size * n, 512 - s->size()));
  return size * n;
}

std::string put_supabase(const fs::path& local_file, const std::vector<std::string>& key_segs,
                         const WorkerConfig& config) {
  const SupabaseObject root = parse_supabase(config.output_uri, "YW_OUTPUT_URI");
  std::string object = root.path;
  for (const auto& s : key_segs)
    object += "/" + s;
  auto headers = supabase_headers(config);
  headers.push_back("x-upsert: true");
  headers.push_back("Content-Type: " + content_type_for(local_file));
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
  SlistPtr list;
  for (const auto& h : headers) {
    curl_slist* next = curl_slist_append(list.get(), h.c_str());
    if (next == nullptr) YW_THROW("storage: out of memory building headers");
    static_cast<void>(list.release());
    list.reset(next);
  }
  std::string body;
  std::array<char, CURL_ERROR_SIZE> errbuf{};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf.data());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_READDATA, in);
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(size));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, FetchLimits::kStallBytesPerSecond);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &discard_body);
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
    // Every upload failure is retryable: it is the worker's storage, not the job's input.
    YW_THROW("storage: upload of '{}' answered HTTP {}: {}", shown, status, quote_body(body));
  }
  return shown;
}

// ---- file:// artifacts -----------------------------------------------------------------------

void write_all(int fd, const char* data, size_t n, const fs::path& shown) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      YW_THROW("storage: cannot write '{}': {}", shown.string(), errno_text(errno));
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
}

void copy_synced(const fs::path& from, const fs::path& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) YW_THROW("storage: cannot read '{}': {}", from.string(), errno_text(errno));
  const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    const int err = errno;
    ::close(in);
    YW_THROW("storage: cannot create '{}': {}", to.string(), errno_text(err));
  }
  try {
    std::array<char, 1 << 16> buf{};
    for (;;) {
      const ssize_t r = ::read(in, buf.data(), buf.size());
      if (r < 0) {
        if (errno == EINTR) continue;
        YW_THROW("storage: cannot read '{}': {}", from.string(), errno_text(errno));
      }
      if (r == 0) break;
      write_all(out, buf.data(), static_cast<size_t>(r), to);
    }
    if (::fsync(out) != 0) {
      YW_THROW("storage: cannot flush '{}': {}", to.string(), errno_text(errno));
    }
  } catch (...) {
    ::close(in);
    ::close(out);
    throw;
  }
  ::close(in);
  if (::close(out) != 0) {
    YW_THROW("storage: cannot write '{}': {}", to.string(), errno_text(errno));
  }
}

std::string put_file(const fs::path& local_file, const std::vector<std::string>& key_segs,
                     const WorkerConfig& config) {
  const std::string root_text = percent_decode(
      std::string_view(config.output_uri).substr(kFileScheme.size()), config.output_uri);
  fs::path dest = fs::absolute(fs::path(root_text)).lexically_normal();
  for (const auto& s : key_segs)
    dest /= s;
  const fs::path dir = dest.parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) YW_THROW("storage: cannot create '{}': {}", dir.string(), ec.message());

  static std::atomic<unsigned> counter{0};
  const fs::path tmp =
      dir / fmt::format(".{}.tmp-{}-{}", dest.filename().string(), ::getpid(), counter++);
  try {
    copy_synced(local_file, tmp);
    fs::rename(tmp, dest);
  } catch (const std::exception& e) {
    fs::remove(tmp, ec);
    if (dynamic_cast<const Error*>(&e) != nullptr) throw;
    YW_THROW("storage: cannot store '{}': {}", dest.string(), e.what());
  }
  // The rename is durable only once the directory entry is on disk.
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return "file://" + dest.string();
}

}  // namespace

LocalInput fetch_input(std::string_view uri, const WorkerConfig& config) {
  return fetch_input(uri, config, FetchLimits{});
}

LocalInput fetch_input(std::string_view uri, const WorkerConfig& config,
                       const FetchLimits& limits) {
  if (uri.empty()) YW_THROW_INPUT("audio: empty URI");
  if (uri.starts_with(kFileScheme)) return fetch_file(uri, config);
  if (uri.starts_with(kHttpScheme) || uri.starts_with(kHttpsScheme)) {
    const std::string url(uri);
    return http_download(url, mask_secrets(uri), {}, limits, /*auth_is_ours=*/false);
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
