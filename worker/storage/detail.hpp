#pragma once
// Helpers shared by the storage module's files (not part of its interface).
#include <curl/curl.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "yw/worker/storage.hpp"

namespace yw::worker::storage_detail {

namespace fs = std::filesystem;

inline constexpr std::string_view kFileScheme = "file://";
inline constexpr std::string_view kHttpScheme = "http://";
inline constexpr std::string_view kHttpsScheme = "https://";
inline constexpr std::string_view kSupabaseScheme = "supabase://";

std::string errno_text(int err);
bool ascii_iequals_prefix(std::string_view text, std::string_view prefix);
// Decodes %XX escapes; a malformed escape or a NUL byte is an InputError naming `uri`.
std::string percent_decode(std::string_view s, std::string_view uri);
// Splits on '/', keeping empty segments out; refuses `..` (design.md §2: never resolve upwards).
std::vector<std::string> path_segments(std::string_view path, std::string_view what,
                                       std::string_view uri);
// A new empty temporary file with `extension`; the caller owns (and removes) it.
fs::path make_temp_file(const std::string& extension);
// Extension of the last path segment of a URL ("" when none).
std::string url_extension(std::string_view url);
// The first 160 bytes of a body, unprintable bytes as spaces, for messages.
std::string quote_body(std::string_view head);

// "yesod-worker/<version>": every request says who sent it.
std::string user_agent();

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;
CurlPtr make_curl();
SlistPtr make_header_list(const std::vector<std::string>& headers);

// The outcome of one GET into a file: the transport's result and the answer's first bytes.
struct Transfer {
  CURLcode rc = CURLE_OK;
  long status = 0;
  std::string content_type;
  std::string error;  // libcurl's message when rc != CURLE_OK
  std::uint64_t received = 0;
  bool too_big = false;
  std::string head;  // the first 512 bytes: to recognise HTML and to read error bodies
};

// GETs `url` into `file` (opened for writing) with `limits`, following redirects.
Transfer http_get(const std::string& url, const std::vector<std::string>& headers,
                  const FetchLimits& limits, std::FILE* file);
// Throws for transport failures common to every source: too big, timed out, failed to connect.
void throw_transport_errors(const Transfer& t, std::string_view shown, const FetchLimits& limits);
// Checks that a 2xx answer's body is audio: no text/HTML, not empty.
void check_audio_body(const Transfer& t, std::string_view shown);

LocalInput fetch_file(std::string_view uri, const WorkerConfig& config);
LocalInput fetch_http(std::string_view uri, const FetchLimits& limits);
LocalInput fetch_supabase(std::string_view uri, const WorkerConfig& config,
                          const FetchLimits& limits);
std::string put_file(const fs::path& local_file, const std::vector<std::string>& key_segs,
                     const WorkerConfig& config);
std::string put_supabase(const fs::path& local_file, const std::vector<std::string>& key_segs,
                         const WorkerConfig& config);

}  // namespace yw::worker::storage_detail
