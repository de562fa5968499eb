// The CUDA twins' copy/compute schedules (device_schedule.hpp), as host code: built in every
// configuration so that the unit tests exercise what the .cu files run.
#include "yw/kernels/device_schedule.hpp"

#include <algorithm>

#include "yw/kernels/stft.hpp"

namespace yw {

namespace fingerprint_schedule {

Shape shape_of(std::size_t samples) {
  const auto n = static_cast<long long>(samples);
  Shape s;
  s.frames = n < kFrame ? 0 : (n - kFrame) / kHop + 1;
  s.rows = std::max(s.frames - 4, 0LL);
  s.items = std::max(s.rows - 15, 0LL);
  return s;
}

std::vector<Chunk> make_chunks(const std::vector<MonoSignal>& signals) {
  std::vector<int> active;
  for (int i = 0; i < static_cast<int>(signals.size()); ++i)
    if (shape_of(signals[static_cast<std::size_t>(i)].count).items > 0) active.push_back(i);
  const std::size_t share = (active.size() + kStreams - 1) / kStreams;
  std::vector<Chunk> chunks;
  for (const int i : active) {
    const MonoSignal& signal = signals[static_cast<std::size_t>(i)];
    const Shape shape = shape_of(signal.count);
    if (chunks.empty() || chunks.back().signals.size() >= share ||
        chunks.back().frames + shape.frames > kMaxFramesPerPlan)
      chunks.emplace_back();
    Chunk& c = chunks.back();
    c.signals.push_back(i);
    c.samples += static_cast<long long>(signal.count);
    c.frames += shape.frames;
    c.rows += shape.rows;
    c.items += shape.items;
  }
  return chunks;
}

}  // namespace fingerprint_schedule

namespace hpss_schedule {

long long cuda_block_frames(int block_frames) {
  return std::max<long long>(block_frames, kMinBlockFrames);
}

Plan plan(long long n, int n_fft, int hop, int harmonic_frames, long long block_frames) {
  Plan p;
  p.frames = stft_frame_count(StftConfig{n_fft, hop}, n);
  const long long hh = harmonic_frames / 2;
  p.block = std::min(p.frames, block_frames);
  // Enough frames for a full block and its median context on both sides; the plan transforms
  // this many every block, and rows past cb are computed and ignored.
  p.ctx_rows = std::min(p.frames, p.block + 2 * hh);

  long long uploaded_to = 0;  // samples [0, uploaded_to) are queued for upload
  long long final_from = 0;   // samples [0, final_from) are normalised and queued for download
  for (long long a = 0; a < p.frames; a += p.block) {
    Step s;
    s.a = a;
    s.b = std::min(p.frames, a + p.block);
    s.ca = std::max(0LL, a - hh);
    s.cb = std::min(p.frames, s.b + hh);

    // The transformed frames [ca, ca + ctx_rows) read samples up to this one (exclusive); samples
    // past n read as zero and are never uploaded.
    const long long need = std::min<long long>(n, (s.ca + p.ctx_rows - 1) * hop + n_fft / 2);
    s.upload_from = uploaded_to;
    s.upload_to = std::max(uploaded_to, need);
    uploaded_to = s.upload_to;

    // Frames from b on start at sample b * hop - n_fft / 2, so every sample before it has all of
    // its overlap-adds; later blocks never write it again. The last block ends the signal.
    const long long final_to =
        s.b == p.frames ? n : std::clamp<long long>(s.b * hop - n_fft / 2, 0, n);
    s.final_from = final_from;
    s.final_to = std::max(final_from, final_to);
    final_from = s.final_to;
    p.steps.push_back(s);
  }
  return p;
}

}  // namespace hpss_schedule

}  // namespace yw
