// The CUDA rescoring twin's stand-in in a build without CUDA: resolve_device never yields a
// CUDA device there, so reaching this is a programming error, reported as such.
#include "yw/kernels/cuda/fingerprint_match_cuda.hpp"
#include "yw/common/error.hpp"

namespace yw {

std::vector<std::uint64_t> bit_errors_batch_cuda(const std::uint32_t*, std::size_t,
                                                 const std::vector<ItemsView>&,
                                                 const std::vector<BitErrorTask>&, int device) {
  YW_THROW("fingerprint match on cuda:{}: this build has no CUDA support", device);
}

}  // namespace yw
