#pragma once
// The project's one exception type. Library code throws yw::Error (through YW_CHECK / YW_THROW);
// the executor turns every exception into a job outcome (style.md habit 9).
#include <stdexcept>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace yw {

// Whether retrying the same job could succeed. Bad input (a corrupt file, a missing field) is
// permanent; a dropped connection or a full disk is transient.
enum class ErrorKind { transient, permanent };

class Error : public std::runtime_error {
 public:
  Error(std::string message, ErrorKind kind = ErrorKind::transient, const char* file = nullptr,
        int line = 0)
      : std::runtime_error(std::move(message)), kind_(kind), file_(file), line_(line) {}

  ErrorKind kind() const noexcept { return kind_; }
  bool retryable() const noexcept { return kind_ == ErrorKind::transient; }
  // Source location of the throw, or nullptr/0 when unknown.
  const char* file() const noexcept { return file_; }
  int line() const noexcept { return line_; }

 private:
  ErrorKind kind_;
  const char* file_;
  int line_;
};

// Thrown for input that will never work: the job fails terminally (no retry), its message is
// shown to the user as is, so it must say what was wrong ("audio: unsupported format 'text/html'").
class InputError : public Error {
 public:
  explicit InputError(std::string message, const char* file = nullptr, int line = 0)
      : Error(std::move(message), ErrorKind::permanent, file, line) {}
};

// Thrown for bad configuration or usage: the CLI exits 2 with the message.
class ConfigError : public Error {
 public:
  explicit ConfigError(std::string message) : Error(std::move(message), ErrorKind::permanent) {}
};

// A stack-like description "Error: message\n    at file:line" for pg-boss's error output shape.
std::string error_stack(const std::exception& e);

}  // namespace yw

#define YW_THROW(...) \
  throw ::yw::Error(fmt::format(__VA_ARGS__), ::yw::ErrorKind::transient, __FILE__, __LINE__)
#define YW_THROW_INPUT(...) throw ::yw::InputError(fmt::format(__VA_ARGS__), __FILE__, __LINE__)
#define YW_CHECK(cond, ...)             \
  do {                                  \
    if (!(cond)) YW_THROW(__VA_ARGS__); \
  } while (0)
#define YW_CHECK_INPUT(cond, ...)             \
  do {                                        \
    if (!(cond)) YW_THROW_INPUT(__VA_ARGS__); \
  } while (0)
