// The CUDA twins' own sources (kernels/cuda/fingerprint.cu, hpss.cu) run on the CPU through the
// host stand-in runtime (cuda_host/), against the CPU twins (label `unit`, so it also runs under
// ASan/UBSan in the asan configuration): every kernel over its real grid, the chunking across
// plans and streams, the per-device runners, and an allocation failure injected at every
// allocation point of a first call. The `gpu` label runs the same sources on a device.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cuda_host/cuda_host.hpp"
#include "cuda_host/cuda_runtime.h"
#include "kernels/random_pcm.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/cuda/fingerprint_cuda.hpp"
#include "yw/kernels/cuda/hpss_cuda.hpp"
#include "yw/kernels/fingerprint.hpp"
#include "yw/kernels/hpss.hpp"

namespace yw::test {
namespace {

// Each case takes device numbers of its own, so every call meets a fresh runner (the .cu files
// keep one per device for the process's life) and reset_device() can free its buffers after.
int fresh_device() {
  static int next = 1;
  return next++;
}

struct Batch {
  std::vector<std::vector<std::int16_t>> pcm;
  std::vector<MonoSignal> signals() const {
    std::vector<MonoSignal> out;
    for (const auto& p : pcm)
      out.push_back({p.data(), p.size()});
    return out;
  }
  std::vector<std::vector<std::uint32_t>> cpu() const {
    std::vector<std::span<const std::int16_t>> spans(pcm.begin(), pcm.end());
    return fingerprint_batch_cpu(spans);
  }
};

// The same FFT (FFTW stands in for cuFFT with the CPU twin's plan), so every item must agree.
void expect_items_equal(const std::vector<std::vector<std::uint32_t>>& got,
                        const std::vector<std::vector<std::uint32_t>>& want) {
  ASSERT_EQ(got.size(), want.size());
  std::size_t items = 0;
  for (std::size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].size(), want[i].size()) << "signal " << i;
    for (std::size_t k = 0; k < want[i].size(); ++k)
      ASSERT_EQ(got[i][k], want[i][k]) << "signal " << i << " item " << k;
    items += want[i].size();
  }
  std::printf("[ EMULATED ] %zu signals, %zu items, all equal to the CPU twin\n", want.size(),
              items);
}

Batch mixed_batch() {
  Batch b;
  std::mt19937 rng(42);
  for (int i = 0; i < 7; ++i) {
    const std::size_t n = 11025 * (1 + rng() % 25) + rng() % 1365;
    b.pcm.push_back(random_pcm(n, static_cast<unsigned>(i), i % 3 == 0 ? 200 : 20000));
  }
  b.pcm.push_back(std::vector<std::int16_t>(11025 * 6, 0));  // silence
  b.pcm.push_back(random_pcm(1000, 9, 100));                 // no items at all
  return b;
}

TEST(CudaHostFingerprint, MixedBatchEqualsTheCpuTwin) {
  const Batch b = mixed_batch();
  const int device = fresh_device();
  expect_items_equal(fingerprint_batch_cuda(b.signals(), device), b.cpu());
  // The second call reuses the runner's grown buffers (stale contents, no poison).
  expect_items_equal(fingerprint_batch_cuda(b.signals(), device), b.cpu());
  cuda_host::reset_device(device);
}

// The slots plan for the chunks they see (a power of two of frames up to kMaxFramesPerPlan) and
// re-plan only to grow: a small batch holds little device memory, a larger one after it grows
// the plan, and a small one after that reuses it; every result stays exact.
TEST(CudaHostFingerprint, PlansGrowWithTheChunksAndSmallBatchesStaySmall) {
  Batch small;
  small.pcm.push_back(random_pcm(11025 * 5, 3, 12000));
  small.pcm.push_back(random_pcm(11025 * 4 + 99, 4, 12000));
  Batch large;
  for (unsigned i = 0; i < 4; ++i)
    large.pcm.push_back(random_pcm(11025 * 200, 10 + i, 12000));
  const int device = fresh_device();
  const std::size_t base = cuda_host::bytes_in_use();
  expect_items_equal(fingerprint_batch_cuda(small.signals(), device), small.cpu());
  const std::size_t small_bytes = cuda_host::bytes_in_use() - base;
  std::printf("[ MEMORY   ] %zu bytes of device and pinned memory for 9 s of audio\n", small_bytes);
  EXPECT_LT(small_bytes, std::size_t{16} << 20) << "a 64-frame plan, not the 4096-frame one";
  expect_items_equal(fingerprint_batch_cuda(large.signals(), device), large.cpu());
  const std::size_t before = cuda_host::allocations();
  expect_items_equal(fingerprint_batch_cuda(small.signals(), device), small.cpu());
  EXPECT_EQ(cuda_host::allocations(), before) << "a smaller batch re-planned or reallocated";
  cuda_host::reset_device(device);
}

