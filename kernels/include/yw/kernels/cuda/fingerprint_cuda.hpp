#pragma once
// The CUDA twin of fingerprint_cpu / fingerprint_batch_cpu (yw/kernels/fingerprint.hpp).
// Host-only header, C++17: no CUDA types, so CPU code can name it.
//
// All frames of all signals go through one batched cuFFT R2C plan (in chunks of at most
// kMaxFramesPerPlan frames); window, power, chroma, chroma filter, normaliser, integral image and
// classifiers run as CUDA kernels with the CPU twin's rounding (no FMA contraction, the same
// summation orders, a double cumulative integral image), so the items are the CPU twin's.
// The one difference that can remain is the float FFT itself (cuFFT versus FFTW): an item can
// differ where a classifier value sits within float rounding of a threshold.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace yw {

// One int16 mono 11025 Hz signal in host memory (what FpcalcResampler produces).
struct MonoSignal {
  const std::int16_t* samples = nullptr;
  std::size_t count = 0;
};

inline constexpr int kMaxFramesPerPlan = 16384;  // 4096-point frames per cuFFT execution

// out[i] = the items of signals[i], computed on CUDA device `device`. Synchronous. Device memory:
// the samples, O(kMaxFramesPerPlan * 4096) FFT buffers, 12 doubles per frame and the items.
// Throws yw::Error naming the CUDA/cuFFT failure (no device, out of memory).
std::vector<std::vector<std::uint32_t>> fingerprint_batch_cuda(
    const std::vector<MonoSignal>& signals, int device = 0);

}  // namespace yw
