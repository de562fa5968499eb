// The device inventory of a build without CUDA: no devices, and it says so.
#include "yw/kernels/device.hpp"

namespace yw {

bool cuda_compiled_in() noexcept {
  return false;
}

CudaInventory cuda_inventory() noexcept {
  return {0, "built without CUDA (-DYW_CUDA=OFF or no nvcc at build time)"};
}

std::string cuda_device_description(int /*index*/) noexcept {
  return {};
}

}  // namespace yw
