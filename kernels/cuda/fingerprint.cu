// ref: fingerprint_cpu (kernels/cpu/fingerprint.cpp) and chromaprint_tables.hpp, followed step by
// step. Rounding is kept identical on purpose: products and sums use the _rn intrinsics so nvcc
// cannot contract them into FMAs, and every sum runs in the CPU twin's order (bins of a band in
// ascending order, filter taps 0..4, bands 0..11, the integral image row after row).
#include <cuda_runtime.h>
#include <cufft.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cuda_check.cuh"
#include "yw/common/error.hpp"
#include "yw/kernels/chromaprint_tables.hpp"
#include "yw/kernels/cuda/fingerprint_cuda.hpp"
#include "yw/kernels/device_schedule.hpp"

namespace yw {
namespace {

using cuda::DeviceArray;
using cuda::PinnedBuffer;
using cuda::Stream;
constexpr const char* kWhat = "fingerprint on cuda";

constexpr int kFrame = fingerprint_schedule::kFrame;
constexpr int kHop = fingerprint_schedule::kHop;
constexpr int kBins = kFrame / 2 + 1;
constexpr int kThreads = 256;

struct DeviceClassifier {
  int type, y, h, w;
  double t0, t1, t2;
};
__constant__ DeviceClassifier c_classifiers[16];
__constant__ double c_filter[5];

// Executes on `stream` only: the plan's work area is its own, so two plans may run at once.
class R2cPlan {
 public:
  R2cPlan(int batch, cudaStream_t stream) {
    int n[1] = {kFrame};
    YW_CUFFT_CHECK(kWhat, cufftPlanMany(&plan_, 1, n, nullptr, 1, kFrame, nullptr, 1, kBins,
                                        CUFFT_R2C, batch));
    const cufftResult set = cufftSetStream(plan_, stream);
    if (set != CUFFT_SUCCESS) {
      cufftDestroy(plan_);
      YW_CUFFT_CHECK(kWhat, set);
    }
  }
  ~R2cPlan() { cufftDestroy(plan_); }
  R2cPlan(const R2cPlan&) = delete;
  R2cPlan& operator=(const R2cPlan&) = delete;
  cufftHandle get() const { return plan_; }

 private:
  cufftHandle plan_ = 0;
};

// in[f][n] = pcm[frame_start[first + f] + n] * window[n], in float as the CPU twin.
__global__ void window_kernel(const int16_t* pcm, const long long* frame_start, long long first,
                              int frames, const float* window, float* in) {
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<long long>(frames) * kFrame) return;
  const long long f = idx / kFrame;
  const int n = static_cast<int>(idx % kFrame);
  const float x = static_cast<float>(pcm[frame_start[first + f] + n]);
  in[idx] = __fmul_rn(x, window[n]);
}

// chroma[first + f][b]: the float power of the band's bins, summed in double in ascending bin
// order.
__global__ void chroma_kernel(const cufftComplex* spectrum, int frames, long long first,
                              const int* band_bins, const int* band_start, double* chroma) {
  const long long idx = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (idx >= static_cast<long long>(frames) * 12) return;
  const long long f = idx / 12;
  const int b = static_cast<int>(idx % 12);
  const cufftComplex* s = spectrum + f * kBins;
  double acc = 0.0;
  for (int k = band_start[b]; k < band_start[b + 1]; ++k) {
    const cufftComplex v = s[band_bins[k]];
    const float power = __fadd_rn(__fmul_rn(v.x, v.x), __fmul_rn(v.y, v.y));
    acc = __dadd_rn(acc, static_cast<double>(power));
  }
  chroma[(first + f) * 12 + b] = acc;
}

// rows[row_offset[i] + t]: chroma filter over frames t..t+4 of signal i, then the normaliser.
__global__ void rows_kernel(const double* chroma, const long long* frame_offset,
                            const long long* row_offset, const int* row_signal, long long rows,
                            double* out) {
  const long long r = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const int i = row_signal[r];
  const long long t = r - row_offset[i];
  const double* c = chroma + (frame_offset[i] + t) * 12;
  double v[12];
  for (int b = 0; b < 12; ++b) {
    double acc = 0.0;
    for (int j = 0; j < 5; ++j)
      acc = __dadd_rn(acc, __dmul_rn(c_filter[j], c[j * 12 + b]));
    v[b] = acc;
  }
  double sum = 0.0;
  for (int b = 0; b < 12; ++b)
    sum = __dadd_rn(sum, __dmul_rn(v[b], v[b]));
  const double norm = sqrt(sum);
  for (int b = 0; b < 12; ++b)
    out[r * 12 + b] = norm < chromaprint_detail::kNormaliserFloor ? 0.0 : __ddiv_rn(v[b], norm);
}

// The cumulative integral image, one thread per (signal, band), row after row as the CPU twin.
__global__ void integral_kernel(const double* rows, const long long* row_offset, int signals,
                                double* image) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  if (idx >= signals * 12) return;
  const int i = idx / 12;
  const int c = idx % 12;
  double prev = 0.0;
  for (long long r = row_offset[i]; r < row_offset[i + 1]; ++r) {
    double prefix = 0.0;
    for (int b = 0; b <= c; ++b)
      prefix = __dadd_rn(prefix, rows[r * 12 + b]);
    const double value = r == row_offset[i] ? prefix : __dadd_rn(prefix, prev);
    image[r * 12 + c] = value;
    prev = value;
  }
}

