// The Chromaprint TEST2 core on the CPU, from docs/chromaprint.md §1.4-1.12.
// ref: chromaprint.md (framing 4096/1365, float Hamming window and power as Debian's av_rdft,
// double chroma/filter/normaliser, double cumulative integral image, 16 classifiers).
#include "yw/kernels/fingerprint.hpp"

#include <fftw3.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>

#include "yw/common/error.hpp"
#include "yw/kernels/chromaprint_tables.hpp"
#include "yw/kernels/fftw_planner.hpp"

namespace yw {
namespace chromaprint_detail {

int chroma_band(int bin) {
  const double freq = static_cast<double>(bin) * 11025.0 / 4096.0;
  const double octave = std::log(freq / 27.5) / std::log(2.0);
  const double note = 12.0 * (octave - std::floor(octave));
  return static_cast<int>(note);
}

}  // namespace chromaprint_detail

namespace {

using chromaprint_detail::kChromaBinHi;
using chromaprint_detail::kChromaBinLo;

// FFTW's planner is not thread-safe (yw/kernels/fftw_planner.hpp); the plan is made once, under the
// process-wide planner lock, and then executed with new-array execution, which is thread-safe.
struct FftwPlan {
  fftwf_plan plan = nullptr;
  FftwPlan() {
    std::lock_guard planner(fftw_planner_mutex());
    float* in = fftwf_alloc_real(kChromaprintFrameSize);
    fftwf_complex* out = fftwf_alloc_complex(kChromaprintFrameSize / 2 + 1);
    plan = fftwf_plan_dft_r2c_1d(kChromaprintFrameSize, in, out, FFTW_ESTIMATE);
    fftwf_free(in);
    fftwf_free(out);
  }
};

fftwf_plan shared_plan() {
  static FftwPlan p;  // thread-safe static initialisation; planning itself holds the planner lock
  YW_CHECK(p.plan != nullptr, "FFTW could not plan a {}-point real FFT", kChromaprintFrameSize);
  return p.plan;
}

}  // namespace

struct FingerprinterCpu::State {
  fftwf_plan plan = shared_plan();
  float* fft_in = fftwf_alloc_real(kChromaprintFrameSize);
  fftwf_complex* fft_out = fftwf_alloc_complex(kChromaprintFrameSize / 2 + 1);
  const chromaprint_detail::Tables& tables = chromaprint_detail::tables();

  std::vector<std::int16_t> pending;  // samples not yet consumed by a full frame
  std::size_t pending_pos = 0;        // start of the next frame in `pending`

  std::array<std::array<double, 12>, 5> chroma_ring{};  // last 5 chroma vectors
  std::int64_t frames = 0;
  // Integral image rows, ring indexed by absolute row & (kRing - 1).
  static constexpr int kRing = 32;
  std::array<std::array<double, 12>, kRing> image{};
  std::int64_t rows = 0;
  std::vector<std::uint32_t> items;

  State() { YW_CHECK(fft_in != nullptr && fft_out != nullptr, "out of memory for FFT buffers"); }
  ~State() {
    fftwf_free(fft_in);
    fftwf_free(fft_out);
  }

  void frame(const std::int16_t* x) {
    const float* win = tables.window.data();
    for (int n = 0; n < kChromaprintFrameSize; ++n)
      fft_in[n] = static_cast<float>(x[n]) * win[n];
    fftwf_execute_dft_r2c(plan, fft_in, fft_out);
    std::array<double, 12> chroma{};
    for (int i = kChromaBinLo; i < kChromaBinHi; ++i) {
      const float re = fft_out[i][0];
      const float im = fft_out[i][1];
      const float power = re * re + im * im;
      chroma[static_cast<std::size_t>(tables.band[static_cast<std::size_t>(i)])] +=
          static_cast<double>(power);
    }
    chroma_ring[static_cast<std::size_t>(frames % 5)] = chroma;
    ++frames;
    if (frames >= 5) add_row();
  }

  void add_row() {
    std::array<double, 12> row{};
    chromaprint_detail::filter_and_normalise(chroma_ring, frames, row);
    auto& cur = image[static_cast<std::size_t>(rows & (kRing - 1))];
    double prefix = 0.0;
    for (int b = 0; b < 12; ++b) {
      prefix += row[static_cast<std::size_t>(b)];
      cur[static_cast<std::size_t>(b)] = prefix;
    }
    if (rows > 0) {
      const auto& prev = image[static_cast<std::size_t>((rows - 1) & (kRing - 1))];
      for (int b = 0; b < 12; ++b)
        cur[static_cast<std::size_t>(b)] += prev[static_cast<std::size_t>(b)];
    }
    ++rows;
    if (rows >= 16) {
      const std::int64_t x = rows - 16;
      items.push_back(chromaprint_detail::classify(
          [this](std::int64_t r, int c) -> double {
            return image[static_cast<std::size_t>(r & (kRing - 1))][static_cast<std::size_t>(c)];
          },
          x));
    }
  }
};

FingerprinterCpu::FingerprinterCpu() : s_(std::make_unique<State>()) {}
FingerprinterCpu::~FingerprinterCpu() = default;

void FingerprinterCpu::feed(std::span<const std::int16_t> samples) {
  State& s = *s_;
  if (s.pending.size() == s.pending_pos) {
    // Nothing held back: frame straight from the caller's block and keep only its tail.
    std::size_t pos = 0;
    while (samples.size() - pos >= static_cast<std::size_t>(kChromaprintFrameSize)) {
      s.frame(samples.data() + pos);
      pos += kChromaprintHop;
    }
    s.pending.assign(samples.begin() + static_cast<std::ptrdiff_t>(std::min(pos, samples.size())),
                     samples.end());
    s.pending_pos = 0;
    return;
  }
  s.pending.insert(s.pending.end(), samples.begin(), samples.end());
  while (s.pending.size() - s.pending_pos >= static_cast<std::size_t>(kChromaprintFrameSize)) {
    s.frame(s.pending.data() + s.pending_pos);
    s.pending_pos += kChromaprintHop;
  }
  if (s.pending_pos > 0 && s.pending_pos * 2 >= s.pending.size()) {
    s.pending.erase(s.pending.begin(),
                    s.pending.begin() + static_cast<std::ptrdiff_t>(s.pending_pos));
    s.pending_pos = 0;
  }
}

const std::vector<std::uint32_t>& FingerprinterCpu::items() const noexcept {
  return s_->items;
}

void FingerprinterCpu::reset() {
  s_ = std::make_unique<State>();
}

std::vector<std::uint32_t> fingerprint_cpu(std::span<const std::int16_t> samples) {
  FingerprinterCpu fp;
  fp.feed(samples);
  return fp.items();
}

std::vector<std::vector<std::uint32_t>> fingerprint_batch_cpu(
    const std::vector<std::span<const std::int16_t>>& signals) {
  std::vector<std::vector<std::uint32_t>> out;
  out.reserve(signals.size());
  FingerprinterCpu fp;
  for (const auto& sig : signals) {
    fp.reset();
    fp.feed(sig);
    out.push_back(fp.items());
  }
  return out;
}

}  // namespace yw
