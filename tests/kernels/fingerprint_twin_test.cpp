// The CUDA twin against the CPU twin (label `gpu`): the same items on random signals and on
// generated music-like audio, many signals in one batch. Skips with a message without a device.
#include <gtest/gtest.h>

#include <bit>
#include <filesystem>
#include <random>

#include "kernels/audio_fixtures.hpp"
#include "kernels/random_pcm.hpp"
#include "support/process.hpp"
#include "yw/kernels/audio.hpp"
#include "yw/kernels/cuda/fingerprint_cuda.hpp"
#include "yw/kernels/device.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/kernels/fpcalc_resample.hpp"

namespace yw::test {
namespace {

namespace fs = std::filesystem;

#define YW_REQUIRE_CUDA_DEVICE()                                                               \
  do {                                                                                         \
    const auto inv = cuda_inventory();                                                         \
    if (inv.count == 0) GTEST_SKIP() << "no CUDA device (" << inv.reason << "): twin not run"; \
  } while (0)

// Items that differ, and bits that differ, between the twins; printed so a drift is visible.
void expect_twins_agree(const std::vector<std::vector<std::int16_t>>& pcm) {
  std::vector<std::span<const std::int16_t>> spans;
  std::vector<MonoSignal> signals;
  for (const auto& p : pcm) {
    spans.emplace_back(p);
    signals.push_back({p.data(), p.size()});
  }
  const auto cpu = fingerprint_batch_cpu(spans);
  const auto gpu = fingerprint_batch_cuda(signals, 0);
  ASSERT_EQ(gpu.size(), cpu.size());
  std::size_t items = 0;
  std::size_t differing_items = 0;
  std::size_t differing_bits = 0;
  for (std::size_t i = 0; i < cpu.size(); ++i) {
    ASSERT_EQ(gpu[i].size(), cpu[i].size()) << "signal " << i;
    for (std::size_t k = 0; k < cpu[i].size(); ++k) {
      ++items;
      if (gpu[i][k] != cpu[i][k]) {
        ++differing_items;
        differing_bits += static_cast<std::size_t>(std::popcount(gpu[i][k] ^ cpu[i][k]));
      }
    }
  }
  std::printf("[ TWINS    ] %zu signals, %zu items, %zu differing items, %zu differing bits\n",
              cpu.size(), items, differing_items, differing_bits);
  EXPECT_EQ(differing_items, 0u);
}

TEST(FingerprintTwins, RandomSignalsInOneBatch) {
  YW_REQUIRE_CUDA_DEVICE();
  std::vector<std::vector<std::int16_t>> pcm;
  std::mt19937 rng(42);
  for (int i = 0; i < 24; ++i) {
    const std::size_t n = 11025 * (1 + rng() % 90) + rng() % 1365;
    pcm.push_back(random_pcm(n, static_cast<unsigned>(i), i % 3 == 0 ? 200 : 20000));
  }
  pcm.push_back(std::vector<std::int16_t>(11025 * 10, 0));  // silence
  pcm.push_back(random_pcm(1000, 9, 100));                  // no items at all
  expect_twins_agree(pcm);
}

TEST(FingerprintTwins, ManyFramesAcrossPlanChunks) {
  YW_REQUIRE_CUDA_DEVICE();
  // More than kMaxFramesPerPlan frames in total, so the plan runs several times.
  std::vector<std::vector<std::int16_t>> pcm;
  for (int i = 0; i < 3; ++i)
    pcm.push_back(random_pcm(static_cast<std::size_t>(11025) * 900, 100 + i, 15000));
  expect_twins_agree(pcm);
}

TEST(FingerprintTwins, GeneratedAudio) {
  YW_REQUIRE_CUDA_DEVICE();
  const fs::path dir = make_temp_dir("yw-fp-twins");
  std::vector<std::vector<std::int16_t>> pcm;
  int n = 0;
  for (const Content c :
       {Content::chords, Content::noise, Content::speech, Content::near_silence}) {
    const fs::path file = dir / ("in" + std::to_string(n++) + ".wav");
    make_audio(file, c, 44100, 2, 40.0);
    auto reader = AudioReader::open(file);
    FpcalcResampler resampler(reader->info().sample_rate, reader->info().channels);
    std::vector<std::int16_t> block(8192 * 2);
    std::vector<std::int16_t> mono;
    while (const std::size_t got = reader->read_int16(block.data(), 8192))
      resampler.feed(block.data(), got, mono);
    resampler.flush(mono);
    pcm.push_back(std::move(mono));
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  expect_twins_agree(pcm);
}

}  // namespace
}  // namespace yw::test