__device__ double image_at(const double* image, long long r, int c) {
  return image[r * 12 + c];
}

__device__ double area(const double* im, long long r1, int c1, long long r2, int c2) {
  if (r1 == r2 || c1 == c2) return 0.0;
  double a = image_at(im, r2 - 1, c2 - 1);
  if (r1 > 0) a = __dsub_rn(a, image_at(im, r1 - 1, c2 - 1));
  if (c1 > 0) a = __dsub_rn(a, image_at(im, r2 - 1, c1 - 1));
  if (r1 > 0 && c1 > 0) a = __dadd_rn(a, image_at(im, r1 - 1, c1 - 1));
  return a;
}

__device__ double filter_value(const double* im, const DeviceClassifier& c, long long x) {
  const int y = c.y, w = c.w, h = c.h;
  double a = 0.0, b = 0.0;
  switch (c.type) {
    case 0:
      a = area(im, x, y, x + w, y + h);
      break;
    case 1:
      a = area(im, x, y + h / 2, x + w, y + h);
      b = area(im, x, y, x + w, y + h / 2);
      break;
    case 2:
      a = area(im, x + w / 2, y, x + w, y + h);
      b = area(im, x, y, x + w / 2, y + h);
      break;
    case 3:
      a = __dadd_rn(area(im, x, y + h / 2, x + w / 2, y + h),
                    area(im, x + w / 2, y, x + w, y + h / 2));
      b = __dadd_rn(area(im, x, y, x + w / 2, y + h / 2),
                    area(im, x + w / 2, y + h / 2, x + w, y + h));
      break;
    case 4:
      a = area(im, x, y + h / 3, x + w, y + 2 * (h / 3));
      b = __dadd_rn(area(im, x, y, x + w, y + h / 3), area(im, x, y + 2 * (h / 3), x + w, y + h));
      break;
    default:
      a = area(im, x + w / 3, y, x + 2 * (w / 3), y + h);
      b = __dadd_rn(area(im, x, y, x + w / 3, y + h), area(im, x + 2 * (w / 3), y, x + w, y + h));
      break;
  }
  return log(__ddiv_rn(__dadd_rn(1.0, a), __dadd_rn(1.0, b)));
}

