#pragma once
// Short-time Fourier transform with perfect reconstruction, for the built-in separator.
//
// Conventions (shared with the CUDA twin, kernels/include/yw/kernels/cuda/hpss_cuda.hpp):
//  - Window: periodic Hann of n_fft samples, used for analysis and synthesis.
//  - Frame f is centred on sample f * hop; samples outside [0, n) read as zero (no reflection, so
//    any length, even one sample, is valid).
//  - A signal of n samples has stft_frame_count(cfg, n) = ceil(n / hop) + 1 frames, enough that
//    every sample lies within hop of two frame centres, so the summed squared window is at least
//    0.25 everywhere and the inverse is well conditioned.
//  - A spectrum frame holds n_fft / 2 + 1 complex bins (unnormalised forward FFT).
//  - Inverse: each frame's inverse FFT (scaled 1/n_fft) is windowed and overlap-added; dividing by
//    the summed squared window (istft_normalise_cpu) returns the input exactly up to rounding.
// Requires n_fft even, n_fft >= 4 and 0 < hop <= n_fft / 2.
#include <complex>
#include <cstdint>
#include <memory>
#include <vector>

namespace yw {

struct StftConfig {
  int n_fft = 2048;
  int hop = 512;
};

// Throws yw::Error when the configuration breaks the requirements above.
void validate(const StftConfig& cfg);
int64_t stft_frame_count(const StftConfig& cfg, int64_t samples);
inline int stft_bins(const StftConfig& cfg) {
  return cfg.n_fft / 2 + 1;
}
// Periodic Hann window, n samples.
std::vector<float> hann_window(int n);
// The summed squared window at each of n samples, for frames centred on 0, hop, 2 hop, ...
std::vector<float> stft_window_sum(const StftConfig& cfg, int64_t samples);

// FFTW-backed frame transforms. One instance per thread: the plans are created under a process
// lock (FFTW's planner is not thread-safe) but the work buffers are the instance's own.
class StftCpu {
 public:
  explicit StftCpu(const StftConfig& cfg);
  ~StftCpu();
  StftCpu(const StftCpu&) = delete;
  StftCpu& operator=(const StftCpu&) = delete;

  const StftConfig& config() const { return cfg_; }

  // Spectra of frames [first, first + count) of x (n samples) into out: count rows of
  // stft_bins() complex values, frame-major.
  void forward(const float* x, int64_t n, int64_t first, int64_t count, std::complex<float>* out);
  // Windowed inverse of `count` spectrum rows, as frames [first, first + count), added into y
  // (n samples; parts outside [0, n) are dropped). Not yet normalised: see istft_normalise_cpu.
  void inverse_add(const std::complex<float>* in, int64_t first, int64_t count, float* y,
                   int64_t n);

 private:
  struct Plans;
  StftConfig cfg_;
  std::vector<float> window_;
  std::unique_ptr<Plans> plans_;
};

// Divides y (n samples, the overlap-added synthesis of all stft_frame_count frames) by the summed
// squared window, completing the inverse.
void istft_normalise_cpu(const StftConfig& cfg, float* y, int64_t n);

}  // namespace yw