TEST(CudaHostFingerprint, SignalLongerThanOnePlan) {
  // 530 s at 11025 Hz is 4281 frames: the plan (kMaxFramesPerPlan = 4096) runs twice in one
  // chunk, and the short signal goes to the other stream's chunk.
  Batch b;
  b.pcm.push_back(random_pcm(static_cast<std::size_t>(11025) * 530, 7, 15000));
  b.pcm.push_back(random_pcm(static_cast<std::size_t>(11025) * 12, 8, 15000));
  const int device = fresh_device();
  expect_items_equal(fingerprint_batch_cuda(b.signals(), device), b.cpu());
  cuda_host::reset_device(device);
}

TEST(CudaHostFingerprint, EmptyBatchAndNoItems) {
  const int device = fresh_device();
  EXPECT_TRUE(fingerprint_batch_cuda({}, device).empty());
  const auto tiny = random_pcm(500, 1, 1000);
  const auto out = fingerprint_batch_cuda({{tiny.data(), tiny.size()}}, device);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(out[0].empty());
  cuda_host::reset_device(device);
}

// Every allocation point of a first call (runner, streams, plans, pinned and device buffers of
// both slots) fails once: the call throws yw::Error naming the twin, nothing leaks (ASan), and
// the next call on the same device is exact.
TEST(CudaHostFingerprint, AllocationFailureAtEveryPoint) {
  Batch b;
  b.pcm.push_back(random_pcm(11025 * 8, 1, 12000));
  b.pcm.push_back(random_pcm(11025 * 5 + 77, 2, 12000));
  const auto want = b.cpu();
  const int counting = fresh_device();
  const std::size_t before = cuda_host::allocations();
  expect_items_equal(fingerprint_batch_cuda(b.signals(), counting), want);
  const std::size_t points = cuda_host::allocations() - before;
  cuda_host::reset_device(counting);
  ASSERT_GE(points, 20u) << "two slots' streams, plans and buffers, and the runner's constants";
  std::printf("[ FAULTS   ] %zu allocation points\n", points);
  for (std::size_t k = 0; k < points; ++k) {
    const int device = fresh_device();
    cuda_host::fail_allocation(cuda_host::allocations() + k);
    try {
      fingerprint_batch_cuda(b.signals(), device);
      ADD_FAILURE() << "allocation " << k << " failed and the call returned";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("fingerprint on cuda"), std::string::npos) << e.what();
    }
    cuda_host::fail_allocation(std::nullopt);
    const auto again = fingerprint_batch_cuda(b.signals(), device);
    ASSERT_EQ(again, want) << "after the failure of allocation " << k;
    cuda_host::reset_device(device);
  }
}

// A fault inside a kernel poisons the device's context: the call fails naming CUDA's error, and
// so does every later call on that device (what the worker's device health acts on).
TEST(CudaHostFingerprint, StickyKernelFaultIsReportedAndStays) {
  const Batch b = mixed_batch();
  const int device = fresh_device();
  cuda_host::fail_next_launch(cudaErrorIllegalAddress);
  try {
    fingerprint_batch_cuda(b.signals(), device);
    FAIL() << "the kernel fault was not reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cudaErrorIllegalAddress"), std::string::npos) << e.what();
  }
  EXPECT_THROW(fingerprint_batch_cuda(b.signals(), device), Error);
  cuda_host::reset_device(device);
  // Another device is not affected.
  const int other = fresh_device();
  expect_items_equal(fingerprint_batch_cuda(b.signals(), other), b.cpu());
  cuda_host::reset_device(other);
}

