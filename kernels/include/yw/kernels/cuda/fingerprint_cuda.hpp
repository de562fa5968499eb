#pragma once
// The CUDA twin of fingerprint_cpu / fingerprint_batch_cpu (yw/kernels/fingerprint.hpp).
// Host-only header, C++17: no CUDA types, so CPU code can name it.
//
// All frames go through batched cuFFT R2C plans of kMaxFramesPerPlan frames; window, power,
// chroma, chroma filter, normaliser, integral image and classifiers run as CUDA kernels with the
// CPU twin's rounding (no FMA contraction, the same summation orders, a double cumulative
// integral image), so the items are the CPU twin's. The one difference that can remain is the
// float FFT itself (cuFFT versus FFTW): an item can differ where a classifier value sits within
// float rounding of a threshold.
//
// A batch is split into chunks of whole signals (at most kMaxFramesPerPlan frames, or one longer
// signal, and at most half the signals) that alternate between two non-blocking streams, staged
// through pinned host memory, so one chunk's copies overlap another's kernels. A signal's items
// do not depend on the chunk it lands in or on the rest of the batch.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace yw {

// One int16 mono 11025 Hz signal in host memory (what FpcalcResampler produces).
struct MonoSignal {
  const std::int16_t* samples = nullptr;
  std::size_t count = 0;
};

// 4096-point frames per cuFFT execution, and the frame budget of one chunk.
inline constexpr int kMaxFramesPerPlan = 4096;

// out[i] = the items of signals[i] (empty below 20 frames), computed on CUDA device `device`.
// Synchronous: returns when every item is in host memory; `signals` is only read before that.
//
// State: each device gets, on first use, a runner that lives until the process exits: two
// streams, two cuFFT plans and, per stream, pinned host and device buffers that grow to the
// largest chunk seen (128 MiB of FFT buffers and the cuFFT work area, then per chunk frame about
// 2.7 KiB of samples and 300 bytes of chroma, rows, image and items). A failed call frees the
// grown buffers before it throws.
//
// Thread-safe. Calls on one device run one after another (the worker's one FingerprintBatcher per
// device already calls it that way); calls on different devices run concurrently. Sets the
// calling thread's current device to `device`. Throws yw::Error naming the CUDA/cuFFT failure
// (no device, out of memory).
std::vector<std::vector<std::uint32_t>> fingerprint_batch_cuda(
    const std::vector<MonoSignal>& signals, int device = 0);

}  // namespace yw
