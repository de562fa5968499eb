// Built instead of kernels/cuda/hpss.cu when CUDA is not compiled in (models/CMakeLists.txt), so
// no shared source needs an #ifdef: asking for the GPU twin then fails with a plain message.
#include "yw/common/error.hpp"
#include "yw/kernels/cuda/hpss_cuda.hpp"

namespace yw {

void hpss_cuda(const HpssConfig& /*cfg*/, const float* /*x*/, int64_t /*n*/, float* /*harmonic*/,
               float* /*percussive*/, int device) {
  YW_THROW(
      "hpss on cuda:{}: this build has no CUDA support (configured with YW_CUDA=OFF or "
      "without nvcc)",
      device);
}

}  // namespace yw
