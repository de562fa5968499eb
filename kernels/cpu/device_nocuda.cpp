// The device inventory of a build without CUDA: no devices, and it says so.
#include "yw/kernels/device.hpp"

namespace yw {

CudaInventory cuda_inventory() noexcept {
  CudaInventory inv;
  inv.reason = "built without CUDA (-DYW_CUDA=OFF or no nvcc at build time)";
  return inv;
}

}  // namespace yw
