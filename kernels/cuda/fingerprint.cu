// ref: fingerprint_cpu (kernels/cpu/fingerprint.cpp) and chromaprint_tables.hpp, followed step by
// step. Rounding is kept identical on purpose: products and sums use the _rn intrinsics so nvcc
// cannot contract them into FMAs, and every sum runs in the CPU twin's order (bins of a band in
// ascending order, filter taps 0..4, bands 0..11, the integral image row after row).
#include <cuda_runtime.h>
#include <cufft.h>

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cuda_check.cuh"
#include "yw/common/error.hpp"
#include "yw/kernels/chromaprint_tables.hpp"
#include "yw/kernels/cuda/fingerprint_cuda.hpp"

namespace yw {
namespace {

using cuda::DeviceArray;
constexpr const char* kWhat = "fingerprint on cuda";

constexpr int kFrame = 4096;
constexpr int kHop = 1365;
constexpr int kBins = kFrame / 2 + 1;
constexpr int kThreads = 256;

struct DeviceClassifier {
  int type, y, h, w;
  double t0, t1, t2;
};
__constant__ DeviceClassifier c_classifiers[16];
__constant__ double c_filter[5];

class R2cPlan {
 public:
  explicit R2cPlan(int batch) {
    int n[1] = {kFrame};
    YW_CUFFT_CHECK(kWhat, cufftPlanMany(&plan_, 1, n, nullptr, 1, kFrame, nullptr, 1, kBins,
                                        CUFFT_R2C, batch));
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

}  // namespace

std::vector<std::vector<std::uint32_t>> fingerprint_batch_cuda(
    const std::vector<MonoSignal>& signals, int device) {
  YW_CUDA_CHECK(kWhat, cudaSetDevice(device));
  const int count = static_cast<int>(signals.size());
  std::vector<std::vector<std::uint32_t>> result(signals.size());

  // Layout: frames, rows (frames - 4) and items (rows - 15) of every signal, back to back.
  std::vector<long long> sample_offset(signals.size() + 1, 0);
  std::vector<long long> frame_offset(signals.size() + 1, 0);
  std::vector<long long> row_offset(signals.size() + 1, 0);
  std::vector<long long> item_offset(signals.size() + 1, 0);
  for (int i = 0; i < count; ++i) {
    const long long n = static_cast<long long>(signals[i].count);
    const long long frames = n < kFrame ? 0 : (n - kFrame) / kHop + 1;
    const long long rows = std::max(frames - 4, 0LL);
    const long long items = std::max(rows - 15, 0LL);
    sample_offset[i + 1] = sample_offset[i] + n;
    frame_offset[i + 1] = frame_offset[i] + frames;
    row_offset[i + 1] = row_offset[i] + rows;
    item_offset[i + 1] = item_offset[i] + items;
  }
  const long long total_frames = frame_offset[count];
  const long long total_rows = row_offset[count];
  const long long total_items = item_offset[count];
  if (total_items == 0) return result;

  std::vector<int16_t> pcm(static_cast<size_t>(sample_offset[count]));
  std::vector<long long> frame_start(static_cast<size_t>(total_frames));
  std::vector<int> row_signal(static_cast<size_t>(total_rows));
  std::vector<int> item_signal(static_cast<size_t>(total_items));
  for (int i = 0; i < count; ++i) {
    std::copy_n(signals[i].samples, signals[i].count, pcm.begin() + sample_offset[i]);
    for (long long f = frame_offset[i]; f < frame_offset[i + 1]; ++f)
      frame_start[static_cast<size_t>(f)] = sample_offset[i] + (f - frame_offset[i]) * kHop;
    std::fill(row_signal.begin() + row_offset[i], row_signal.begin() + row_offset[i + 1], i);
    std::fill(item_signal.begin() + item_offset[i], item_signal.begin() + item_offset[i + 1], i);
  }

  // Bins of each band in ascending order: the CPU twin's summation order.
  const auto& tables = chromaprint_detail::tables();
  std::vector<int> band_bins;
  std::vector<int> band_start(13, 0);
  for (int b = 0; b < 12; ++b) {
    band_start[b] = static_cast<int>(band_bins.size());
    for (int k = chromaprint_detail::kChromaBinLo; k < chromaprint_detail::kChromaBinHi; ++k)
      if (tables.band[static_cast<size_t>(k)] == b) band_bins.push_back(k);
  }
  band_start[12] = static_cast<int>(band_bins.size());

  DeviceClassifier classifiers[16];
  for (int n = 0; n < 16; ++n) {
    const auto& c = chromaprint_detail::kClassifiers[static_cast<size_t>(n)];
    classifiers[n] = {c.type, c.y, c.h, c.w, c.t0, c.t1, c.t2};
  }
  YW_CUDA_CHECK(kWhat, cudaMemcpyToSymbol(c_classifiers, classifiers, sizeof(classifiers)));
  YW_CUDA_CHECK(kWhat, cudaMemcpyToSymbol(c_filter, chromaprint_detail::kChromaFilter.data(),
                                          sizeof(double) * 5));

  DeviceArray<int16_t> d_pcm(pcm.size());
  d_pcm.upload(pcm.data(), pcm.size());
  DeviceArray<long long> d_frame_start(frame_start.size());
  d_frame_start.upload(frame_start.data(), frame_start.size());
  DeviceArray<float> d_window(kFrame);
  d_window.upload(tables.window.data(), kFrame);
  DeviceArray<int> d_band_bins(band_bins.size());
  d_band_bins.upload(band_bins.data(), band_bins.size());
  DeviceArray<int> d_band_start(band_start.size());
  d_band_start.upload(band_start.data(), band_start.size());

  const int plan_frames = static_cast<int>(std::min<long long>(total_frames, kMaxFramesPerPlan));
  DeviceArray<float> d_in(static_cast<size_t>(plan_frames) * kFrame);
  DeviceArray<cufftComplex> d_spectrum(static_cast<size_t>(plan_frames) * kBins);
  DeviceArray<double> d_chroma(static_cast<size_t>(total_frames) * 12);
  {
    R2cPlan plan(plan_frames);
    for (long long first = 0; first < total_frames; first += plan_frames) {
      const int frames = static_cast<int>(std::min<long long>(plan_frames, total_frames - first));
      window_kernel<<<blocks_for(static_cast<long long>(frames) * kFrame), kThreads>>>(
          d_pcm.get(), d_frame_start.get(), first, frames, d_window.get(), d_in.get());
      YW_CUDA_CHECK(kWhat, cudaGetLastError());
      // A short last chunk runs the full plan; the frames past `frames` are stale and unused.
      YW_CUFFT_CHECK(kWhat, cufftExecR2C(plan.get(), d_in.get(), d_spectrum.get()));
      chroma_kernel<<<blocks_for(static_cast<long long>(frames) * 12), kThreads>>>(
          d_spectrum.get(), frames, first, d_band_bins.get(), d_band_start.get(), d_chroma.get());
      YW_CUDA_CHECK(kWhat, cudaGetLastError());
    }
  }

  DeviceArray<long long> d_frame_offset(frame_offset.size());
  d_frame_offset.upload(frame_offset.data(), frame_offset.size());
  DeviceArray<long long> d_row_offset(row_offset.size());
  d_row_offset.upload(row_offset.data(), row_offset.size());
  DeviceArray<long long> d_item_offset(item_offset.size());
  d_item_offset.upload(item_offset.data(), item_offset.size());
  DeviceArray<int> d_row_signal(row_signal.size());
  d_row_signal.upload(row_signal.data(), row_signal.size());
  DeviceArray<int> d_item_signal(item_signal.size());
  d_item_signal.upload(item_signal.data(), item_signal.size());
  DeviceArray<double> d_rows(static_cast<size_t>(total_rows) * 12);
  DeviceArray<double> d_image(static_cast<size_t>(total_rows) * 12);
  DeviceArray<uint32_t> d_items(static_cast<size_t>(total_items));

  rows_kernel<<<blocks_for(total_rows), kThreads>>>(d_chroma.get(), d_frame_offset.get(),
                                                    d_row_offset.get(), d_row_signal.get(),
                                                    total_rows, d_rows.get());
  YW_CUDA_CHECK(kWhat, cudaGetLastError());
  integral_kernel<<<blocks_for(count * 12LL), kThreads>>>(d_rows.get(), d_row_offset.get(), count,
                                                          d_image.get());
  YW_CUDA_CHECK(kWhat, cudaGetLastError());
  classify_kernel<<<blocks_for(total_items), kThreads>>>(d_image.get(), d_row_offset.get(),
                                                         d_item_offset.get(), d_item_signal.get(),
                                                         total_items, d_items.get());
  YW_CUDA_CHECK(kWhat, cudaGetLastError());
  std::vector<uint32_t> items(static_cast<size_t>(total_items));
  d_items.download(items.data(), items.size());
  for (int i = 0; i < count; ++i)
    result[static_cast<size_t>(i)].assign(items.begin() + item_offset[i],
                                          items.begin() + item_offset[i + 1]);
  return result;
}

}  // namespace yw