// items[item_offset[i] + x]: the 16 classifiers at image row x of signal i. The image of signal
// i starts at row_offset[i]; area() indexes rows relative to it.
__global__ void classify_kernel(const double* image, const long long* row_offset,
                                const long long* item_offset, const int* item_signal,
                                long long items, uint32_t* out) {
  const long long k = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (k >= items) return;
  const int i = item_signal[k];
  const long long x = k - item_offset[i];
  const double* im = image + row_offset[i] * 12;
  uint32_t item = 0;
  for (int n = 0; n < 16; ++n) {
    const DeviceClassifier& c = c_classifiers[n];
    const double v = filter_value(im, c, x);
    const int q = v < c.t1 ? (v < c.t0 ? 0 : 1) : (v < c.t2 ? 2 : 3);
    const uint32_t gray = q == 2 ? 3u : (q == 3 ? 2u : static_cast<uint32_t>(q));
    item = (item << 2) | gray;
  }
  out[k] = item;
}

unsigned blocks_for(long long n) {
  return static_cast<unsigned>((n + kThreads - 1) / kThreads);
}

// The batch's chunks and each signal's shape come from fingerprint_schedule
// (device_schedule.hpp), host code that the unit tests check without a GPU.
using fingerprint_schedule::Chunk;
using fingerprint_schedule::kStreams;
using fingerprint_schedule::make_chunks;
using fingerprint_schedule::Shape;
using fingerprint_schedule::shape_of;

// One stream's share of the pipeline. Everything here is used by `stream` only, so a buffer may
// be rewritten or grown as soon as that stream is idle, whatever the other slot is doing.
struct Slot {
  Slot() : stream(kWhat) {}

  Stream stream;  // declared before `plan`: the plan is bound to it and destroyed first
  // Planned for plan_frames frames (a power of two up to kMaxFramesPerPlan) on first use and
  // re-planned only for a larger chunk, so steady state never plans; small batches, and the
  // halves of a batch retried after an out-of-memory, get a small plan and small buffers.
  std::unique_ptr<R2cPlan> plan;
  int plan_frames = 0;
  // The chunk as the kernels read it, staged in pinned memory and copied to the device in three
  // transfers: its samples back to back; its long long layout (frame_start, then frame_offset,
  // row_offset and item_offset, signal-relative like the samples); the owning signal of every
  // row, then of every item.
  PinnedBuffer<int16_t> h_pcm;
  PinnedBuffer<long long> h_layout;
  PinnedBuffer<int> h_owner;
  PinnedBuffer<uint32_t> h_items;
  DeviceArray<int16_t> d_pcm;
  DeviceArray<long long> d_layout;
  DeviceArray<int> d_owner;
  DeviceArray<float> d_in;
  DeviceArray<cufftComplex> d_spectrum;
  DeviceArray<double> d_chroma;
  DeviceArray<double> d_rows;
  DeviceArray<double> d_image;
  DeviceArray<uint32_t> d_items;
  // The chunk whose items are queued for download into h_items, until they are read.
  const Chunk* pending = nullptr;
};

