#pragma once
// Whether the process's compute device can still be used (issue 13). A sticky CUDA error (an
// illegal address, a launch failure, a device-side assert) poisons the CUDA context, which the
// twins and libtorch share, for the rest of the process: every later call on that device fails,
// blamed on whoever calls next, and retrying in halves only makes more doomed calls. So the
// first component that sees one marks the device unhealthy here: its batch fails back retryable
// (another worker, or this one restarted by its supervisor, runs the jobs), /readyz answers 503
// naming the error, and `yesod-worker run` stops and exits non-zero. Recoverable errors (out of
// memory above all) are not sticky and keep the callers' retry in halves.
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace yw {

// True for the CUDA runtime's context-poisoning errors, recognised by the names that
// YW_CUDA_CHECK puts in its messages and by the texts the runtime (and libtorch, "CUDA error:
// ...") print for them.
bool is_sticky_device_error(std::string_view message) noexcept;
// The message of a caught exception, for is_sticky_device_error and logs ("unknown exception"
// when it is not a std::exception).
std::string exception_message(const std::exception_ptr& e);

class DeviceHealth {
 public:
  static DeviceHealth& global();

  // Records the first fault; later ones are logged only. Thread-safe.
  void mark_unhealthy(std::string_view device, std::string_view error);
  // "cuda:0: <error>" once a device is unhealthy.
  std::optional<std::string> problem() const;
  // Tests only: healthy again.
  void reset();

 private:
  mutable std::mutex mutex_;
  std::optional<std::string> problem_;
};

}  // namespace yw
