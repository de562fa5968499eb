// ref: hpss_cpu (kernels/cpu/hpss.cpp), which this twin follows step by step: the same frames,
// clipped median windows, upper-middle medians, mask rule and window-sum normalisation. The
// overlap-add is a gather (each thread owns one output sample), so the result is deterministic.
#include <cuda_runtime.h>
#include <cufft.h>

#include <algorithm>
#include <array>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cuda_check.cuh"
#include "yw/common/error.hpp"
#include "yw/kernels/cuda/hpss_cuda.hpp"
#include "yw/kernels/device_schedule.hpp"

namespace yw {
namespace {

using cuda::DeviceArray;
using cuda::Event;
using cuda::PinnedBuffer;
using cuda::Stream;
constexpr const char* kWhat = "hpss on cuda";

constexpr int kMaxMedian = 63;
constexpr int kThreads = 256;

// Executes on `stream` only.
class FftPlan {
 public:
  FftPlan(int n_fft, int batch, cufftType type, cudaStream_t stream) {
    int n[1] = {n_fft};
    const int bins = n_fft / 2 + 1;
    const bool r2c = type == CUFFT_R2C;
    YW_CUFFT_CHECK(kWhat, cufftPlanMany(&plan_, 1, n, nullptr, 1, r2c ? n_fft : bins, nullptr, 1,
                                        r2c ? bins : n_fft, type, batch));
    const cufftResult set = cufftSetStream(plan_, stream);
    if (set != CUFFT_SUCCESS) {
      cufftDestroy(plan_);
      YW_CUFFT_CHECK(kWhat, set);
    }
  }
  ~FftPlan() { cufftDestroy(plan_); }
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;
  cufftHandle get() const { return plan_; }

 private:
  cufftHandle plan_ = 0;
};

unsigned blocks_for(long long n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

// Windowed frames [first, first + rows) of x into frames (rows x n_fft).
__global__ void frame_kernel(const float* x, long long n, long long first, long long rows,
                             int n_fft, int hop, const float* window, float* frames) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= rows * n_fft) return;
  const long long r = i / n_fft;
  const int k = static_cast<int>(i % n_fft);
  const long long s = (first + r) * hop - n_fft / 2 + k;
  frames[i] = (s >= 0 && s < n) ? x[s] * window[k] : 0.0f;
}

__global__ void magnitude_kernel(const cufftComplex* spec, long long count, float* mag) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i < count) mag[i] = hypotf(spec[i].x, spec[i].y);
}

__device__ float median_of(float* v, int count) {
  for (int i = 1; i < count; ++i) {
    const float x = v[i];
    int j = i - 1;
    while (j >= 0 && v[j] > x) {
      v[j + 1] = v[j];
      --j;
    }
    v[j + 1] = x;
  }
  return v[count / 2];
}

// Median along time for frames [a, b) (clipped to [0, frames)); mag holds frames from ca on.
__global__ void harmonic_median_kernel(const float* mag, long long frames, long long ca,
                                       long long a, long long rows, int bins, int half,
                                       float* out) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= rows * bins) return;
  const long long f = a + i / bins;
  const int k = static_cast<int>(i % bins);
  float v[kMaxMedian];
  int count = 0;
  const long long lo = f - half < 0 ? 0 : f - half;
  const long long hi = f + half > frames - 1 ? frames - 1 : f + half;
  for (long long g = lo; g <= hi; ++g)
    v[count++] = mag[(g - ca) * bins + k];
  out[i] = median_of(v, count);
}

// Median along frequency for frames [a, b).
__global__ void percussive_median_kernel(const float* mag, long long ca, long long a,
                                         long long rows, int bins, int half, float* out) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= rows * bins) return;
  const long long f = a + i / bins;
  const int k = static_cast<int>(i % bins);
  float v[kMaxMedian];
  int count = 0;
  const int lo = k - half < 0 ? 0 : k - half;
  const int hi = k + half > bins - 1 ? bins - 1 : k + half;
  const float* row = mag + (f - ca) * bins;
  for (int q = lo; q <= hi; ++q)
    v[count++] = row[q];
  out[i] = median_of(v, count);
}

