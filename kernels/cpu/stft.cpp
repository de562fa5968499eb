// ref: the centred, Hann-windowed STFT of librosa.stft / torch.stft (center=True) with zero
// padding instead of reflection, and the weighted overlap-add inverse of librosa.istft.
#include "yw/kernels/stft.hpp"

#include <fftw3.h>

#include <cmath>
#include <cstring>
#include <mutex>
#include <numbers>

#include "yw/common/error.hpp"
#include "yw/kernels/fftw_planner.hpp"

namespace yw {
namespace {}  // namespace

void validate(const StftConfig& cfg) {
  YW_CHECK(cfg.n_fft >= 4 && cfg.n_fft % 2 == 0, "stft: n_fft must be even and >= 4, got {}",
           cfg.n_fft);
  YW_CHECK(cfg.hop > 0 && cfg.hop <= cfg.n_fft / 2, "stft: hop must be in (0, n_fft/2], got {}",
           cfg.hop);
}

int64_t stft_frame_count(const StftConfig& cfg, int64_t samples) {
  return (samples + cfg.hop - 1) / cfg.hop + 1;
}

std::vector<float> hann_window(int n) {
  std::vector<float> w(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    w[static_cast<size_t>(i)] =
        static_cast<float>(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * i / n));
  }
  return w;
}

std::vector<float> stft_window_sum(const StftConfig& cfg, int64_t samples) {
  const auto w = hann_window(cfg.n_fft);
  std::vector<float> sum(static_cast<size_t>(samples), 0.0f);
  const int64_t frames = stft_frame_count(cfg, samples);
  const int64_t half = cfg.n_fft / 2;
  for (int64_t f = 0; f < frames; ++f) {
    const int64_t start = f * cfg.hop - half;
    for (int64_t k = 0; k < cfg.n_fft; ++k) {
      const int64_t s = start + k;
      if (s >= 0 && s < samples)
        sum[static_cast<size_t>(s)] += w[static_cast<size_t>(k)] * w[static_cast<size_t>(k)];
    }
  }
  return sum;
}

struct StftCpu::Plans {
  float* real = nullptr;
  fftwf_complex* spec = nullptr;
  fftwf_plan r2c = nullptr;
  fftwf_plan c2r = nullptr;
};

StftCpu::StftCpu(const StftConfig& cfg) : cfg_(cfg), plans_(std::make_unique<Plans>()) {
  validate(cfg);
  window_ = hann_window(cfg.n_fft);
  std::lock_guard lock(fftw_planner_mutex());
  plans_->real = fftwf_alloc_real(static_cast<size_t>(cfg.n_fft));
  plans_->spec = fftwf_alloc_complex(static_cast<size_t>(stft_bins(cfg)));
  YW_CHECK(plans_->real && plans_->spec, "stft: out of memory for n_fft {}", cfg.n_fft);
  plans_->r2c = fftwf_plan_dft_r2c_1d(cfg.n_fft, plans_->real, plans_->spec, FFTW_ESTIMATE);
  plans_->c2r = fftwf_plan_dft_c2r_1d(cfg.n_fft, plans_->spec, plans_->real, FFTW_ESTIMATE);
  YW_CHECK(plans_->r2c && plans_->c2r, "stft: FFTW could not plan n_fft {}", cfg.n_fft);
}

StftCpu::~StftCpu() {
  std::lock_guard lock(fftw_planner_mutex());
  if (plans_->r2c) fftwf_destroy_plan(plans_->r2c);
  if (plans_->c2r) fftwf_destroy_plan(plans_->c2r);
  fftwf_free(plans_->real);
  fftwf_free(plans_->spec);
}

void StftCpu::forward(const float* x, int64_t n, int64_t first, int64_t count,
                      std::complex<float>* out) {
  const int64_t n_fft = cfg_.n_fft;
  const int64_t bins = stft_bins(cfg_);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t start = (first + i) * cfg_.hop - n_fft / 2;
    for (int64_t k = 0; k < n_fft; ++k) {
      const int64_t s = start + k;
      plans_->real[k] = (s >= 0 && s < n) ? x[s] * window_[static_cast<size_t>(k)] : 0.0f;
    }
    fftwf_execute(plans_->r2c);
    std::memcpy(static_cast<void*>(out + i * bins), plans_->spec,
                static_cast<size_t>(bins) * sizeof(fftwf_complex));
  }
}

void StftCpu::inverse_add(const std::complex<float>* in, int64_t first, int64_t count, float* y,
                          int64_t n) {
  const int64_t n_fft = cfg_.n_fft;
  const int64_t bins = stft_bins(cfg_);
  const float scale = 1.0f / static_cast<float>(n_fft);
  for (int64_t i = 0; i < count; ++i) {
    std::memcpy(static_cast<void*>(plans_->spec), in + i * bins,
                static_cast<size_t>(bins) * sizeof(fftwf_complex));
    // A real signal's DC and Nyquist bins are real; the c2r transform assumes so.
    plans_->spec[0][1] = 0.0f;
    plans_->spec[bins - 1][1] = 0.0f;
    fftwf_execute(plans_->c2r);
    const int64_t start = (first + i) * cfg_.hop - n_fft / 2;
    for (int64_t k = 0; k < n_fft; ++k) {
      const int64_t s = start + k;
      if (s >= 0 && s < n) y[s] += plans_->real[k] * scale * window_[static_cast<size_t>(k)];
    }
  }
}

void istft_normalise_cpu(const StftConfig& cfg, float* y, int64_t n) {
  const auto sum = stft_window_sum(cfg, n);
  for (int64_t s = 0; s < n; ++s)
    y[s] /= sum[static_cast<size_t>(s)];
}

}  // namespace yw