// The per-device state of the CUDA twin: constants uploaded once, and kStreams slots whose
// streams, plans and buffers are reused by every call. Calls on one device run one at a time
// (mutex_); in the worker they already do, since one FingerprintBatcher per device runs one batch
// at a time, so the lock only protects direct callers (tests, benchmarks). Calls on different
// devices do not share anything.
class FingerprintRunner {
 public:
  // Serves the calling thread's current device.
  FingerprintRunner() {
    const auto& tables = chromaprint_detail::tables();
    // Bins of each band in ascending order: the CPU twin's summation order.
    std::vector<int> band_bins;
    std::vector<int> band_start(13, 0);
    for (int b = 0; b < 12; ++b) {
      band_start[static_cast<std::size_t>(b)] = static_cast<int>(band_bins.size());
      for (int k = chromaprint_detail::kChromaBinLo; k < chromaprint_detail::kChromaBinHi; ++k)
        if (tables.band[static_cast<std::size_t>(k)] == b) band_bins.push_back(k);
    }
    band_start[12] = static_cast<int>(band_bins.size());

    DeviceClassifier classifiers[16];
    for (int n = 0; n < 16; ++n) {
      const auto& c = chromaprint_detail::kClassifiers[static_cast<size_t>(n)];
      classifiers[n] = {c.type, c.y, c.h, c.w, c.t0, c.t1, c.t2};
    }
    // __constant__ memory is per device, so each device's runner fills its own copy.
    YW_CUDA_CHECK(kWhat, cudaMemcpyToSymbol(c_classifiers, classifiers, sizeof(classifiers)));
    YW_CUDA_CHECK(kWhat, cudaMemcpyToSymbol(c_filter, chromaprint_detail::kChromaFilter.data(),
                                            sizeof(double) * 5));
    window_.reserve(kWhat, kFrame);
    window_.upload(kWhat, tables.window.data(), kFrame);
    band_bins_.reserve(kWhat, band_bins.size());
    band_bins_.upload(kWhat, band_bins.data(), band_bins.size());
    band_start_.reserve(kWhat, band_start.size());
    band_start_.upload(kWhat, band_start.data(), band_start.size());
    // Those copies went through the legacy default stream, and a copy from pageable memory may
    // return before its DMA lands; the slots' non-blocking streams are not ordered after it.
    // Waiting for that stream alone is enough: a whole-device synchronisation would also wait for
    // libtorch's (non-blocking) streams and the other twin's.
    YW_CUDA_CHECK(kWhat, cudaStreamSynchronize(nullptr));
  }

  // Items of `signals` into `result` (one empty vector per signal on entry), chunk by chunk.
  void run(const std::vector<MonoSignal>& signals, const std::vector<Chunk>& chunks,
           std::vector<std::vector<std::uint32_t>>& result) {
    std::lock_guard lock(mutex_);
    try {
      for (std::size_t c = 0; c < chunks.size(); ++c) {
        Slot& slot = slots_[c % kStreams];
        collect(slot, result);
        stage(slot, chunks[c], signals);
        enqueue(slot, chunks[c]);
      }
      for (Slot& slot : slots_)
        collect(slot, result);
    } catch (...) {
      // Nothing may still be copying into buffers that are freed or reused. The buffers and
      // plans are freed so that the batcher's retry in halves (after an out-of-memory) starts
      // from what it needs (a smaller plan for smaller chunks) and memory that another user of the
      // device holds can be given back in between.
      for (Slot& slot : slots_) {
        slot.stream.drain();
        slot.pending = nullptr;
        release(slot);
      }
      throw;
    }
  }

 private:
  // Waits for the slot's chunk and hands its items to their signals.
  void collect(Slot& slot, std::vector<std::vector<std::uint32_t>>& result) {
    if (!slot.pending) return;
    slot.stream.synchronize(kWhat);
    const Chunk& chunk = *slot.pending;
    slot.pending = nullptr;
    const std::size_t k = chunk.signals.size();
    const long long* item_offset = slot.h_layout.get() + chunk.frames + 2 * (k + 1);
    const uint32_t* items = slot.h_items.get();
    for (std::size_t j = 0; j < k; ++j)
      result[static_cast<std::size_t>(chunk.signals[j])].assign(items + item_offset[j],
                                                                items + item_offset[j + 1]);
  }

