// STFT, resampler and HPSS (CPU twins): perfect reconstruction, band-limited conversion, the
// HPSS contract (stems sum to the input, silence stays silent, any length).
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>
#include <vector>

#include "yw/common/error.hpp"
#include "yw/kernels/hpss.hpp"
#include "yw/kernels/resample.hpp"
#include "yw/kernels/stft.hpp"

namespace {

std::vector<float> noise(int64_t n, unsigned seed, float amp = 0.5f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-amp, amp);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v)
    x = d(rng);
  return v;
}

float max_abs_diff(const float* a, const float* b, int64_t n) {
  float m = 0.0f;
  for (int64_t i = 0; i < n; ++i)
    m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

double energy(const std::vector<float>& v) {
  double e = 0.0;
  for (float x : v)
    e += static_cast<double>(x) * x;
  return e;
}

TEST(Stft, ReconstructsAnyLength) {
  for (const yw::StftConfig cfg :
       {yw::StftConfig{2048, 512}, yw::StftConfig{512, 128}, yw::StftConfig{16, 8}}) {
    for (int64_t n : {1, 7, 511, 2048, 2049, 10007}) {
      const auto x = noise(n, static_cast<unsigned>(n));
      yw::StftCpu stft(cfg);
      const int64_t frames = yw::stft_frame_count(cfg, n);
      std::vector<std::complex<float>> spec(static_cast<size_t>(frames * yw::stft_bins(cfg)));
      stft.forward(x.data(), n, 0, frames, spec.data());
      std::vector<float> y(static_cast<size_t>(n), 0.0f);
      stft.inverse_add(spec.data(), 0, frames, y.data(), n);
      yw::istft_normalise_cpu(cfg, y.data(), n);
      EXPECT_LT(max_abs_diff(x.data(), y.data(), n), 2e-6f) << "n_fft " << cfg.n_fft << " n " << n;
    }
  }
}

TEST(Stft, RejectsBadConfig) {
  EXPECT_THROW(yw::validate(yw::StftConfig{2047, 512}), yw::Error);
  EXPECT_THROW(yw::validate(yw::StftConfig{2048, 2000}), yw::Error);
  EXPECT_THROW(yw::validate(yw::StftConfig{2048, 0}), yw::Error);
}

// A sine of frequency f at rate r, sample i.
float sine(double f, int rate, int64_t i) {
  return static_cast<float>(0.5 *
                            std::sin(2.0 * std::numbers::pi * f * static_cast<double>(i) / rate));
}

TEST(Resample, SineSurvivesCommonRatios) {
  for (auto [from, to] : {std::pair{44100, 48000},
                          {48000, 44100},
                          {22050, 44100},
                          {44100, 22050},
                          {44100, 16000},
                          {8000, 44100}}) {
    const double f = 997.0;
    const int64_t n = from / 2;
    std::vector<float> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      x[static_cast<size_t>(i)] = sine(f, from, i);
    const auto y = yw::resample_cpu(x.data(), n, from, to);
    ASSERT_EQ(static_cast<int64_t>(y.size()), yw::resampled_length(n, from, to));
    // Away from the edges (the filter sees zeros outside the input) the sine is exact to ~1e-4.
    float err = 0.0f;
    for (int64_t j = to / 20; j < static_cast<int64_t>(y.size()) - to / 20; ++j)
      err = std::max(err, std::abs(y[static_cast<size_t>(j)] - sine(f, to, j)));
    EXPECT_LT(err, 2e-4f) << from << " -> " << to;
  }
}

TEST(Resample, RemovesContentAboveTheNewNyquist) {
  // 20 kHz at 48 kHz cannot exist at 22.05 kHz: it must be attenuated, not aliased to 2.05 kHz.
  const int64_t n = 48000;
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    x[static_cast<size_t>(i)] = sine(20000.0, 48000, i);
  const auto y = yw::resample_cpu(x.data(), n, 48000, 22050);
  std::vector<float> mid(y.begin() + 2000, y.end() - 2000);
  const double rms = std::sqrt(energy(mid) / static_cast<double>(mid.size()));
  EXPECT_LT(rms, 0.5 / std::sqrt(2.0) * 1e-3);  // at least 60 dB down
}

TEST(Resample, SameRateCopiesAndPads) {
  const auto x = noise(100, 3);
  std::vector<float> y(120, 1.0f);
  yw::resample_cpu(x.data(), 100, 44100, 44100, y.data(), 120);
  EXPECT_EQ(max_abs_diff(x.data(), y.data(), 100), 0.0f);
  for (size_t i = 100; i < 120; ++i)
    EXPECT_EQ(y[i], 0.0f);
  EXPECT_THROW(yw::resample_cpu(x.data(), 100, 0, 44100), yw::Error);
}

struct Split {
  std::vector<float> h, p;
};
Split run_hpss(const std::vector<float>& x, const yw::HpssConfig& cfg = {}) {
  Split s{std::vector<float>(x.size()), std::vector<float>(x.size())};
  yw::hpss_cpu(cfg, x.data(), static_cast<int64_t>(x.size()), s.h.data(), s.p.data());
  return s;
}

TEST(Hpss, StemsSumToTheInput) {
  for (int64_t n : {1, 100, 1023, 44100, 100003}) {
    auto x = noise(n, 11);
    for (int64_t i = 0; i < n; ++i)
      x[static_cast<size_t>(i)] += sine(440.0, 44100, i);
    const auto s = run_hpss(x);
    float err = 0.0f;
    for (size_t i = 0; i < x.size(); ++i)
      err = std::max(err, std::abs(s.h[i] + s.p[i] - x[i]));
    EXPECT_LT(err, 1e-4f) << "n " << n;
  }
}

TEST(Hpss, SilenceGivesSilentStems) {
  const std::vector<float> x(30000, 0.0f);
  const auto s = run_hpss(x);
  EXPECT_EQ(energy(s.h), 0.0);
  EXPECT_EQ(energy(s.p), 0.0);
}

TEST(Hpss, SineIsHarmonicAndClicksArePercussive) {
  const int64_t n = 44100 * 2;
  std::vector<float> tone(static_cast<size_t>(n)), clicks(static_cast<size_t>(n), 0.0f);
  for (int64_t i = 0; i < n; ++i)
    tone[static_cast<size_t>(i)] = sine(440.0, 44100, i);
  for (int64_t i = 1000; i < n; i += 11025)
    clicks[static_cast<size_t>(i)] = 1.0f;
  const auto st = run_hpss(tone);
  EXPECT_GT(energy(st.h), 50.0 * energy(st.p));
  const auto sc = run_hpss(clicks);
  EXPECT_GT(energy(sc.p), 10.0 * energy(sc.h));
}

TEST(Hpss, ResultDoesNotDependOnTheBlockSize) {
  const auto x = noise(70000, 5);
  yw::HpssConfig small;
  small.block_frames = 7;
  const auto a = run_hpss(x);
  const auto b = run_hpss(x, small);
  EXPECT_LT(max_abs_diff(a.h.data(), b.h.data(), 70000), 1e-6f);
  EXPECT_LT(max_abs_diff(a.p.data(), b.p.data(), 70000), 1e-6f);
}

TEST(Hpss, RejectsBadConfig) {
  yw::HpssConfig cfg;
  cfg.harmonic_frames = 30;
  const std::vector<float> x(100, 0.0f);
  EXPECT_THROW(run_hpss(x, cfg), yw::Error);
}

}  // namespace
