#pragma once
// How the CUDA twins split their work into pieces that overlap copies with kernels: the pure
// planning arithmetic of kernels/cuda/fingerprint.cu and kernels/cuda/hpss.cu. It holds no CUDA
// types and is compiled into yw_kernels in every build (CUDA or not), so the unit tests check the
// schedules on machines without a GPU; the .cu files follow these plans and add only the device
// calls. C++17, since nvcc includes it.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "yw/kernels/cuda/fingerprint_cuda.hpp"  // MonoSignal, kMaxFramesPerPlan (host-only)

namespace yw {

namespace fingerprint_schedule {

// Chromaprint's analysis frame and hop, in samples at 11025 Hz.
inline constexpr int kFrame = 4096;
inline constexpr int kHop = 1365;

// Two streams, used in turn by consecutive chunks: while chunk k's kernels run on one, the host
// stages chunk k+1 and its upload runs on the other, and chunk k's download then runs beside
// chunk k+1's kernels. The GPU has one copy engine per direction, so a third stream would only
// queue behind them; a fixed choice rather than a setting.
inline constexpr int kStreams = 2;

// What a signal of `samples` samples needs: spectrum frames, filtered chroma rows (5-frame
// filter) and items (16-row classifier windows). Each is zero when the signal is too short.
struct Shape {
  long long frames = 0, rows = 0, items = 0;
};
Shape shape_of(std::size_t samples);

// Consecutive signals of a batch that run together. Every quantity of a signal (its frames, its
// chroma rows, its integral image, its items) depends only on that signal, so splitting a batch
// into chunks changes which buffers hold a signal, never the arithmetic done for it. The totals
// are the sums of the chunk's signals' shapes and sample counts.
struct Chunk {
  std::vector<int> signals;  // indices into the batch, ascending
  long long samples = 0, frames = 0, rows = 0, items = 0;
};

// Signals without items need no device work and are left out; every other signal lands in
// exactly one chunk, in batch order. A chunk is closed before it would pass kMaxFramesPerPlan
// frames (one cuFFT execution; a longer signal is a chunk of its own) or hold more than its share
// of the batch (ceil(signals with items / kStreams)), so that any batch of two or more such
// signals is pipelined and the buffers are bounded by the chunk, not the batch.
std::vector<Chunk> make_chunks(const std::vector<MonoSignal>& signals);

}  // namespace fingerprint_schedule

namespace hpss_schedule {

// The smallest block the CUDA twin runs: a larger block than the CPU's keeps the GPU busy, and
// the result does not depend on it.
inline constexpr int kMinBlockFrames = 4096;

// One block of frames and the copies around it, in the order hpss.cu issues them: upload the
// samples [upload_from, upload_to), transform frames [ca, ca + ctx_rows) and take medians over
// [ca, cb) for the block's frames [a, b), overlap-add them, then normalise and download the
// samples [final_from, final_to). An empty range (from == to) means no copy for that step.
struct Step {
  long long a = 0, b = 0;    // the block's frames
  long long ca = 0, cb = 0;  // its harmonic-median context, clipped to the spectrogram
  long long upload_from = 0, upload_to = 0;
  long long final_from = 0, final_to = 0;
};

struct Plan {
  long long frames = 0;    // stft_frame_count of the signal
  long long block = 0;     // frames per block (the last may be shorter)
  long long ctx_rows = 0;  // frames transformed per block (the R2C plan's batch)
  std::vector<Step> steps;
};

// The schedule of a signal of n >= 1 samples with frames of n_fft (even) samples every hop,
// blocks of `block_frames` frames (clipped to the signal) and a harmonic median of
// harmonic_frames frames. Contract, relied on by hpss.cu and checked by the unit tests:
//  - blocks run in order and cover [0, frames) once; the transformed frames cover each block's
//    median context;
//  - uploads are consecutive, cover [0, n) exactly once, and before a block runs every sample its
//    transformed frames read is uploaded;
//  - downloads are consecutive, cover [0, n) exactly once, and a sample is downloaded only after
//    the block holding the last frame that overlaps it (frame f covers samples
//    [f * hop - n_fft / 2, f * hop + n_fft / 2)), so nothing later changes it.
Plan plan(long long n, int n_fft, int hop, int harmonic_frames, long long block_frames);

// The CUDA twin's block for a configured block_frames: at least kMinBlockFrames.
long long cuda_block_frames(int block_frames);

}  // namespace hpss_schedule

}  // namespace yw
