#pragma once
// The CUDA twin of hpss_cpu (hpss.hpp): same configuration, same contract, same output up to
// float rounding (cuFFT versus FFTW). Host-only header: no CUDA types.
#include <cstdint>

#include "yw/kernels/hpss.hpp"

namespace yw {

// Separates one channel on CUDA device `device`: x, harmonic and percussive are host buffers of
// n samples. Synchronous. Device memory is O(block_frames * n_fft) plus the signal and the two
// stems. Throws yw::Error naming the CUDA/cuFFT failure (no device, out of memory); in a build
// without CUDA it always throws.
void hpss_cuda(const HpssConfig& cfg, const float* x, int64_t n, float* harmonic, float* percussive,
               int device);

}  // namespace yw
