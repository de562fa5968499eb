#include "yw/common/device_health.hpp"

#include <array>

#include "yw/common/log.hpp"

namespace yw {

std::string exception_message(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

bool is_sticky_device_error(std::string_view message) noexcept {
  // cudaGetErrorName / cudaGetErrorString of each error that leaves the context unusable.
  static constexpr std::array<std::string_view, 22> kSticky = {
      "cudaErrorIllegalAddress",
      "an illegal memory access was encountered",
      "cudaErrorLaunchFailure",
      "unspecified launch failure",
      "cudaErrorIllegalInstruction",
      "an illegal instruction was encountered",
      "cudaErrorMisalignedAddress",
      "misaligned address",
      "cudaErrorInvalidAddressSpace",
      "operation not supported on global/shared address space",
      "cudaErrorInvalidPc",
      "invalid program counter",
      "cudaErrorHardwareStackError",
      "hardware stack error",
      "cudaErrorAssert",
      "device-side assert triggered",
      "cudaErrorLaunchTimeout",
      "the launch timed out and was terminated",
      "cudaErrorECCUncorrectable",
      "uncorrectable ECC error encountered",
      "cudaErrorContextIsDestroyed",
      "context is destroyed",
  };
  for (const std::string_view s : kSticky)
    if (message.find(s) != std::string_view::npos) return true;
  return false;
}

DeviceHealth& DeviceHealth::global() {
  static DeviceHealth health;
  return health;
}

void DeviceHealth::mark_unhealthy(std::string_view device, std::string_view error) {
  std::string text = std::string(device) + ": " + std::string(error);
  {
    std::lock_guard lock(mutex_);
    if (problem_) return;
    problem_ = text;
  }
  log(LogLevel::error, "device", "device unhealthy: its CUDA context is unusable",
      {field("error", text)});
}

std::optional<std::string> DeviceHealth::problem() const {
  std::lock_guard lock(mutex_);
  return problem_;
}

void DeviceHealth::reset() {
  std::lock_guard lock(mutex_);
  problem_.reset();
}

}  // namespace yw
