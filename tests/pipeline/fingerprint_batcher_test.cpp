// The fingerprint batcher with stand-in runners (the real CPU twin in the last case): grouping
// across callers, each caller getting its own result, and failure isolation.
#include "yw/worker/fingerprint_batcher.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>

#include "yw/common/device_health.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/fingerprint.hpp"

namespace yw::worker {
namespace {

using std::chrono::milliseconds;

// A stand-in "device" whose result for a signal is {size, first sample}: easy to check that every
// caller gets the answer for its own signal.
std::vector<std::vector<std::uint32_t>> echo(const std::vector<std::span<const std::int16_t>>& s) {
  std::vector<std::vector<std::uint32_t>> out;
  for (const auto& sig : s)
    out.push_back({static_cast<std::uint32_t>(sig.size()), static_cast<std::uint32_t>(sig[0])});
  return out;
}

TEST(FingerprintBatcherTest, ConcurrentCallersShareBatchesAndGetTheirOwnResults) {
  std::atomic<int> calls{0};
  FingerprintBatcher b(
      [&](const auto& s) {
        ++calls;
        return echo(s);
      },
      BatchPolicy{8, {}, milliseconds(20)}, "test");
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::int16_t> sig(static_cast<std::size_t>(100 + t),
                                    static_cast<std::int16_t>(t));
      const auto items = b.fingerprint(sig);
      if (items != std::vector<std::uint32_t>{static_cast<std::uint32_t>(100 + t),
                                              static_cast<std::uint32_t>(t)})
        ++wrong;
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(wrong.load(), 0);
  const auto s = b.stats();
  EXPECT_EQ(s.items, 16u);
  EXPECT_GT(s.largest_batch, 1u) << "callers arriving together were batched";
  EXPECT_LT(calls.load(), 16);
}

TEST(FingerprintBatcherTest, OneBadSignalFailsOnlyItsOwnCaller) {
  // The stand-in fails any batch that holds a signal starting with -1, like a device error.
  FingerprintBatcher b(
      [](const auto& s) {
        for (const auto& sig : s)
          if (sig[0] == -1) YW_THROW("device error on a poisoned signal");
        return echo(s);
      },
      BatchPolicy{8, {}, milliseconds(50)}, "test");
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, failed{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::int16_t> sig(10, static_cast<std::int16_t>(t == 3 ? -1 : t));
      try {
        b.fingerprint(sig);
        ++ok;
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("poisoned"), std::string::npos);
        ++failed;
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(ok.load(), 5);
  EXPECT_EQ(failed.load(), 1);
}

TEST(FingerprintBatcherTest, OutOfMemoryHalvesTheBatchAndNothingIsLost) {
  std::atomic<int> largest_success{0};
  FingerprintBatcher b(
      [&](const auto& s) {
        if (s.size() > 2) YW_THROW("cuFFT: out of memory for {} signals", s.size());
        largest_success = std::max<int>(largest_success, static_cast<int>(s.size()));
        return echo(s);
      },
      BatchPolicy{8, {}, milliseconds(50)}, "test");
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::int16_t> sig(5, static_cast<std::int16_t>(t));
      if (b.fingerprint(sig)[1] == static_cast<std::uint32_t>(t)) ++ok;
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_LE(largest_success.load(), 2);
}

TEST(FingerprintBatcherTest, CpuTwinThroughTheBatcherEqualsOneAtATime) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> dist(-20000, 20000);
  std::vector<std::vector<std::int16_t>> signals;
  for (int i = 0; i < 5; ++i) {
    std::vector<std::int16_t> s(static_cast<std::size_t>(40000 + 5000 * i));
    for (auto& v : s)
      v = static_cast<std::int16_t>(dist(rng));
    signals.push_back(std::move(s));
  }
  FingerprintBatcher b(fingerprint_batch_fn(Device{}), BatchPolicy{4, {}, milliseconds(30)}, "cpu");
  std::vector<std::vector<std::uint32_t>> batched(signals.size());
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < signals.size(); ++i)
    threads.emplace_back([&, i] { batched[i] = b.fingerprint(signals[i]); });
  for (auto& th : threads)
    th.join();
  for (std::size_t i = 0; i < signals.size(); ++i) {
    EXPECT_EQ(batched[i], fingerprint_cpu(signals[i])) << "signal " << i;
    EXPECT_FALSE(batched[i].empty());
  }
}

// A sticky CUDA error (as fingerprint.cu reports one) is not retried in halves: the one call
// fails every caller back retryable, the device is marked unhealthy, and later batches are not
// even tried on it.
TEST(FingerprintBatcherTest, StickyDeviceErrorFailsTheBatchBackAndMarksTheDevice) {
  DeviceHealth::global().reset();
  std::atomic<int> calls{0};
  FingerprintBatcher b(
      [&](const auto&) -> std::vector<std::vector<std::uint32_t>> {
        ++calls;
        YW_THROW(
            "fingerprint on cuda: cudaStreamSynchronize(stream_) failed: an illegal memory access "
            "was encountered (cudaErrorIllegalAddress)");
      },
      BatchPolicy{8, {}, milliseconds(50)}, "cuda:0");
  std::vector<std::thread> threads;
  std::atomic<int> retryable{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::vector<std::int16_t> sig(5, static_cast<std::int16_t>(t));
      try {
        b.fingerprint(sig);
      } catch (const Error& e) {
        if (e.retryable() &&
            std::string(e.what()).find("cudaErrorIllegalAddress") != std::string::npos)
          ++retryable;
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(retryable.load(), 6);
  const int after_first = calls.load();
  EXPECT_LE(after_first, 6) << "no retry in halves";
  ASSERT_TRUE(DeviceHealth::global().problem().has_value());
  EXPECT_NE(DeviceHealth::global().problem()->find("cuda:0: fingerprint on cuda"),
            std::string::npos);
  std::vector<std::int16_t> sig(5, 1);
  EXPECT_THROW(b.fingerprint(sig), Error);
  EXPECT_EQ(calls.load(), after_first) << "an unhealthy device runs no more batches";
  DeviceHealth::global().reset();
}

TEST(DeviceHealthTest, StickyErrorsAreTheContextPoisoningOnes) {
  EXPECT_TRUE(
      is_sticky_device_error("x: failed: unspecified launch failure (cudaErrorLaunchFailure)"));
  EXPECT_TRUE(is_sticky_device_error("CUDA error: device-side assert triggered"));
  EXPECT_TRUE(is_sticky_device_error("CUDA error: an illegal memory access was encountered"));
  EXPECT_FALSE(
      is_sticky_device_error("x: cudaMalloc failed: out of memory (cudaErrorMemoryAllocation)"));
  EXPECT_FALSE(is_sticky_device_error("CUDA out of memory. Tried to allocate 2.00 GiB"));
  EXPECT_FALSE(is_sticky_device_error("fingerprint: cufftExecR2C failed: cufftResult 2"));
}

}  // namespace
}  // namespace yw::worker
