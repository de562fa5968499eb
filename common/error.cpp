#include "yw/common/error.hpp"

#include <typeinfo>

namespace yw {

std::string error_stack(const std::exception& e) {
  std::string stack = fmt::format("Error: {}", e.what());
  if (const auto* err = dynamic_cast<const Error*>(&e); err != nullptr && err->file() != nullptr) {
    stack += fmt::format("\n    at {}:{}", err->file(), err->line());
  }
  return stack;
}

}  // namespace yw