  // Host side of a chunk, into pinned memory; runs while the other slot's chunk is on the device.
  static void stage(Slot& slot, const Chunk& chunk, const std::vector<MonoSignal>& signals) {
    const std::size_t k = chunk.signals.size();
    int16_t* pcm = slot.h_pcm.reserve(kWhat, static_cast<std::size_t>(chunk.samples));
    long long* frame_start =
        slot.h_layout.reserve(kWhat, static_cast<std::size_t>(chunk.frames) + 3 * (k + 1));
    long long* frame_offset = frame_start + chunk.frames;
    long long* row_offset = frame_offset + (k + 1);
    long long* item_offset = row_offset + (k + 1);
    int* row_owner =
        slot.h_owner.reserve(kWhat, static_cast<std::size_t>(chunk.rows + chunk.items));
    int* item_owner = row_owner + chunk.rows;
    slot.h_items.reserve(kWhat, static_cast<std::size_t>(chunk.items));

    long long sample = 0;
    frame_offset[0] = row_offset[0] = item_offset[0] = 0;
    for (std::size_t j = 0; j < k; ++j) {
      const MonoSignal& signal = signals[static_cast<std::size_t>(chunk.signals[j])];
      const Shape shape = shape_of(signal.count);
      std::copy_n(signal.samples, signal.count, pcm + sample);
      for (long long f = 0; f < shape.frames; ++f)
        frame_start[frame_offset[j] + f] = sample + f * kHop;
      frame_offset[j + 1] = frame_offset[j] + shape.frames;
      row_offset[j + 1] = row_offset[j] + shape.rows;
      item_offset[j + 1] = item_offset[j] + shape.items;
      std::fill(row_owner + row_offset[j], row_owner + row_offset[j + 1], static_cast<int>(j));
      std::fill(item_owner + item_offset[j], item_owner + item_offset[j + 1], static_cast<int>(j));
      sample += static_cast<long long>(signal.count);
    }
  }

  // Device side of a chunk, all on the slot's stream: upload, the CPU twin's stages, download.
  void enqueue(Slot& slot, const Chunk& chunk) {
    const cudaStream_t stream = slot.stream.get();
    const auto k = static_cast<long long>(chunk.signals.size());
    const auto samples = static_cast<std::size_t>(chunk.samples);
    const auto layout = static_cast<std::size_t>(chunk.frames + 3 * (k + 1));
    const auto owners = static_cast<std::size_t>(chunk.rows + chunk.items);
    const auto rows = static_cast<std::size_t>(chunk.rows) * 12;
    slot.d_pcm.reserve(kWhat, samples);
    slot.d_layout.reserve(kWhat, layout);
    slot.d_owner.reserve(kWhat, owners);
    const int plan_frames = plan_frames_for(chunk.frames);
    if (plan_frames > slot.plan_frames) {
      // The slot's stream is idle here (collect() waited for its last chunk).
      slot.plan.reset();
      slot.plan_frames = 0;
      slot.plan = std::make_unique<R2cPlan>(plan_frames, stream);
      slot.plan_frames = plan_frames;
    }
    slot.d_in.reserve(kWhat, static_cast<std::size_t>(slot.plan_frames) * kFrame);
    slot.d_spectrum.reserve(kWhat, static_cast<std::size_t>(slot.plan_frames) * kBins);
    slot.d_chroma.reserve(kWhat, static_cast<std::size_t>(chunk.frames) * 12);
    slot.d_rows.reserve(kWhat, rows);
    slot.d_image.reserve(kWhat, rows);
    slot.d_items.reserve(kWhat, static_cast<std::size_t>(chunk.items));

    slot.d_pcm.upload_async(kWhat, slot.h_pcm.get(), 0, samples, stream);
    slot.d_layout.upload_async(kWhat, slot.h_layout.get(), 0, layout, stream);
    slot.d_owner.upload_async(kWhat, slot.h_owner.get(), 0, owners, stream);
    const long long* frame_start = slot.d_layout.get();
    const long long* frame_offset = frame_start + chunk.frames;
    const long long* row_offset = frame_offset + (k + 1);
    const long long* item_offset = row_offset + (k + 1);
    const int* row_owner = slot.d_owner.get();
    const int* item_owner = row_owner + chunk.rows;

    for (long long first = 0; first < chunk.frames; first += slot.plan_frames) {
      const int frames =
          static_cast<int>(std::min<long long>(slot.plan_frames, chunk.frames - first));
      YW_LAUNCH(window_kernel, blocks_for(static_cast<long long>(frames) * kFrame), kThreads,
                stream, slot.d_pcm.get(), frame_start, first, frames, window_.get(),
                slot.d_in.get());
      YW_CUDA_CHECK(kWhat, cudaGetLastError());
      // A short piece runs the full plan; the frames past `frames` are stale and unused.
      YW_CUFFT_CHECK(kWhat, cufftExecR2C(slot.plan->get(), slot.d_in.get(), slot.d_spectrum.get()));
      YW_LAUNCH(chroma_kernel, blocks_for(static_cast<long long>(frames) * 12), kThreads, stream,
                slot.d_spectrum.get(), frames, first, band_bins_.get(), band_start_.get(),
                slot.d_chroma.get());
      YW_CUDA_CHECK(kWhat, cudaGetLastError());
    }
    YW_LAUNCH(rows_kernel, blocks_for(chunk.rows), kThreads, stream, slot.d_chroma.get(),
              frame_offset, row_offset, row_owner, chunk.rows, slot.d_rows.get());
    YW_CUDA_CHECK(kWhat, cudaGetLastError());
    YW_LAUNCH(integral_kernel, blocks_for(k * 12), kThreads, stream, slot.d_rows.get(), row_offset,
              static_cast<int>(k), slot.d_image.get());
    YW_CUDA_CHECK(kWhat, cudaGetLastError());
    YW_LAUNCH(classify_kernel, blocks_for(chunk.items), kThreads, stream, slot.d_image.get(),
              row_offset, item_offset, item_owner, chunk.items, slot.d_items.get());
    YW_CUDA_CHECK(kWhat, cudaGetLastError());
    slot.d_items.download_async(kWhat, slot.h_items.get(), 0, static_cast<std::size_t>(chunk.items),
                                stream);
    slot.pending = &chunk;
  }

