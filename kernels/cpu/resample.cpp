// ref: julius.resample_frac (Demucs' resampler): windowed-sinc polyphase filtering at the
// reduced ratio out/in = L/M, with the cutoff at the lower of the two Nyquist frequencies.
#include "yw/kernels/resample.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include "yw/common/error.hpp"

namespace yw {
namespace {

double bessel_i0(double x) {
  double sum = 1.0, term = 1.0;
  const double q = x * x / 4.0;
  for (int k = 1; k < 64; ++k) {
    term *= q / (static_cast<double>(k) * k);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return sum;
}

// The taps for one fractional position: tap m multiplies input sample base - half + 1 + m.
void make_taps(double frac, int half, double fc, double beta, double i0_beta, float* taps) {
  const double support = static_cast<double>(half);
  double sum = 0.0;
  std::vector<double> t(static_cast<size_t>(2 * half));
  for (int m = 0; m < 2 * half; ++m) {
    const double d = frac + half - 1 - m;  // distance from the output time to the input sample
    const double r = d / support;
    double h = 0.0;
    if (std::abs(r) < 1.0) {
      const double arg = std::numbers::pi * fc * d;
      const double sinc = d == 0.0 ? 1.0 : std::sin(arg) / arg;
      h = fc * sinc * bessel_i0(beta * std::sqrt(1.0 - r * r)) / i0_beta;
    }
    t[static_cast<size_t>(m)] = h;
    sum += h;
  }
  for (int m = 0; m < 2 * half; ++m)
    taps[m] = static_cast<float>(t[static_cast<size_t>(m)] / sum);
}

}  // namespace

int64_t resampled_length(int64_t n, int in_rate, int out_rate) {
  YW_CHECK(in_rate > 0 && out_rate > 0, "resample: rates must be positive ({} -> {})", in_rate,
           out_rate);
  return (n * out_rate + in_rate - 1) / in_rate;
}

void resample_cpu(const float* x, int64_t n, int in_rate, int out_rate, float* y, int64_t out_len,
                  const ResampleConfig& cfg) {
  YW_CHECK(in_rate > 0 && out_rate > 0, "resample: rates must be positive ({} -> {})", in_rate,
           out_rate);
  YW_CHECK(cfg.zero_crossings >= 1 && cfg.cutoff > 0.0 && cfg.cutoff <= 1.0,
           "resample: bad configuration (zero_crossings {}, cutoff {})", cfg.zero_crossings,
           cfg.cutoff);
  if (in_rate == out_rate) {
    const int64_t copy = std::min(n, out_len);
    std::copy(x, x + copy, y);
    std::fill(y + copy, y + out_len, 0.0f);
    return;
  }
  const int64_t g = std::gcd(in_rate, out_rate);
  const int64_t up = out_rate / g;   // L
  const int64_t down = in_rate / g;  // M
  // fc: cutoff in cycles per input sample, relative to the input Nyquist (sinc(fc * d)).
  const double fc = cfg.cutoff * std::min(1.0, static_cast<double>(up) / static_cast<double>(down));
  const int half = static_cast<int>(std::ceil(cfg.zero_crossings / fc));
  const double i0_beta = bessel_i0(cfg.kaiser_beta);
  const int width = 2 * half;

  // One row of taps per phase when the table is small (all common audio rates); otherwise taps
  // are computed per output sample.
  const bool table = up * width <= (int64_t{1} << 22);
  std::vector<float> taps(static_cast<size_t>(table ? up * width : width));
  if (table) {
    for (int64_t p = 0; p < up; ++p)
      make_taps(static_cast<double>(p) / static_cast<double>(up), half, fc, cfg.kaiser_beta,
                i0_beta, &taps[static_cast<size_t>(p * width)]);
  }
  for (int64_t j = 0; j < out_len; ++j) {
    const int64_t pos = j * down;
    const int64_t base = pos / up;
    const int64_t phase = pos % up;
    const float* h = &taps[static_cast<size_t>(table ? phase * width : 0)];
    if (!table) {
      make_taps(static_cast<double>(phase) / static_cast<double>(up), half, fc, cfg.kaiser_beta,
                i0_beta, taps.data());
    }
    const int64_t first = base - half + 1;
    const int64_t m0 = std::max<int64_t>(0, -first);
    const int64_t m1 = std::min<int64_t>(width, n - first);
    float acc = 0.0f;
    for (int64_t m = m0; m < m1; ++m)
      acc += h[m] * x[first + m];
    y[j] = acc;
  }
}

std::vector<float> resample_cpu(const float* x, int64_t n, int in_rate, int out_rate,
                                const ResampleConfig& cfg) {
  std::vector<float> y(static_cast<size_t>(resampled_length(n, in_rate, out_rate)));
  resample_cpu(x, n, in_rate, out_rate, y.data(), static_cast<int64_t>(y.size()), cfg);
  return y;
}

}  // namespace yw
