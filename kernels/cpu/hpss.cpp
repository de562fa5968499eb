// ref: librosa.decompose.hpss(S, kernel_size=(17, 31), power=2.0, mask=False, margin=1.0) applied
// to the STFT magnitude, then masked and inverted (librosa.effects.hpss), differing only in the
// median's edge rule (clipped window, not scipy's reflection): see hpss.hpp.
#include "yw/kernels/hpss.hpp"

#include <algorithm>
#include <cmath>
#include <complex>
#include <vector>

#include "yw/common/error.hpp"

namespace yw {
namespace {

// Median of values[i - h .. i + h] clipped to [0, n), for every i in [a, b): a sorted window
// slides along, so each step costs O(h) moves rather than a selection over the window.
template <class Get, class Put>
void sliding_median(int64_t n, int h, int64_t a, int64_t b, std::vector<float>& win, Get get,
                    Put put) {
  win.clear();
  for (int64_t i = std::max<int64_t>(0, a - h); i <= std::min<int64_t>(n - 1, a + h); ++i)
    win.push_back(get(i));
  std::sort(win.begin(), win.end());
  for (int64_t i = a; i < b; ++i) {
    if (i > a) {
      if (const int64_t out = i - 1 - h; out >= 0)
        win.erase(std::lower_bound(win.begin(), win.end(), get(out)));
      if (const int64_t in = i + h; in < n) {
        const float v = get(in);
        win.insert(std::upper_bound(win.begin(), win.end(), v), v);
      }
    }
    put(i, win[win.size() / 2]);
  }
}

float harmonic_mask(float h, float p, float power) {
  const float hp = power == 2.0f ? h * h : std::pow(h, power);
  const float pp = power == 2.0f ? p * p : std::pow(p, power);
  const float sum = hp + pp;
  return sum > 0.0f ? hp / sum : 0.5f;
}

}  // namespace

void validate(const HpssConfig& cfg) {
  validate(cfg.stft);
  YW_CHECK(cfg.harmonic_frames >= 1 && cfg.harmonic_frames % 2 == 1,
           "hpss: harmonic_frames must be odd and >= 1, got {}", cfg.harmonic_frames);
  YW_CHECK(cfg.percussive_bins >= 1 && cfg.percussive_bins % 2 == 1,
           "hpss: percussive_bins must be odd and >= 1, got {}", cfg.percussive_bins);
  YW_CHECK(cfg.power > 0.0f, "hpss: power must be > 0, got {}", cfg.power);
  YW_CHECK(cfg.block_frames >= 1, "hpss: block_frames must be >= 1, got {}", cfg.block_frames);
}

void hpss_cpu(const HpssConfig& cfg, const float* x, int64_t n, float* harmonic,
              float* percussive) {
  validate(cfg);
  YW_CHECK(n >= 1, "hpss: empty input");
  std::fill(harmonic, harmonic + n, 0.0f);
  std::fill(percussive, percussive + n, 0.0f);

  StftCpu stft(cfg.stft);
  const int64_t frames = stft_frame_count(cfg.stft, n);
  const int64_t bins = stft_bins(cfg.stft);
  const int hh = cfg.harmonic_frames / 2;
  const int hp = cfg.percussive_bins / 2;

  std::vector<std::complex<float>> spec, hspec, pspec;
  std::vector<float> mag, hmed, pmed, win;
  for (int64_t a = 0; a < frames; a += cfg.block_frames) {
    const int64_t b = std::min<int64_t>(frames, a + cfg.block_frames);
    const int64_t ca = std::max<int64_t>(0, a - hh);
    const int64_t cb = std::min<int64_t>(frames, b + hh);
    spec.resize(static_cast<size_t>((cb - ca) * bins));
    stft.forward(x, n, ca, cb - ca, spec.data());
    mag.resize(spec.size());
    for (size_t i = 0; i < spec.size(); ++i)
      mag[i] = std::abs(spec[i]);

    const int64_t rows = b - a;
    hmed.resize(static_cast<size_t>(rows * bins));
    pmed.resize(static_cast<size_t>(rows * bins));
    for (int64_t k = 0; k < bins; ++k) {
      sliding_median(
          frames, hh, a, b, win,
          [&](int64_t f) { return mag[static_cast<size_t>((f - ca) * bins + k)]; },
          [&](int64_t f, float v) { hmed[static_cast<size_t>((f - a) * bins + k)] = v; });
    }
    for (int64_t f = a; f < b; ++f) {
      const float* row = &mag[static_cast<size_t>((f - ca) * bins)];
      sliding_median(
          bins, hp, 0, bins, win, [&](int64_t k) { return row[k]; },
          [&](int64_t k, float v) { pmed[static_cast<size_t>((f - a) * bins + k)] = v; });
    }

    hspec.resize(static_cast<size_t>(rows * bins));
    pspec.resize(static_cast<size_t>(rows * bins));
    for (int64_t i = 0; i < rows * bins; ++i) {
      const auto u = static_cast<size_t>(i);
      const float m = harmonic_mask(hmed[u], pmed[u], cfg.power);
      const std::complex<float> v = spec[static_cast<size_t>((a - ca) * bins + i)];
      hspec[u] = v * m;
      pspec[u] = v * (1.0f - m);
    }
    stft.inverse_add(hspec.data(), a, rows, harmonic, n);
    stft.inverse_add(pspec.data(), a, rows, percussive, n);
  }
  istft_normalise_cpu(cfg.stft, harmonic, n);
  istft_normalise_cpu(cfg.stft, percussive, n);
}

}  // namespace yw