__global__ void mask_kernel(const cufftComplex* spec, const float* hmed, const float* pmed,
                            long long count, int bins, float power, cufftComplex* hspec,
                            cufftComplex* pspec) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= count) return;
  const float h = hmed[i], p = pmed[i];
  const float hp = power == 2.0f ? h * h : powf(h, power);
  const float pp = power == 2.0f ? p * p : powf(p, power);
  const float sum = hp + pp;
  const float m = sum > 0.0f ? hp / sum : 0.5f;
  cufftComplex v = spec[i];
  const int k = static_cast<int>(i % bins);
  if (k == 0 || k == bins - 1) v.y = 0.0f;  // as the CPU twin: DC and Nyquist are real
  hspec[i] = make_cuFloatComplex(v.x * m, v.y * m);
  const float q = 1.0f - m;
  pspec[i] = make_cuFloatComplex(v.x * q, v.y * q);
}

// Adds the windowed inverse frames [a, a + rows) into y at the samples they cover.
__global__ void overlap_add_kernel(const float* frames, long long a, long long rows, int n_fft,
                                   int hop, const float* window, long long s0, long long count,
                                   long long n, float* y) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= count) return;
  const long long s = s0 + i;
  if (s < 0 || s >= n) return;
  const float scale = 1.0f / static_cast<float>(n_fft);
  float acc = 0.0f;
  // Frames f with f * hop - n_fft/2 <= s < f * hop + n_fft/2.
  const long long f_lo = s - n_fft / 2 + 1 <= 0 ? 0 : (s - n_fft / 2 + 1 + hop - 1) / hop;
  const long long f_hi = (s + n_fft / 2) / hop;
  for (long long f = f_lo > a ? f_lo : a; f <= f_hi && f < a + rows; ++f) {
    const int k = static_cast<int>(s - (f * hop - n_fft / 2));
    acc += frames[(f - a) * n_fft + k] * scale * window[k];
  }
  y[s] += acc;
}

// Samples [s0, s0 + count) of y, each on its own: normalising a range gives the same values as
// normalising the whole signal at once.
__global__ void normalise_kernel(float* y, long long s0, long long count, long long frames,
                                 int n_fft, int hop, const float* window) {
  const long long i = blockIdx.x * static_cast<long long>(blockDim.x) + threadIdx.x;
  if (i >= count) return;
  const long long s = s0 + i;
  long long f_lo = s - n_fft / 2 + 1 <= 0 ? 0 : (s - n_fft / 2 + 1 + hop - 1) / hop;
  long long f_hi = (s + n_fft / 2) / hop;
  if (f_hi > frames - 1) f_hi = frames - 1;
  float sum = 0.0f;
  for (long long f = f_lo; f <= f_hi; ++f) {
    const int k = static_cast<int>(s - (f * hop - n_fft / 2));
    sum += window[k] * window[k];
  }
  y[s] /= sum;
}

// The per-device state of the HPSS twin: three non-blocking streams (kernels, uploads,
// downloads, so that both copy directions run beside the kernels) and pinned staging buffers,
// reused by every call, and the device buffers and cuFFT plans, grown or re-planned only when a
// call needs more or another shape (no allocation, no free and so no device-wide
// synchronisation in steady state).
//
// Within a call the signal moves in pieces: block k's kernels wait only for the samples they read
// (uploaded while block k-1 computes), and the samples that no later frame reaches are
// normalised and downloaded while block k+1 computes. Staging is double-buffered, pieces 0, 2, 4
// in one buffer and 1, 3, 5 in the other, so a buffer is rewritten only after the piece before
// last has left it.
struct HpssRunner {
  HpssRunner()
      : compute(kWhat),
        upload(kWhat),
        download(kWhat),
        uploaded{Event(kWhat), Event(kWhat)},
        computed(kWhat),
        downloaded{Event(kWhat), Event(kWhat)} {}

  // For a call that unwinds, and to end every call: nothing queued may still use the device or
  // staging buffers when the next call rewrites them.
  void drain() noexcept {
    compute.drain();
    upload.drain();
    download.drain();
  }