struct Stems {
  std::vector<float> h, p;
};

std::vector<float> music_like(std::int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 0.2f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    x[static_cast<std::size_t>(i)] = d(rng) + 0.3f * std::sin(0.05f * static_cast<float>(i));
  return x;
}

// The same FFT, but the overlap-add sums frames in another order than the CPU twin's scatter.
void expect_stems_close(const HpssConfig& cfg, const std::vector<float>& x, int device) {
  const auto n = static_cast<std::int64_t>(x.size());
  Stems cpu{std::vector<float>(x.size()), std::vector<float>(x.size())};
  Stems emu{std::vector<float>(x.size(), 7.0f), std::vector<float>(x.size(), 7.0f)};
  hpss_cpu(cfg, x.data(), n, cpu.h.data(), cpu.p.data());
  hpss_cuda(cfg, x.data(), n, emu.h.data(), emu.p.data(), device);
  float max_abs = 0.0f;
  for (std::size_t i = 0; i < x.size(); ++i) {
    ASSERT_TRUE(std::isfinite(emu.h[i]) && std::isfinite(emu.p[i])) << "sample " << i;
    max_abs = std::max({max_abs, std::abs(emu.h[i] - cpu.h[i]), std::abs(emu.p[i] - cpu.p[i])});
  }
  std::printf("[ EMULATED ] hpss n=%lld n_fft=%d: max |emulated - cpu| = %.3g\n",
              static_cast<long long>(n), cfg.stft.n_fft, static_cast<double>(max_abs));
  EXPECT_LT(max_abs, 1e-5f);
}

HpssConfig small_hpss() {
  HpssConfig cfg;
  cfg.stft = StftConfig{256, 64};
  return cfg;
}

TEST(CudaHostHpss, ShortAndMultiBlockSignalsMatchTheCpuTwin) {
  const HpssConfig cfg = small_hpss();
  const int device = fresh_device();
  // Shorter than a frame; not a multiple of the hop; three of the twin's 4096-frame blocks.
  for (const std::int64_t n : {100LL, 20'011LL, 4096LL * 64 * 2 + 12'345})
    expect_stems_close(cfg, music_like(n, static_cast<unsigned>(n)), device);
  // The runner keeps its buffers and plans: shorter signals after the longest allocate nothing.
  const std::size_t before = cuda_host::allocations();
  for (const std::int64_t n : {20'011LL, 4096LL * 64 * 2 + 12'345, 300LL})
    expect_stems_close(cfg, music_like(n, static_cast<unsigned>(n) + 1), device);
  EXPECT_EQ(cuda_host::allocations() - before, 0u) << "allocations on the job path";
  cuda_host::reset_device(device);
}

TEST(CudaHostHpss, AllocationFailureAtEveryPoint) {
  const HpssConfig cfg = small_hpss();
  const auto x = music_like(30'000, 5);
  const auto n = static_cast<std::int64_t>(x.size());
  std::vector<float> h(x.size()), p(x.size()), wh(x.size()), wp(x.size());
  hpss_cpu(cfg, x.data(), n, wh.data(), wp.data());
  const int counting = fresh_device();
  const std::size_t before = cuda_host::allocations();
  hpss_cuda(cfg, x.data(), n, h.data(), p.data(), counting);
  const std::size_t points = cuda_host::allocations() - before;
  cuda_host::reset_device(counting);
  ASSERT_GE(points, 5u);
  std::printf("[ FAULTS   ] %zu allocation points\n", points);
  for (std::size_t k = 0; k < points; ++k) {
    const int device = fresh_device();
    cuda_host::fail_allocation(cuda_host::allocations() + k);
    EXPECT_THROW(hpss_cuda(cfg, x.data(), n, h.data(), p.data(), device), Error) << k;
    cuda_host::fail_allocation(std::nullopt);
    expect_stems_close(cfg, x, device);
    cuda_host::reset_device(device);
  }
}

}  // namespace
}  // namespace yw::test
