// The CUDA fingerprint twin's stand-in in a build without CUDA: resolve_device never yields a
// CUDA device there, so reaching this is a programming error, reported as such.
#include "yw/kernels/cuda/fingerprint_cuda.hpp"
#include "yw/common/error.hpp"

namespace yw {

std::vector<std::vector<std::uint32_t>> fingerprint_batch_cuda(const std::vector<MonoSignal>&,
                                                               int device) {
  YW_THROW("fingerprint on cuda:{}: this build has no CUDA support", device);
}

}  // namespace yw