  // Buffers for a signal of n samples and plans for its shape; grow-only, so a shorter signal
  // after a longer one reuses them. A failure here leaves the runner without the buffers it was
  // growing (and without plans if planning failed): the next call allocates them again.
  void reserve(long long n, int n_fft, int bins, long long ctx_rows, long long block) {
    // cuFFT plans are per shape. A plan for more rows than a call needs serves it (the rows past
    // the call's are computed from stale data and never read), so a runner re-plans only for a
    // new n_fft or a larger block, and the buffers the plans read and write cover the plans' rows.
    if (plan_n_fft != n_fft) {
      r2c.reset();
      c2r.reset();
      plan_ctx_rows = plan_block = 0;
    }
    plan_n_fft = n_fft;
    if (!r2c || plan_ctx_rows < ctx_rows) {
      r2c.reset();
      r2c = std::make_unique<FftPlan>(n_fft, static_cast<int>(ctx_rows), CUFFT_R2C, compute.get());
      plan_ctx_rows = ctx_rows;
    }
    if (!c2r || plan_block < block) {
      c2r.reset();
      c2r = std::make_unique<FftPlan>(n_fft, static_cast<int>(block), CUFFT_C2R, compute.get());
      plan_block = block;
    }
    const auto un = static_cast<size_t>(n);
    const auto r2c_rows = static_cast<size_t>(plan_ctx_rows);
    const auto c2r_rows = static_cast<size_t>(plan_block);
    const auto ubins = static_cast<size_t>(bins);
    const auto un_fft = static_cast<size_t>(n_fft);
    d_x.reserve(kWhat, un);
    d_h.reserve(kWhat, un);
    d_p.reserve(kWhat, un);
    d_window.reserve(kWhat, un_fft);
    d_frames.reserve(kWhat, r2c_rows * un_fft);
    d_spec.reserve(kWhat, r2c_rows * ubins);
    d_mag.reserve(kWhat, r2c_rows * ubins);
    d_hmed.reserve(kWhat, c2r_rows * ubins);
    d_pmed.reserve(kWhat, c2r_rows * ubins);
    d_hspec.reserve(kWhat, c2r_rows * ubins);
    d_pspec.reserve(kWhat, c2r_rows * ubins);
    d_out.reserve(kWhat, c2r_rows * un_fft);
  }

  // After an out-of-memory: gives the device memory back, so a retry (or libtorch) can use it.
  void release() noexcept {
    for (DeviceArray<float>* a :
         {&d_x, &d_h, &d_p, &d_window, &d_frames, &d_mag, &d_hmed, &d_pmed, &d_out})
      a->release();
    d_spec.release();
    d_hspec.release();
    d_pspec.release();
    r2c.reset();
    c2r.reset();
    plan_ctx_rows = plan_block = 0;
  }

  // Calls on the device run one at a time: they share the streams and the staging buffers.
  std::mutex mutex;
  Stream compute;
  Stream upload;
  Stream download;
  std::array<Event, 2> uploaded;    // per staging buffer: its last piece is on the device
  Event computed;                   // the latest normalised range is final
  std::array<Event, 2> downloaded;  // per staging buffer: its last piece is in host memory
  PinnedBuffer<float> window;
  std::array<PinnedBuffer<float>, 2> x;
  std::array<PinnedBuffer<float>, 2> harmonic;
  std::array<PinnedBuffer<float>, 2> percussive;
  DeviceArray<float> d_x, d_h, d_p, d_window, d_frames, d_mag, d_hmed, d_pmed, d_out;
  DeviceArray<cufftComplex> d_spec, d_hspec, d_pspec;
  std::unique_ptr<FftPlan> r2c, c2r;  // bound to `compute`, destroyed before it (declared after)
  int plan_n_fft = 0;
  long long plan_ctx_rows = 0, plan_block = 0;
};

// The runner of `device`, created on first use while `device` is current; never destroyed, for
// the reason given at fingerprint.cu's runner_for (the CUDA runtime may be gone at exit).
HpssRunner& runner_for(int device) {
  static std::mutex mutex;
  static auto* runners = new std::map<int, std::unique_ptr<HpssRunner>>();
  std::lock_guard lock(mutex);
  auto& runner = (*runners)[device];
  if (!runner) runner = std::make_unique<HpssRunner>();
  return *runner;
}

// Ends every call with drain(); a call that unwinds (out of memory above all) also releases the
// runner's device buffers and plans, so that what it held goes back to the device.
struct DrainOnExit {
  HpssRunner& runner;
  int exceptions = std::uncaught_exceptions();
  ~DrainOnExit() {
    runner.drain();
    if (std::uncaught_exceptions() > exceptions) runner.release();
  }
};

// A range of samples in flight through one staging buffer.
struct Piece {
  long long from = 0, count = 0;
};

}  // namespace

