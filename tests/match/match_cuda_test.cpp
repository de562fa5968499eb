// The CUDA rescoring twin against the CPU twin (label gpu; skips at run time without a device):
// the bit-error counts of many tasks are equal integers, and matching through the device's
// MatchBatcher (concurrent queries merged into one CUDA call) gives the CPU's matches exactly.
#include <gtest/gtest.h>

#include <thread>

#include "match/synthetic.hpp"
#include "yw/kernels/cuda/fingerprint_match_cuda.hpp"
#include "yw/kernels/device.hpp"
#include "yw/kernels/fingerprint_match.hpp"
#include "yw/worker/fingerprint_index.hpp"
#include "yw/worker/match_batcher.hpp"

namespace yw::worker {
namespace {

#define YW_REQUIRE_CUDA_DEVICE()                                                               \
  do {                                                                                         \
    const auto inv = cuda_inventory();                                                         \
    if (inv.count == 0) GTEST_SKIP() << "no CUDA device (" << inv.reason << "): twin not run"; \
  } while (0)

TEST(MatchCuda, BitErrorCountsEqualTheCpuTwin) {
  YW_REQUIRE_CUDA_DEVICE();
  test::SyntheticFingerprints gen(21);
  std::vector<std::vector<std::uint32_t>> store;
  for (int i = 0; i < 64; ++i)
    store.push_back(gen.fast_song(200 + 37 * static_cast<std::size_t>(i)));
  const auto query = gen.fast_song(2000);
  std::vector<std::span<const std::uint32_t>> cands(store.begin(), store.end());
  std::vector<ItemsView> views;
  for (const auto& s : store)
    views.push_back({s.data(), s.size()});
  std::vector<BitErrorTask> tasks;
  std::mt19937 rng(3);
  for (int k = 0; k < 5000; ++k) {
    const auto c = static_cast<std::uint32_t>(rng() % store.size());
    const auto len = static_cast<std::uint32_t>(store[c].size());
    const std::uint32_t count = rng() % (len + 1);
    tasks.push_back({c, static_cast<std::uint32_t>(rng() % (len - count + 1)),
                     static_cast<std::uint32_t>(rng() % (query.size() - count + 1)), count});
  }
  const auto want = bit_errors_batch_cpu(query, cands, tasks);
  const auto got = bit_errors_batch_cuda(query.data(), query.size(), views, tasks, 0);
  EXPECT_EQ(got, want);
}

TEST(MatchCuda, MatchesThroughTheDeviceBatcherEqualCpuMatches) {
  YW_REQUIRE_CUDA_DEVICE();
  test::SyntheticFingerprints gen(22);
  FingerprintIndex index(true);
  std::vector<std::vector<std::uint32_t>> songs;
  for (int i = 0; i < 2000; ++i) {
    songs.push_back(gen.fast_song(948));
    index.upsert("r" + std::to_string(i), songs.back(), 120.0);
  }
  Device gpu;
  gpu.kind = Device::Kind::cuda;
  gpu.index = 0;
  BatchPolicy policy;
  policy.max_batch = 16;
  policy.max_queue_delay = std::chrono::milliseconds(5);
  const BitErrorFn device_fn = bit_error_fn(gpu, policy);
  std::vector<std::thread> threads;
  std::atomic<int> equal{0}, nonempty{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      test::SyntheticFingerprints g(100 + static_cast<std::uint64_t>(t));
      for (int q = 0; q < 25; ++q) {
        const auto& s = songs[static_cast<std::size_t>(t * 25 + q)];
        auto items = g.degrade(s, 0.02 + 0.01 * (q % 8));
        MatchOptions o;
        o.mode = q % 2 ? MatchMode::both : MatchMode::full;
        const auto a = index.match(items, 120.0, o, &bit_errors_batch_cpu);
        const auto b = index.match(items, 120.0, o, device_fn);
        bool same = a.size() == b.size();
        for (std::size_t k = 0; same && k < a.size(); ++k)
          same = a[k].record_id == b[k].record_id && a[k].score == b[k].score &&
                 a[k].offset_items == b[k].offset_items;
        equal += same;
        nonempty += !a.empty();
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(equal.load(), 200);
  EXPECT_EQ(nonempty.load(), 200);
}

}  // namespace
}  // namespace yw::worker
