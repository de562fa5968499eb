#include "yw/common/readiness.hpp"

namespace yw {

Readiness& Readiness::global() {
  static Readiness instance;
  return instance;
}

bool Readiness::set(std::string_view name, std::string_view reason) {
  std::lock_guard lock(mutex_);
  const auto it = reasons_.find(name);
  if (it != reasons_.end() && it->second == reason) return false;
  reasons_[std::string(name)] = std::string(reason);
  return true;
}

void Readiness::clear(std::string_view name) {
  std::lock_guard lock(mutex_);
  if (const auto it = reasons_.find(name); it != reasons_.end()) reasons_.erase(it);
}

std::map<std::string, std::string, std::less<>> Readiness::reasons() const {
  std::lock_guard lock(mutex_);
  return reasons_;
}

}  // namespace yw