void hpss_cuda(const HpssConfig& cfg, const float* x, int64_t n, float* harmonic, float* percussive,
               int device) {
  validate(cfg);
  YW_CHECK(n >= 1, "hpss: empty input");
  YW_CHECK(cfg.harmonic_frames <= kMaxMedian && cfg.percussive_bins <= kMaxMedian,
           "hpss on cuda: median lengths above {} are not supported", kMaxMedian);
  YW_CUDA_CHECK(kWhat, cudaSetDevice(device));
  HpssRunner& runner = runner_for(device);
  std::lock_guard lock(runner.mutex);
  const cudaStream_t compute = runner.compute.get();

  const int n_fft = cfg.stft.n_fft, hop = cfg.stft.hop;
  const int bins = stft_bins(cfg.stft);
  const int hh = cfg.harmonic_frames / 2, hp = cfg.percussive_bins / 2;
  // Blocks, and which samples go up before and come back after each one: host arithmetic
  // (device_schedule.hpp) that the unit tests check without a GPU; this function only issues it.
  const hpss_schedule::Plan plan = hpss_schedule::plan(
      n, n_fft, hop, cfg.harmonic_frames, hpss_schedule::cuda_block_frames(cfg.block_frames));
  const long long frames = plan.frames;
  const long long block = plan.block;
  const long long ctx_rows = plan.ctx_rows;

  // Nothing queued may outlive the call: an unwinding call must not leave work that uses buffers
  // the next call rewrites, and after a failure the buffers are freed (drain() first).
  const DrainOnExit drain{runner};
  // The device buffers and plans are the runner's, grown (or re-planned) only when a call needs
  // more or another shape: freeing device memory synchronises the whole device (every stream,
  // libtorch's too), so steady state allocates and frees nothing.
  runner.reserve(n, n_fft, bins, ctx_rows, block);
  DeviceArray<float>& d_x = runner.d_x;
  DeviceArray<float>& d_h = runner.d_h;
  DeviceArray<float>& d_p = runner.d_p;
  DeviceArray<float>& d_window = runner.d_window;
  DeviceArray<float>& d_frames = runner.d_frames;
  DeviceArray<cufftComplex>& d_spec = runner.d_spec;
  DeviceArray<float>& d_mag = runner.d_mag;
  DeviceArray<float>& d_hmed = runner.d_hmed;
  DeviceArray<float>& d_pmed = runner.d_pmed;
  DeviceArray<cufftComplex>& d_hspec = runner.d_hspec;
  DeviceArray<cufftComplex>& d_pspec = runner.d_pspec;
  DeviceArray<float>& d_out = runner.d_out;
  const FftPlan& r2c = *runner.r2c;
  const FftPlan& c2r = *runner.c2r;

  const std::vector<float> window = hann_window(n_fft);  // the CPU twin's exact window
  std::copy(window.begin(), window.end(), runner.window.reserve(kWhat, window.size()));
  d_window.upload_async(kWhat, runner.window.get(), 0, window.size(), compute);
  YW_CUDA_CHECK(kWhat,
                cudaMemsetAsync(d_h.get(), 0, static_cast<size_t>(n) * sizeof(float), compute));
  YW_CUDA_CHECK(kWhat,
                cudaMemsetAsync(d_p.get(), 0, static_cast<size_t>(n) * sizeof(float), compute));

  int ups = 0, downs = 0;  // pieces queued so far, each way
  std::array<Piece, 2> down_piece;
  // Copies a downloaded piece out of its staging buffer into the caller's stems.
  auto collect = [&](int piece) {
    const int buf = piece % 2;
    const Piece& p = down_piece[static_cast<size_t>(buf)];
    runner.downloaded[static_cast<size_t>(buf)].synchronize(kWhat);
    std::copy_n(runner.harmonic[static_cast<size_t>(buf)].get(), p.count, harmonic + p.from);
    std::copy_n(runner.percussive[static_cast<size_t>(buf)].get(), p.count, percussive + p.from);
  };

  for (const hpss_schedule::Step& step : plan.steps) {
    const long long a = step.a, b = step.b;
    const long long rows = b - a;
    const long long ca = step.ca, cb = step.cb;

    // frame_kernel reads ctx_rows frames from ca; the plan uploads every sample they read.
    if (step.upload_to > step.upload_from) {
      const auto buf = static_cast<size_t>(ups % 2);
      if (ups >= 2) runner.uploaded[buf].synchronize(kWhat);
      const auto count = static_cast<size_t>(step.upload_to - step.upload_from);
      float* staged = runner.x[buf].reserve(kWhat, count);
      std::copy_n(x + step.upload_from, count, staged);
      d_x.upload_async(kWhat, staged, static_cast<size_t>(step.upload_from), count,
                       runner.upload.get());
      runner.uploaded[buf].record(kWhat, runner.upload.get());
      // The upload stream runs in order, so this also covers every earlier piece.
      runner.uploaded[buf].make_wait(kWhat, compute);
      ++ups;
    }

    // The plan always transforms ctx_rows frames; rows past cb are computed and ignored.
    YW_LAUNCH(frame_kernel, blocks_for(ctx_rows * n_fft), kThreads, compute, d_x.get(), n, ca,
              ctx_rows, n_fft, hop, d_window.get(), d_frames.get());
    YW_CUFFT_CHECK(kWhat, cufftExecR2C(r2c.get(), d_frames.get(), d_spec.get()));
    YW_LAUNCH(magnitude_kernel, blocks_for((cb - ca) * bins), kThreads, compute, d_spec.get(),
              (cb - ca) * bins, d_mag.get());
    YW_LAUNCH(harmonic_median_kernel, blocks_for(rows * bins), kThreads, compute, d_mag.get(),
              frames, ca, a, rows, bins, hh, d_hmed.get());
    YW_LAUNCH(percussive_median_kernel, blocks_for(rows * bins), kThreads, compute, d_mag.get(), ca,
              a, rows, bins, hp, d_pmed.get());
    YW_LAUNCH(mask_kernel, blocks_for(rows * bins), kThreads, compute,
              d_spec.get() + (a - ca) * bins, d_hmed.get(), d_pmed.get(), rows * bins, bins,
              cfg.power, d_hspec.get(), d_pspec.get());
    const long long s0 = a * hop - n_fft / 2;
    const long long span = (rows - 1) * hop + n_fft;
    for (int stem = 0; stem < 2; ++stem) {
      // Rows past `rows` hold stale spectra; their output is never read by the overlap-add.
      YW_CUFFT_CHECK(
          kWhat, cufftExecC2R(c2r.get(), stem == 0 ? d_hspec.get() : d_pspec.get(), d_out.get()));
      YW_LAUNCH(overlap_add_kernel, blocks_for(span), kThreads, compute, d_out.get(), a, rows,
                n_fft, hop, d_window.get(), s0, span, n, stem == 0 ? d_h.get() : d_p.get());
    }
    YW_CUDA_CHECK(kWhat, cudaGetLastError());

    // Samples that no later block's frames reach (the plan's final range) have all of their
    // overlap-adds; later blocks never write them again.
    if (step.final_to > step.final_from) {
      const long long final_from = step.final_from;
      const long long count = step.final_to - final_from;
      YW_LAUNCH(normalise_kernel, blocks_for(count), kThreads, compute, d_h.get(), final_from,
                count, frames, n_fft, hop, d_window.get());
      YW_LAUNCH(normalise_kernel, blocks_for(count), kThreads, compute, d_p.get(), final_from,
                count, frames, n_fft, hop, d_window.get());
      YW_CUDA_CHECK(kWhat, cudaGetLastError());
      runner.computed.record(kWhat, compute);
      runner.computed.make_wait(kWhat, runner.download.get());
      // The buffer's previous piece (downs - 2) was collected in an earlier iteration.
      const auto buf = static_cast<size_t>(downs % 2);
      const auto ucount = static_cast<size_t>(count);
      const auto from = static_cast<size_t>(final_from);
      d_h.download_async(kWhat, runner.harmonic[buf].reserve(kWhat, ucount), from, ucount,
                         runner.download.get());
      d_p.download_async(kWhat, runner.percussive[buf].reserve(kWhat, ucount), from, ucount,
                         runner.download.get());
      runner.downloaded[buf].record(kWhat, runner.download.get());
      down_piece[buf] = {final_from, count};
      // The previous piece's host copy overlaps this block's download and the next block.
      if (downs >= 1) collect(downs - 1);
      ++downs;
    }
  }
  if (downs >= 1) collect(downs - 1);  // the last step always ends one, as its final_to is n
}

}  // namespace yw
