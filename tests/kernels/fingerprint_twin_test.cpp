// The CUDA twin against the CPU twin (label `gpu`): the same items on random signals and on
// generated music-like audio, many signals in one batch. Skips with a message without a device.
// Links only the core, the CUDA twin and gtest, so the device bundle (scripts/gpu-check.sh)
// carries it with a handful of libraries.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <random>

#include "kernels/random_pcm.hpp"
#include "yw/kernels/cuda/fingerprint_cuda.hpp"
#include "yw/kernels/device.hpp"
#include "yw/kernels/fingerprint.hpp"

namespace yw::test {
namespace {

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

// Music-like audio made here (drifting partials, chords, noise bursts, near-silence), so the
// test needs no sox, decoder or resampler on the GPU machine.
std::vector<std::int16_t> music_like(double seconds, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, 1.0);
  const auto n = static_cast<std::size_t>(seconds * 11025.0);
  std::vector<std::int16_t> out(n);
  const double pi = 3.14159265358979323846;
  for (std::size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / 11025.0;
    const int section = static_cast<int>(t / 5.0) % 4;
    const double f = 196.0 * (1.0 + 0.5 * (section % 3)) * (1.0 + 0.01 * std::sin(0.7 * t));
    double v = 0.0;
    if (section != 3) {
      v = 6000.0 * std::sin(2 * pi * f * t) + 4000.0 * std::sin(2 * pi * f * 1.25 * t) +
          3000.0 * std::sin(2 * pi * f * 1.5 * t) + (section == 2 ? 2500.0 : 300.0) * noise(rng);
    } else {
      v = 3.0 * noise(rng);  // near silence
    }
    out[i] = static_cast<std::int16_t>(std::clamp(v, -32768.0, 32767.0));
  }
  return out;
}

TEST(FingerprintTwins, MusicLikeAudio) {
  YW_REQUIRE_CUDA_DEVICE();
  std::vector<std::vector<std::int16_t>> pcm;
  for (unsigned i = 0; i < 4; ++i)
    pcm.push_back(music_like(40.0 + 7.0 * i, i));
  expect_twins_agree(pcm);
}

}  // namespace
}  // namespace yw::test
