// kernels/cuda/fingerprint_match.cu compiled as C++ against the host stand-in runtime
// (cuda_runtime.h here): the very source the `gpu` label runs on a device. Its entry point is
// renamed so that a test can link the worker (whose match batcher names the real one, or the
// CPU-only tree's stub) next to it without two definitions of one symbol.
#define bit_errors_batch_cuda bit_errors_batch_cuda_emulated
#include "../../../kernels/cuda/fingerprint_match.cu"