  // Frames of the plan for a chunk: a power of two from 64 up to kMaxFramesPerPlan.
  static int plan_frames_for(long long frames) {
    int p = 64;
    while (p < kMaxFramesPerPlan && p < frames)
      p *= 2;
    return p;
  }

  static void release(Slot& slot) noexcept {
    slot.plan.reset();
    slot.plan_frames = 0;
    slot.h_pcm.release();
    slot.h_layout.release();
    slot.h_owner.release();
    slot.h_items.release();
    slot.d_pcm.release();
    slot.d_layout.release();
    slot.d_owner.release();
    slot.d_in.release();
    slot.d_spectrum.release();
    slot.d_chroma.release();
    slot.d_rows.release();
    slot.d_image.release();
    slot.d_items.release();
  }

  std::mutex mutex_;
  DeviceArray<float> window_;
  DeviceArray<int> band_bins_;
  DeviceArray<int> band_start_;
  std::array<Slot, kStreams> slots_;
};

// The runner of `device`, created on first use (the calling thread's current device must be
// `device`). A runner that fails to build is not kept, so a later call tries again. The registry
// is never destroyed: at exit the CUDA runtime may be torn down before static destructors run,
// and freeing streams, plans and pinned memory then can fail or crash; the OS reclaims them.
FingerprintRunner& runner_for(int device) {
  static std::mutex mutex;
  static auto* runners = new std::map<int, std::unique_ptr<FingerprintRunner>>();
  std::lock_guard lock(mutex);
  auto& runner = (*runners)[device];
  if (!runner) runner = std::make_unique<FingerprintRunner>();
  return *runner;
}

}  // namespace

std::vector<std::vector<std::uint32_t>> fingerprint_batch_cuda(
    const std::vector<MonoSignal>& signals, int device) {
  YW_CUDA_CHECK(kWhat, cudaSetDevice(device));
  std::vector<std::vector<std::uint32_t>> result(signals.size());
  const std::vector<Chunk> chunks = make_chunks(signals);
  if (!chunks.empty()) runner_for(device).run(signals, chunks, result);
  return result;
}

}  // namespace yw
