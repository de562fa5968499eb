#include "yw/kernels/device.hpp"

#include <charconv>

#include "yw/common/error.hpp"

namespace yw {

std::string Device::to_string() const {
  return kind == Kind::cpu ? std::string("cpu") : fmt::format("cuda:{}", index);
}

std::string DeviceRequest::to_string() const {
  return is_auto ? "auto" : device.to_string();
}

std::string CudaInventory::describe(int index) const {
  return index >= 0 && static_cast<std::size_t>(index) < devices.size()
             ? devices[static_cast<std::size_t>(index)]
             : std::string();
}

DeviceRequest parse_device(std::string_view text) {
  DeviceRequest req;
  if (text == "auto" || text.empty()) return req;
  req.is_auto = false;
  if (text == "cpu") return req;
  if (text == "cuda") {
    req.device = {Device::Kind::cuda, 0};
    return req;
  }
  if (text.starts_with("cuda:")) {
    const std::string_view num = text.substr(5);
    int index = -1;
    const auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), index);
    if (ec == std::errc() && ptr == num.data() + num.size() && !num.empty() && index >= 0) {
      req.device = {Device::Kind::cuda, index};
      return req;
    }
  }
  throw ConfigError(fmt::format("device: expected auto, cpu or cuda:N (N >= 0), got '{}'", text));
}

Device resolve_device(const DeviceRequest& request, const CudaInventory& inventory) {
  if (request.is_auto) {
    return inventory.count > 0 ? Device{Device::Kind::cuda, 0} : Device{};
  }
  if (!request.device.is_cuda()) return request.device;
  if (!inventory.compiled_in) {
    throw ConfigError(fmt::format(
        "device: {} requested, but this build has no CUDA support (rebuild with -DYW_CUDA=ON, or "
        "use --device auto|cpu)",
        request.device.to_string()));
  }
  if (request.device.index >= inventory.count) {
    throw ConfigError(fmt::format("device: {} requested, but {} usable CUDA device(s) found{}{}",
                                  request.device.to_string(), inventory.count,
                                  inventory.reason.empty() ? "" : ": ", inventory.reason));
  }
  return request.device;
}

}  // namespace yw
