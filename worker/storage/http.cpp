// http(s):// downloads through libcurl, and the helpers every storage file shares.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>

#include <fmt/format.h>

#include "storage/detail.hpp"
#include "yw/common/error.hpp"
#include "yw/common/log.hpp"

namespace yw::worker::storage_detail {

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

// Splits on '/', keeping empty segments out; refuses `..`.
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

CurlPtr make_curl() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
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

std::string user_agent() {
  return "yesod-worker/" YW_VERSION;
}

SlistPtr make_header_list(const std::vector<std::string>& headers) {
  SlistPtr list;
  for (const auto& h : headers) {
    curl_slist* next = curl_slist_append(list.get(), h.c_str());
    if (next == nullptr) YW_THROW("storage: out of memory building headers");
    static_cast<void>(list.release());
    list.reset(next);
  }
  return list;
}

namespace {

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

}  // namespace

std::string quote_body(std::string_view head) {
  std::string out;
  for (char ch : head.substr(0, 160)) {
    out.push_back(std::isprint(static_cast<unsigned char>(ch)) != 0 ? ch : ' ');
  }
  return out;
}

Transfer http_get(const std::string& url, const std::vector<std::string>& headers,
                  const FetchLimits& limits, std::FILE* file) {
  CurlPtr curl = make_curl();
  Download d;
  d.out = file;
  d.max_bytes = limits.max_bytes;
  const SlistPtr list = make_header_list(headers);
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
  const std::string agent = user_agent();
  curl_easy_setopt(c, CURLOPT_USERAGENT, agent.c_str());
  if (list) curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());

  Transfer t;
  t.rc = curl_easy_perform(c);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &t.status);
  char* ctype_raw = nullptr;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ctype_raw);
  t.content_type = ctype_raw != nullptr ? ctype_raw : "";
  t.error = errbuf[0] != '\0' ? errbuf.data() : curl_easy_strerror(t.rc);
  t.received = d.received;
  t.too_big = d.too_big || t.rc == CURLE_FILESIZE_EXCEEDED;
  t.head = std::move(d.head);
  return t;
}

void throw_transport_errors(const Transfer& t, std::string_view shown, const FetchLimits& limits) {
  if (t.too_big) {
    YW_THROW_INPUT("audio: '{}' is larger than the {} byte limit", shown, limits.max_bytes);
  }
  if (t.rc == CURLE_OPERATION_TIMEDOUT) {
    YW_THROW("audio: download of '{}' timed out after {} bytes ({})", shown, t.received, t.error);
  }
  // A write error with an error status is the body being refused, not a transport failure.
  if (t.rc != CURLE_OK && !(t.rc == CURLE_WRITE_ERROR && t.status >= 400)) {
    YW_THROW("audio: download of '{}' failed: {}", shown, t.error);
  }
}

void check_audio_body(const Transfer& t, std::string_view shown) {
  if (textual_content_type(t.content_type) || looks_like_html(t.head)) {
    const auto semi = t.content_type.find(';');
    YW_THROW_INPUT(
        "audio: unsupported format '{}' from '{}'",
        t.content_type.empty() ? std::string("text/html") : t.content_type.substr(0, semi), shown);
  }
  if (t.received == 0) YW_THROW_INPUT("audio: '{}' is empty", shown);
}

// Plain http(s)://: 5xx, 408, 429 are retryable, other 4xx the job's input.
LocalInput fetch_http(std::string_view uri, const FetchLimits& limits) {
  const std::string url(uri);
  const std::string shown = mask_secrets(uri);
  fs::path tmp = make_temp_file(url_extension(url));
  LocalInput result(tmp, true);  // removes the file on every error path below
  std::FILE* out = std::fopen(tmp.c_str(), "wb");
  if (out == nullptr) YW_THROW("storage: cannot write '{}': {}", tmp.string(), errno_text(errno));
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> out_guard(out, &std::fclose);
  const Transfer t = http_get(url, {}, limits, out);
  throw_transport_errors(t, shown, limits);
  const std::string body = t.head.empty() ? "" : ": " + quote_body(t.head);
  if (t.status >= 500 || t.status == 408 || t.status == 429) {
    YW_THROW("audio: '{}' answered HTTP {}{}", shown, t.status, body);
  }
  if (t.status >= 400) YW_THROW_INPUT("audio: '{}' answered HTTP {}{}", shown, t.status, body);
  if (t.status < 200 || t.status >= 300) {
    YW_THROW_INPUT("audio: '{}' answered HTTP {}, not a file", shown, t.status);
  }
  check_audio_body(t, shown);
  if (std::fflush(out) != 0) {
    YW_THROW("storage: cannot write '{}': {}", tmp.string(), errno_text(errno));
  }
  return result;
}

}  // namespace yw::worker::storage_detail
