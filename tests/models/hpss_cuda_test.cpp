// The CUDA twin of the built-in separator against the CPU twin (style.md habit 4): random
// signals of random lengths (shorter than a frame, not a multiple of the hop, several blocks),
// seed printed. Skips, saying why, when no CUDA device is usable.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "yw/kernels/cuda/hpss_cuda.hpp"
#include "yw/kernels/device.hpp"
#include "yw/kernels/hpss.hpp"

namespace {

// cuFFT and FFTW round differently; medians select the same bins except near ties.
constexpr double kHpssF32Nmse = 1e-6;
constexpr float kHpssF32MaxAbs = 1e-3f;

TEST(HpssCuda, MatchesTheCpuTwin) {
  const auto inv = yw::cuda_inventory();
  if (inv.count == 0) GTEST_SKIP() << "no CUDA device: " << inv.reason;
  const unsigned seed = std::random_device{}();
  std::mt19937 rng(seed);
  for (int trial = 0; trial < 6; ++trial) {
    // Trial 1 spans two of the CUDA twin's 4096-frame blocks.
    const int64_t n = trial == 0   ? 100
                      : trial == 1 ? 5'000'000
                                   : std::uniform_int_distribution<int64_t>(1, 800000)(rng);
    yw::HpssConfig cfg;
    if (trial >= 2 && trial % 2) cfg.stft = yw::StftConfig{1024, 256};
    std::normal_distribution<float> d(0.0f, 0.2f);
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      x[static_cast<size_t>(i)] = d(rng) + 0.3f * std::sin(0.05f * static_cast<float>(i));
    std::vector<float> hc(x.size()), pc(x.size()), hg(x.size()), pg(x.size());
    yw::hpss_cpu(cfg, x.data(), n, hc.data(), pc.data());
    yw::hpss_cuda(cfg, x.data(), n, hg.data(), pg.data(), 0);
    double err = 0.0, ref = 0.0;
    float max_abs = 0.0f, sum_err = 0.0f;
    for (size_t i = 0; i < x.size(); ++i) {
      err += std::pow(hc[i] - hg[i], 2) + std::pow(pc[i] - pg[i], 2);
      ref += std::pow(hc[i], 2) + std::pow(pc[i], 2);
      max_abs = std::max({max_abs, std::abs(hc[i] - hg[i]), std::abs(pc[i] - pg[i])});
      sum_err = std::max(sum_err, std::abs(hg[i] + pg[i] - x[i]));
    }
    const double nmse = ref > 0 ? err / ref : err;
    EXPECT_LT(nmse, kHpssF32Nmse) << "seed " << seed << " trial " << trial << " n " << n;
    EXPECT_LT(max_abs, kHpssF32MaxAbs) << "seed " << seed << " trial " << trial << " n " << n;
    EXPECT_LT(sum_err, 1e-4f) << "seed " << seed << " trial " << trial << " n " << n;
  }
}

TEST(HpssCuda, SilenceStaysSilent) {
  const auto inv = yw::cuda_inventory();
  if (inv.count == 0) GTEST_SKIP() << "no CUDA device: " << inv.reason;
  std::vector<float> x(5000, 0.0f), h(5000, 1.0f), p(5000, 1.0f);
  yw::hpss_cuda({}, x.data(), 5000, h.data(), p.data(), 0);
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(h[i], 0.0f);
    ASSERT_EQ(p[i], 0.0f);
  }
}

}  // namespace
