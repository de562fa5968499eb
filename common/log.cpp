#include "yw/common/log.hpp"

#include <atomic>
#include <ctime>
#include <memory>
#include <mutex>

namespace yw {
namespace {

std::mutex g_sink_mutex;
std::shared_ptr<LogSink> g_sink;
std::atomic<LogLevel> g_level{LogLevel::info};

std::string iso_time(std::chrono::system_clock::time_point t, bool date) {
  const auto secs = std::chrono::time_point_cast<std::chrono::seconds>(t);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - secs).count();
  const std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  if (date) {
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03}Z", buf, ms);
  }
  std::strftime(buf, sizeof buf, "%H:%M:%S", &tm);
  return fmt::format("{}.{:03}", buf, ms);
}

}  // namespace

std::string_view to_string(LogLevel level) {
  switch (level) {
    case LogLevel::debug:
      return "debug";
    case LogLevel::info:
      return "info";
    case LogLevel::warn:
      return "warn";
    case LogLevel::error:
      return "error";
  }
  return "info";
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  return out;
}

LogSink make_pretty_sink(std::FILE* out, bool color) {
  return [out, color](const LogRecord& r) {
    static constexpr const char* kColors[] = {"\x1b[90m", "\x1b[32m", "\x1b[33m", "\x1b[31m"};
    static constexpr const char* kNames[] = {"DEBUG", "INFO ", "WARN ", "ERROR"};
    const int lv = static_cast<int>(r.level);
    std::string line = iso_time(r.time, false);
    if (color) {
      line += fmt::format(" {}{}\x1b[0m \x1b[1m{}\x1b[0m: {}", kColors[lv], kNames[lv], r.component,
                          r.message);
    } else {
      line += fmt::format(" {} {}: {}", kNames[lv], r.component, r.message);
    }
    for (const auto& f : r.fields) {
      const bool needs_quotes =
          !f.raw && (f.value.empty() || f.value.find_first_of(" \t\"=") != std::string::npos);
      line += needs_quotes ? fmt::format("  {}=\"{}\"", f.key, json_escape(f.value))
                           : fmt::format("  {}={}", f.key, f.value);
    }
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), out);
    std::fflush(out);
  };
}

LogSink make_json_sink(std::FILE* out) {
  return [out](const LogRecord& r) {
    std::string line = fmt::format(R"({{"time":"{}","level":"{}","component":"{}","msg":"{}")",
                                   iso_time(r.time, true), to_string(r.level),
                                   json_escape(r.component), json_escape(r.message));
    for (const auto& f : r.fields) {
      if (f.raw) {
        line += fmt::format(R"(,"{}":{})", json_escape(f.key), f.value);
      } else {
        line += fmt::format(R"(,"{}":"{}")", json_escape(f.key), json_escape(f.value));
      }
    }
    line += "}\n";
    std::fwrite(line.data(), 1, line.size(), out);
    std::fflush(out);
  };
}

void set_log_sink(LogSink sink) {
  auto p = std::make_shared<LogSink>(std::move(sink));
  std::lock_guard lock(g_sink_mutex);
  g_sink = std::move(p);
}

void set_log_level(LogLevel level) {
  g_level.store(level, std::memory_order_relaxed);
}
LogLevel log_level() {
  return g_level.load(std::memory_order_relaxed);
}

void log(LogLevel level, std::string_view component, std::string_view message,
         const LogFields& fields) {
  if (level < log_level()) return;
  const LogRecord record{std::chrono::system_clock::now(), level, component, message, fields};
  // The lock also serialises writes so concurrent records never interleave.
  std::lock_guard lock(g_sink_mutex);
  if (!g_sink) g_sink = std::make_shared<LogSink>(make_pretty_sink(stderr, false));
  (*g_sink)(record);
}

std::string mask_secrets(std::string_view text) {
  std::string out(text);
  // URI userinfo: scheme://user:password@
  if (const auto sep = out.find("://"); sep != std::string::npos) {
    const auto at = out.find('@', sep + 3);
    const auto slash = out.find('/', sep + 3);
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
      const auto colon = out.find(':', sep + 3);
      if (colon != std::string::npos && colon < at) out.replace(colon + 1, at - colon - 1, "****");
    }
  }
  // key=value forms: password=..., in conninfo strings and URI queries.
  for (std::size_t pos = 0; (pos = out.find("password=", pos)) != std::string::npos;) {
    const std::size_t start = pos + 9;
    std::size_t end = out.find_first_of(" &", start);
    if (end == std::string::npos) end = out.size();
    out.replace(start, end - start, "****");
    pos = start + 4;
  }
  return out;
}

}  // namespace yw
