#pragma once
// One logging sink for the whole program (style.md habit 14). Library code never writes to
// stdout/stderr: it calls yw::log_*(component, ...), and main installs the sink (pretty on a
// terminal, JSON lines when NODE_ENV=production). Thread-safe: records are written whole.
#include <chrono>
#include <concepts>
#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

namespace yw {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

// A structured field. `raw` values are numbers/booleans (unquoted in JSON).
struct LogField {
  std::string key;
  std::string value;
  bool raw = false;
};
using LogFields = std::vector<LogField>;

inline LogField field(std::string key, std::string_view value) {
  return {std::move(key), std::string(value), false};
}
inline LogField field(std::string key, const char* value) {
  return {std::move(key), std::string(value), false};
}
template <typename T>
requires std::integral<T> || std::floating_point<T> LogField field(std::string key, T value) {
  if constexpr (std::same_as<T, bool>) return {std::move(key), value ? "true" : "false", true};
  return {std::move(key), fmt::format("{}", value), true};
}

struct LogRecord {
  std::chrono::system_clock::time_point time;
  LogLevel level;
  std::string_view component;
  std::string_view message;
  const LogFields& fields;
};

using LogSink = std::function<void(const LogRecord&)>;

// Pretty, one line per record: "21:04:05.123 INFO  worker: started  queue=a". Colours when
// `color` is set (the caller decides from isatty).
LogSink make_pretty_sink(std::FILE* out, bool color);
// JSON lines: {"time":"…Z","level":"info","component":"worker","msg":"…",<fields>}.
LogSink make_json_sink(std::FILE* out);

// Installs the process-wide sink; the default is pretty on stderr without colour.
void set_log_sink(LogSink sink);
void set_log_level(LogLevel level);
LogLevel log_level();
std::string_view to_string(LogLevel level);

void log(LogLevel level, std::string_view component, std::string_view message,
         const LogFields& fields = {});

template <typename... Args>
void log_debug(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (log_level() <= LogLevel::debug)
    log(LogLevel::debug, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_info(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  if (log_level() <= LogLevel::info)
    log(LogLevel::info, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warn(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  log(LogLevel::warn, component, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void log_error(std::string_view component, fmt::format_string<Args...> f, Args&&... args) {
  log(LogLevel::error, component, fmt::format(f, std::forward<Args>(args)...));
}

// Escapes a string for inclusion in a JSON string literal (without the quotes).
std::string json_escape(std::string_view s);

// Replaces any password in a URI or conninfo string with ****. Safe on arbitrary text.
std::string mask_secrets(std::string_view text);

}  // namespace yw
