// The CUDA twins' copy/compute schedules (yw/kernels/device_schedule.hpp), checked on the host:
// no GPU runs in CI, so this is where the planning that fingerprint.cu and hpss.cu follow is
// executed at all. Cases are generated from fixed seeds, so a failure reproduces.
#include "yw/kernels/device_schedule.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "yw/kernels/fingerprint.hpp"
#include "yw/kernels/hpss.hpp"

namespace yw {
namespace {

namespace fs = fingerprint_schedule;
namespace hs = hpss_schedule;

// ---- fingerprint chunks ----------------------------------------------------------------------

// The documented item count (fingerprint.hpp): N samples give max(0, floor((N - 4096) / 1365) -
// 18) items; worked out here from the frame definition rather than through shape_of.
long long expected_items(std::size_t count) {
  const auto n = static_cast<long long>(count);
  if (n < kChromaprintFrameSize) return 0;
  return std::max(0LL, (n - kChromaprintFrameSize) / kChromaprintHop - 18);
}

// Samples for a signal of exactly `frames` frames.
std::size_t samples_for_frames(long long frames) {
  return static_cast<std::size_t>(kChromaprintFrameSize + (frames - 1) * kChromaprintHop);
}

// A batch of sample counts (the samples themselves are never read by the planner). Lengths mix
// empty and short signals (no items), signals at the item threshold, ordinary tracks and signals
// longer than one plan, so every way of closing a chunk occurs.
std::vector<MonoSignal> random_batch(std::mt19937& rng) {
  std::uniform_int_distribution<int> size(0, 40);
  std::uniform_int_distribution<int> kind(0, 9);
  const int n = size(rng);
  std::vector<MonoSignal> batch(static_cast<std::size_t>(n));
  for (MonoSignal& s : batch) {
    switch (kind(rng)) {
      case 0:
        s.count = 0;
        break;
      case 1:
        s.count = std::uniform_int_distribution<std::size_t>(1, samples_for_frames(20) - 1)(rng);
        break;
      case 2:  // around the first item: 20 frames
        s.count =
            samples_for_frames(20) - 1 + std::uniform_int_distribution<std::size_t>(0, 2)(rng);
        break;
      case 3:  // longer than one plan on its own
        s.count = samples_for_frames(std::uniform_int_distribution<long long>(
            kMaxFramesPerPlan, 3LL * kMaxFramesPerPlan)(rng));
        break;
      case 4:  // just fits one plan, or just does not
        s.count = samples_for_frames(kMaxFramesPerPlan - 1 +
                                     std::uniform_int_distribution<long long>(0, 2)(rng));
        break;
      default:  // 3 s to 3 min at 11025 Hz
        s.count = std::uniform_int_distribution<std::size_t>(33075, 1984500)(rng);
        break;
    }
  }
  return batch;
}

std::vector<int> active_of(const std::vector<MonoSignal>& batch) {
  std::vector<int> active;
  for (std::size_t i = 0; i < batch.size(); ++i)
    if (expected_items(batch[i].count) > 0) active.push_back(static_cast<int>(i));
  return active;
}

constexpr int kCases = 2000;

template <typename Check>
void for_random_batches(Check check) {
  for (unsigned seed = 1; seed <= kCases; ++seed) {
    std::mt19937 rng(seed);
    const std::vector<MonoSignal> batch = random_batch(rng);
    SCOPED_TRACE("seed " + std::to_string(seed) + ", " + std::to_string(batch.size()) + " signals");
    check(batch, fs::make_chunks(batch));
    if (::testing::Test::HasFailure()) return;  // one reproducible case is enough
  }
}

TEST(FingerprintSchedule, ShapeMatchesTheDocumentedItemCount) {
  for (std::size_t n = 0; n < samples_for_frames(40); ++n) {
    const fs::Shape s = fs::shape_of(n);
    ASSERT_EQ(s.items, expected_items(n)) << n << " samples";
    const long long frames =
        n < static_cast<std::size_t>(kChromaprintFrameSize)
            ? 0
            : (static_cast<long long>(n) - kChromaprintFrameSize) / kChromaprintHop + 1;
    ASSERT_EQ(s.frames, frames) << n << " samples";
    ASSERT_EQ(s.rows, std::max(0LL, frames - 4)) << n << " samples";
  }
}

TEST(FingerprintSchedule, EverySignalWithItemsOnceInOrderAndNoOther) {
  for_random_batches(
      [](const std::vector<MonoSignal>& batch, const std::vector<fs::Chunk>& chunks) {
        std::vector<int> seen;
        for (const fs::Chunk& c : chunks) {
          EXPECT_FALSE(c.signals.empty()) << "an empty chunk";
          seen.insert(seen.end(), c.signals.begin(), c.signals.end());
        }
        // Equal to the ascending list of signals with items: each once, in order, none without.
        EXPECT_EQ(seen, active_of(batch));
      });
}

TEST(FingerprintSchedule, ChunkFramesWithinOnePlanUnlessOneLongerSignal) {
  for_random_batches(
      [](const std::vector<MonoSignal>& batch, const std::vector<fs::Chunk>& chunks) {
        for (const fs::Chunk& c : chunks) {
          long long frames = 0;
          for (const int i : c.signals)
            frames += fs::shape_of(batch[static_cast<std::size_t>(i)].count).frames;
          if (c.signals.size() > 1) {
            EXPECT_LE(frames, kMaxFramesPerPlan) << "chunk of " << c.signals.size();
          }
        }
      });
}

TEST(FingerprintSchedule, ChunkHoldsAtMostItsShareOfTheBatch) {
  for_random_batches(
      [](const std::vector<MonoSignal>& batch, const std::vector<fs::Chunk>& chunks) {
        const std::size_t active = active_of(batch).size();
        const std::size_t share = (active + fs::kStreams - 1) / fs::kStreams;
        for (const fs::Chunk& c : chunks)
          EXPECT_LE(c.signals.size(), share) << active << " signals with items";
      });
}

TEST(FingerprintSchedule, TwoOrMoreSignalsArePipelined) {
  int pipelined = 0;
  for_random_batches(
      [&](const std::vector<MonoSignal>& batch, const std::vector<fs::Chunk>& chunks) {
        const std::size_t active = active_of(batch).size();
        if (active >= 2) {
          EXPECT_GE(chunks.size(), 2U) << active << " signals with items";
          ++pipelined;
        } else {
          EXPECT_EQ(chunks.size(), active);
        }
      });
  EXPECT_GT(pipelined, kCases / 2);  // the generator does reach the case
}

TEST(FingerprintSchedule, ChunkTotalsAreTheSumsOfItsSignals) {
  for_random_batches(
      [](const std::vector<MonoSignal>& batch, const std::vector<fs::Chunk>& chunks) {
        for (const fs::Chunk& c : chunks) {
          long long samples = 0, frames = 0, rows = 0, items = 0;
          for (const int i : c.signals) {
            const std::size_t count = batch[static_cast<std::size_t>(i)].count;
            const fs::Shape s = fs::shape_of(count);
            samples += static_cast<long long>(count);
            frames += s.frames;
            rows += s.rows;
            items += s.items;
            EXPECT_EQ(s.items, expected_items(count));
          }
          EXPECT_EQ(c.samples, samples);
          EXPECT_EQ(c.frames, frames);
          EXPECT_EQ(c.rows, rows);
          EXPECT_EQ(c.items, items);
        }
      });
}

TEST(FingerprintSchedule, EdgeBatches) {
  EXPECT_TRUE(fs::make_chunks({}).empty());
  // Nothing with items: no device work at all.
  EXPECT_TRUE(
      fs::make_chunks({{nullptr, 0}, {nullptr, 1}, {nullptr, samples_for_frames(19)}}).empty());
  // One signal, however long, is one chunk.
  const auto one = fs::make_chunks({{nullptr, samples_for_frames(3 * kMaxFramesPerPlan)}});
  ASSERT_EQ(one.size(), 1U);
  EXPECT_EQ(one[0].frames, 3 * kMaxFramesPerPlan);
  // Two short signals still go to both streams; the silent one between them is skipped.
  const auto two = fs::make_chunks(
      {{nullptr, samples_for_frames(20)}, {nullptr, 100}, {nullptr, samples_for_frames(20)}});
  ASSERT_EQ(two.size(), 2U);
  EXPECT_EQ(two[0].signals, std::vector<int>{0});
  EXPECT_EQ(two[1].signals, std::vector<int>{2});
  EXPECT_EQ(two[0].items, 1);
  // Exactly one plan's frames fit one chunk; one more frame closes it.
  const std::size_t half = samples_for_frames(kMaxFramesPerPlan / 2);
  const std::vector<MonoSignal> four(4, MonoSignal{nullptr, half});
  const auto fit = fs::make_chunks(four);
  ASSERT_EQ(fit.size(), 2U);
  EXPECT_EQ(fit[0].frames, kMaxFramesPerPlan);
  std::vector<MonoSignal> over = four;
  over[3].count += kChromaprintHop;
  const auto split = fs::make_chunks(over);
  ASSERT_EQ(split.size(), 3U);
  EXPECT_EQ(split[0].signals, (std::vector<int>{0, 1}));
  EXPECT_EQ(split[1].signals, std::vector<int>{2});
  EXPECT_EQ(split[2].signals, std::vector<int>{3});
}

// ---- HPSS pieces -----------------------------------------------------------------------------

struct HpssCase {
  long long n;
  int n_fft, hop, harmonic_frames;
  long long block_frames;
};

std::string describe(const HpssCase& c) {
  return "n " + std::to_string(c.n) + ", n_fft " + std::to_string(c.n_fft) + ", hop " +
         std::to_string(c.hop) + ", harmonic " + std::to_string(c.harmonic_frames) + ", block " +
         std::to_string(c.block_frames);
}

// Samples [lo, hi) of frame f, clipped to the signal: the frame definition of stft.hpp (centred
// on f * hop, n_fft long), which both the analysis reads and the overlap-add writes follow.
void frame_span(const HpssCase& c, long long f, long long& lo, long long& hi) {
  lo = std::max(0LL, f * c.hop - c.n_fft / 2);
  hi = std::min(c.n, f * c.hop + c.n_fft / 2);
}

// Checks one plan against the contract, frame by frame where the signal is short enough and
// through the extreme frames (the same conditions, since frame spans grow with f) where it is
// not. A frame's span is contiguous, so checking its ends checks every sample in it.
void check_plan(const HpssCase& c) {
  SCOPED_TRACE(describe(c));
  const hs::Plan p = hs::plan(c.n, c.n_fft, c.hop, c.harmonic_frames, c.block_frames);
  const long long frames = (c.n + c.hop - 1) / c.hop + 1;  // stft.hpp: ceil(n / hop) + 1
  const long long hh = c.harmonic_frames / 2;
  ASSERT_EQ(p.frames, frames);
  ASSERT_FALSE(p.steps.empty());
  ASSERT_LE(p.block, frames);
  ASSERT_LE(p.ctx_rows, frames);  // the R2C plan's batch
  const bool brute = c.n <= 50000;

  long long next_frame = 0;   // blocks: consecutive, each frame once
  long long uploaded_to = 0;  // uploads: consecutive from 0
  long long downloaded_to = 0;
  for (std::size_t i = 0; i < p.steps.size(); ++i) {
    const hs::Step& s = p.steps[i];
    SCOPED_TRACE("step " + std::to_string(i));
    ASSERT_EQ(s.a, next_frame);
    ASSERT_GT(s.b, s.a);
    ASSERT_LE(s.b - s.a, p.block);  // the median and C2R buffers hold one block
    next_frame = s.b;

    // The transformed frames cover every frame a harmonic median of the block reads, and the
    // magnitudes taken ([ca, cb)) fit the ctx_rows the buffers hold.
    const long long need_lo = std::max(0LL, s.a - hh);
    const long long need_hi = std::min(frames, s.b + hh);
    EXPECT_LE(s.ca, need_lo);
    EXPECT_GE(s.cb, need_hi);
    EXPECT_GE(s.ca, 0);
    EXPECT_LE(s.cb, frames);
    EXPECT_LE(s.cb - s.ca, p.ctx_rows);
    EXPECT_GE(s.ca + p.ctx_rows, s.cb);

    // Upload before the block: consecutive, then everything the transformed frames read.
    ASSERT_EQ(s.upload_from, uploaded_to);
    ASSERT_GE(s.upload_to, s.upload_from);
    uploaded_to = s.upload_to;
    EXPECT_LE(uploaded_to, c.n);
    if (brute) {
      for (long long f = s.ca; f < s.ca + p.ctx_rows; ++f) {
        long long lo = 0, hi = 0;
        frame_span(c, f, lo, hi);
        if (lo < hi) {
          ASSERT_LE(hi, uploaded_to)
              << "frame " << f << " reads sample " << hi - 1 << ", not uploaded";
        }
      }
    } else {
      long long lo = 0, hi = 0;
      frame_span(c, s.ca + p.ctx_rows - 1, lo, hi);
      EXPECT_LE(hi, uploaded_to);
    }

    // The block's overlap-add writes only samples not yet downloaded.
    if (brute) {
      for (long long f = s.a; f < s.b; ++f) {
        long long lo = 0, hi = 0;
        frame_span(c, f, lo, hi);
        if (lo < hi) {
          ASSERT_GE(lo, downloaded_to)
              << "frame " << f << " writes sample " << lo << " after it was downloaded";
        }
      }
    } else {
      long long lo = 0, hi = 0;
      frame_span(c, s.a, lo, hi);
      if (lo < hi) {
        EXPECT_GE(lo, downloaded_to);
      }
    }

    // Download after the block: consecutive, and only samples that no later frame overlaps.
    ASSERT_EQ(s.final_from, downloaded_to);
    ASSERT_GE(s.final_to, s.final_from);
    downloaded_to = s.final_to;
    EXPECT_LE(downloaded_to, c.n);
    if (s.b < frames) {
      long long lo = 0, hi = 0;
      frame_span(c, s.b, lo, hi);  // the first frame still to run; later ones start later
      if (lo < hi) {
        EXPECT_LE(downloaded_to, lo) << "frame " << s.b << " still writes there";
      }
    }
  }
  EXPECT_EQ(next_frame, frames);  // every frame in exactly one block
  EXPECT_EQ(uploaded_to, c.n);    // the whole signal went up once
  EXPECT_EQ(downloaded_to, c.n);  // and came back once
  EXPECT_GT(p.steps.back().final_to, p.steps.back().final_from);  // the last step always ends one
}

TEST(HpssSchedule, GeneratedShapesKeepTheContract) {
  for (unsigned seed = 1; seed <= 3000; ++seed) {
    std::mt19937 rng(seed);
    HpssCase c;
    const int half = std::uniform_int_distribution<int>(2, 32)(rng);
    c.n_fft = 2 * half;
    c.hop = std::uniform_int_distribution<int>(1, half)(rng);  // stft.hpp: 0 < hop <= n_fft / 2
    c.harmonic_frames = 2 * std::uniform_int_distribution<int>(0, 8)(rng) + 1;
    c.block_frames = std::uniform_int_distribution<long long>(1, 64)(rng);
    switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
      case 0:  // shorter than a frame
        c.n = std::uniform_int_distribution<long long>(1, c.n_fft)(rng);
        break;
      case 1:  // an exact number of blocks, give or take one sample
        c.n = std::max<long long>(
            1, std::uniform_int_distribution<long long>(1, 6)(rng) * c.block_frames * c.hop +
                   std::uniform_int_distribution<long long>(-1, 1)(rng));
        break;
      default:
        c.n = std::uniform_int_distribution<long long>(1, 20000)(rng);
        break;
    }
    SCOPED_TRACE("seed " + std::to_string(seed));
    check_plan(c);
    if (HasFailure()) return;
  }
}

TEST(HpssSchedule, TheCudaTwinsShapes) {
  const HpssConfig cfg;
  const long long block = hs::cuda_block_frames(cfg.block_frames);
  EXPECT_EQ(block, hs::kMinBlockFrames);
  EXPECT_EQ(hs::cuda_block_frames(10000), 10000);
  const long long hop = cfg.stft.hop;
  // One sample; less than a frame, a hop, a block; exact multiples of a block; 10 min at 44.1 kHz.
  for (const long long n :
       {1LL, 2LL, hop - 1, hop, hop + 1, 4095LL, 4096LL, 4097LL, (block - 1) * hop, block * hop,
        block * hop + 1, 3 * block * hop - 1, 3 * block * hop, 26460000LL}) {
    check_plan({n, cfg.stft.n_fft, cfg.stft.hop, cfg.harmonic_frames, block});
  }
}

TEST(HpssSchedule, EdgeCases) {
  // One sample: two frames, one block, the sample goes up and comes back once.
  hs::Plan p = hs::plan(1, 16, 4, 5, 8);
  EXPECT_EQ(p.frames, 2);
  ASSERT_EQ(p.steps.size(), 1U);
  EXPECT_EQ(p.block, 2);
  EXPECT_EQ(p.ctx_rows, 2);
  EXPECT_EQ(p.steps[0].upload_from, 0);
  EXPECT_EQ(p.steps[0].upload_to, 1);
  EXPECT_EQ(p.steps[0].final_from, 0);
  EXPECT_EQ(p.steps[0].final_to, 1);

  // Shorter than one block: a single step with everything.
  p = hs::plan(30, 16, 4, 5, 100);
  ASSERT_EQ(p.steps.size(), 1U);
  EXPECT_EQ(p.steps[0].upload_to, 30);
  EXPECT_EQ(p.steps[0].final_to, 30);

  // Frames an exact multiple of the block: n = 76, hop 4 gives ceil(76 / 4) + 1 = 20 frames,
  // two full blocks of 10 and nothing left over.
  p = hs::plan(76, 16, 4, 1, 10);
  EXPECT_EQ(p.frames, 20);
  ASSERT_EQ(p.steps.size(), 2U);
  EXPECT_EQ(p.steps[1].b, 20);
  // After block 0 (frames 0..9), frame 10 starts at sample 10 * 4 - 8 = 32.
  EXPECT_EQ(p.steps[0].final_to, 32);
  // Frames 0..9 read up to frame 9's end, 9 * 4 + 8 = 44 (no context with a 1-frame median).
  EXPECT_EQ(p.steps[0].upload_to, 44);
  EXPECT_EQ(p.steps[1].final_to, 76);
  EXPECT_EQ(p.steps[1].upload_to, 76);

  // A block of one frame whose frames reach nothing new: no upload or download for that step.
  p = hs::plan(40, 16, 2, 1, 1);
  bool empty_upload = false, empty_download = false;
  for (const hs::Step& s : p.steps) {
    empty_upload = empty_upload || s.upload_to == s.upload_from;
    empty_download = empty_download || s.final_to == s.final_from;
  }
  EXPECT_TRUE(empty_upload);
  EXPECT_TRUE(empty_download);
  check_plan({40, 16, 2, 1, 1});
}

}  // namespace
}  // namespace yw
