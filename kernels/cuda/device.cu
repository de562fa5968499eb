// The device inventory of a CUDA build. Every failure (no driver, no device, a driver older than
// the runtime) becomes count 0 plus the CUDA runtime's own words, never an exception.
#include <cuda_runtime.h>

#include <fmt/format.h>

#include "yw/kernels/device.hpp"

namespace yw {
namespace {

std::string describe_device(int index) noexcept {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) {
    cudaGetLastError();
    return {};
  }
  try {
    return fmt::format("{} (sm_{}{}, {:.0f} GiB)", prop.name, prop.major, prop.minor,
                       static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  } catch (...) {
    return {};
  }
}

}  // namespace

CudaInventory cuda_inventory() noexcept {
  CudaInventory inv;
  inv.compiled_in = true;
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    inv.reason = fmt::format("{} ({})", cudaGetErrorString(err), cudaGetErrorName(err));
    cudaGetLastError();  // clear the sticky error so later calls are not poisoned
    return inv;
  }
  inv.count = count;
  if (count == 0) inv.reason = "the CUDA runtime reports no device";
  for (int i = 0; i < count; ++i)
    inv.devices.push_back(describe_device(i));
  return inv;
}

}  // namespace yw
