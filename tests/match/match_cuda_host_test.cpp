// The rescoring's CUDA twin (kernels/cuda/fingerprint_match.cu, the very source the `gpu` label
// runs on a device) run on the CPU through issue 13's host stand-in runtime
// (tests/kernels/cuda_host/), against the CPU twin: label `unit`, so every build runs it, the
// asan one included. Bit-error counts are integers, so "equal" means exactly equal: on random
// candidate x offset batches (the seed is printed; YW_TEST_SEED replays one), on the tasks that
// matching a synthetic catalogue produces, with an allocation failure injected at every
// allocation point, and with a sticky kernel fault, which the match batcher must hand to the
// device health (common/device_health.hpp) as the fingerprint batcher does.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cuda_host/cuda_host.hpp"
#include "cuda_host/cuda_runtime.h"
#include "match/synthetic.hpp"
#include "yw/common/device_health.hpp"
#include "yw/common/error.hpp"
#include "yw/kernels/fingerprint_match.hpp"
#include "yw/worker/fingerprint_index.hpp"
#include "yw/worker/match_batcher.hpp"

namespace yw {
// fingerprint_match.cu under its test name (cuda_host/fingerprint_match_cu.cpp).
std::vector<std::uint64_t> bit_errors_batch_cuda_emulated(const std::uint32_t* query,
                                                          std::size_t query_size,
                                                          const std::vector<ItemsView>& candidates,
                                                          const std::vector<BitErrorTask>& tasks,
                                                          int device);
}  // namespace yw

namespace yw::worker {
namespace {

// Device 0 for the exact cases (the twin keeps nothing per device); faults take fresh numbers.
int fresh_device() {
  static int next = 100;
  return next++;
}

std::vector<ItemsView> views_of(const std::vector<std::span<const std::uint32_t>>& cands) {
  std::vector<ItemsView> views;
  views.reserve(cands.size());
  for (const auto& c : cands)
    views.push_back({c.data(), c.size()});
  return views;
}

// The emulated CUDA twin as the matcher's BitErrorFn, counting the tasks it saw.
BitErrorFn emulated_fn(int device, std::size_t* tasks_seen = nullptr) {
  return [device, tasks_seen](std::span<const std::uint32_t> q,
                              const std::vector<std::span<const std::uint32_t>>& c,
                              std::span<const BitErrorTask> t) {
    check_bit_error_tasks(q.size(), c, t);
    if (tasks_seen) *tasks_seen += t.size();
    return bit_errors_batch_cuda_emulated(q.data(), q.size(), views_of(c),
                                          std::vector<BitErrorTask>(t.begin(), t.end()), device);
  };
}

std::uint64_t test_seed() {
  if (const char* s = std::getenv("YW_TEST_SEED")) return std::strtoull(s, nullptr, 10);
  return std::random_device{}();
}

struct RandomBatch {
  std::vector<std::vector<std::uint32_t>> store;
  std::vector<std::uint32_t> query;
  std::vector<BitErrorTask> tasks;
  std::vector<std::span<const std::uint32_t>> cands() const { return {store.begin(), store.end()}; }
};

// Candidates of varied lengths (some empty), a query, and tasks at random offsets: empty tasks,
// whole-candidate tasks and tasks that end exactly at either array's end included.
RandomBatch random_batch(std::uint64_t seed, int candidates, int tasks) {
  test::SyntheticFingerprints gen(seed);
  std::mt19937_64& rng = gen.rng();
  RandomBatch b;
  for (int i = 0; i < candidates; ++i)
    b.store.push_back(i % 17 == 5 ? std::vector<std::uint32_t>{}
                                  : gen.song(1 + rng() % 1500, 0.1 + 0.05 * (i % 4)));
  b.query = gen.song(1 + rng() % 3000);
  for (int k = 0; k < tasks; ++k) {
    const auto c = static_cast<std::uint32_t>(rng() % b.store.size());
    const auto len = static_cast<std::uint32_t>(b.store[c].size());
    const auto qlen = static_cast<std::uint32_t>(b.query.size());
    const std::uint32_t most = std::min(len, qlen);
    std::uint32_t count = 0;
    switch (k % 4) {
      case 0:
        count = 0;
        break;
      case 1:
        count = most;
        break;
      default:
        count = static_cast<std::uint32_t>(rng() % (most + 1));
    }
    const bool at_end = k % 5 == 0;
    b.tasks.push_back(
        {c, at_end ? len - count : static_cast<std::uint32_t>(rng() % (len - count + 1)),
         at_end ? qlen - count : static_cast<std::uint32_t>(rng() % (qlen - count + 1)), count});
  }
  return b;
}

TEST(MatchCudaHost, RandomCandidateOffsetBatchesEqualTheCpuTwin) {
  const std::uint64_t seed = test_seed();
  std::printf("[ SEED     ] %llu (YW_TEST_SEED=%llu replays it)\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::uint64_t total = 0;
  for (int round = 0; round < 6; ++round) {
    const auto b = random_batch(seed + static_cast<std::uint64_t>(round), 40 + 20 * round,
                                round == 0 ? 1 : 700 * round);
    const auto cands = b.cands();
    const auto want = bit_errors_batch_cpu(b.query, cands, b.tasks);
    const auto got =
        bit_errors_batch_cuda_emulated(b.query.data(), b.query.size(), views_of(cands), b.tasks, 0);
    ASSERT_EQ(got, want) << "seed " << seed << " round " << round;
    for (const auto n : want)
      total += n;
  }
  EXPECT_GT(total, 0u) << "the batches compared something";
  // No tasks: nothing touches the device.
  const std::vector<std::uint32_t> q{1, 2, 3};
  EXPECT_TRUE(bit_errors_batch_cuda_emulated(q.data(), q.size(), {}, {}, 0).empty());
}

// Matching a catalogue: the candidates, alignments and tasks are those the index produces for
// re-encodes, trimmed copies, clips and unrelated queries, in both modes, against a catalogue in
// which every song also has near-duplicates (re-encodes, trimmed copies), so each query rescores
// several candidates; every match (record, score, offset, bit error rate) is the CPU twin's
// exactly.
TEST(MatchCudaHost, CatalogueMatchesEqualTheCpuTwin) {
  test::SyntheticFingerprints gen(31);
  FingerprintIndex index(true);
  constexpr int kSongs = 100, kVariants = 4;
  std::vector<std::vector<std::uint32_t>> songs;
  for (int i = 0; i < kSongs; ++i) {
    songs.push_back(gen.song(600 + static_cast<std::size_t>(i % 7) * 60, 0.25));
    const auto& s = songs.back();
    for (int v = 0; v < kVariants; ++v) {
      auto items = v == 0 ? s : gen.degrade({s.begin() + 8 * (v - 1), s.end()}, 0.02 * v);
      const double duration = kItemSeconds * double(items.size());
      index.upsert("r" + std::to_string(i) + "." + std::to_string(v), std::move(items), duration);
    }
  }
  std::size_t tasks_seen = 0, matches = 0, found = 0, related = 0;
  const BitErrorFn cuda = emulated_fn(0, &tasks_seen);
  for (int q = 0; q < 120; ++q) {
    const auto& s = songs[static_cast<std::size_t>(q % kSongs)];
    std::vector<std::uint32_t> items;
    MatchOptions o;
    o.limit = 20;
    switch (q % 4) {
      case 0:
        items = gen.degrade(s, 0.03 + 0.01 * (q % 5));
        break;  // a re-encode
      case 1:   // head trimmed by up to ~5 s
        items = gen.degrade({s.begin() + q % 40, s.end()}, 0.04);
        break;
      case 2:  // a 20 s clip from the middle
        items = gen.degrade({s.begin() + 200, s.begin() + 362}, 0.03);
        o.mode = MatchMode::both;
        break;
      default:
        items = gen.song(700, 0.25);  // unrelated
    }
    const double duration = kItemSeconds * double(items.size());
    const auto want = index.match(items, duration, o, &bit_errors_batch_cpu);
    const auto got = index.match(items, duration, o, cuda);
    ASSERT_EQ(got.size(), want.size()) << "query " << q;
    for (std::size_t k = 0; k < want.size(); ++k) {
      EXPECT_EQ(got[k].record_id, want[k].record_id) << "query " << q;
      EXPECT_EQ(got[k].score, want[k].score) << "query " << q;
      EXPECT_EQ(got[k].offset_items, want[k].offset_items) << "query " << q;
      EXPECT_EQ(got[k].bit_error_rate, want[k].bit_error_rate) << "query " << q;
      EXPECT_EQ(got[k].mode, want[k].mode) << "query " << q;
    }
    matches += want.size();
    if (q % 4 == 3) continue;
    ++related;
    if (!want.empty() && want[0].record_id.rfind("r" + std::to_string(q % kSongs) + ".", 0) == 0)
      ++found;
  }
  std::printf("[ EMULATED ] %zu rescoring tasks, %zu matches, %zu / %zu related queries found\n",
              tasks_seen, matches, found, related);
  EXPECT_GE(tasks_seen, 3 * related) << "each related query rescores its song's near-duplicates";
  EXPECT_GE(found, related - related / 10) << "the queries exercise real matches";
}

// Every allocation point of a call fails once: the call throws yw::Error naming the twin,
// nothing stays allocated, and the next call on the same device is exact.
TEST(MatchCudaHost, AllocationFailureAtEveryPoint) {
  const auto b = random_batch(7, 30, 500);
  const auto cands = b.cands();
  const auto views = views_of(cands);
  const auto want = bit_errors_batch_cpu(b.query, cands, b.tasks);
  const std::size_t in_use = cuda_host::bytes_in_use();
  const std::size_t before = cuda_host::allocations();
  ASSERT_EQ(bit_errors_batch_cuda_emulated(b.query.data(), b.query.size(), views, b.tasks, 0),
            want);
  const std::size_t points = cuda_host::allocations() - before;
  ASSERT_EQ(points, 4u) << "query, candidates, tasks and counts";
  for (std::size_t k = 0; k < points; ++k) {
    cuda_host::fail_allocation(cuda_host::allocations() + k);
    try {
      bit_errors_batch_cuda_emulated(b.query.data(), b.query.size(), views, b.tasks, 0);
      ADD_FAILURE() << "allocation " << k << " failed and the call returned";
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("fingerprint match on cuda"), std::string::npos) << what;
      EXPECT_NE(what.find("cudaErrorMemoryAllocation"), std::string::npos) << what;
      EXPECT_FALSE(is_sticky_device_error(what)) << "out of memory is recoverable: " << what;
    }
    cuda_host::fail_allocation(std::nullopt);
    EXPECT_EQ(cuda_host::bytes_in_use(), in_use) << "allocation " << k << ": buffers leaked";
    ASSERT_EQ(bit_errors_batch_cuda_emulated(b.query.data(), b.query.size(), views, b.tasks, 0),
              want)
        << "after the failure of allocation " << k;
  }
}

// A fault inside the kernel poisons the device: the twin's error names CUDA's, the match
// batcher marks the device unhealthy and fails the queries back (retryable), and later batches
// fail back without calling the device at all.
TEST(MatchCudaHost, StickyKernelFaultMarksTheDeviceUnhealthy) {
  DeviceHealth::global().reset();
  const auto b = random_batch(11, 20, 200);
  const auto cands = b.cands();
  const int device = fresh_device();
  std::size_t calls = 0;
  const BitErrorFn twin = emulated_fn(device);
  BatchPolicy policy;
  policy.max_batch = 4;
  policy.max_queue_delay = std::chrono::milliseconds(1);
  MatchBatcher batcher(
      [&](std::span<const std::uint32_t> q, const std::vector<std::span<const std::uint32_t>>& c,
          std::span<const BitErrorTask> t) {
        ++calls;
        cuda_host::fail_next_launch(cudaErrorIllegalAddress);  // on the batcher's thread
        return twin(q, c, t);
      },
      policy, SteadyClock::instance(), "cuda:" + std::to_string(device));
  try {
    batcher.count(b.query, cands, b.tasks);
    FAIL() << "the kernel fault was not reported";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("device unhealthy"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cudaErrorIllegalAddress"), std::string::npos) << e.what();
  }
  const auto problem = DeviceHealth::global().problem();
  ASSERT_TRUE(problem.has_value());
  EXPECT_NE(problem->find("cuda:" + std::to_string(device)), std::string::npos) << *problem;
  EXPECT_THROW(batcher.count(b.query, cands, b.tasks), Error);
  EXPECT_EQ(calls, 1u) << "an unhealthy device is not called again";
  DeviceHealth::global().reset();
  cuda_host::reset_device(device);
}

// A recoverable failure (out of memory) fails that batch's queries with the twin's own error and
// leaves the device healthy: the next batch is exact.
TEST(MatchCudaHost, OutOfMemoryInTheBatcherLeavesTheDeviceHealthy) {
  DeviceHealth::global().reset();
  const auto b = random_batch(12, 20, 200);
  const auto cands = b.cands();
  const auto want = bit_errors_batch_cpu(b.query, cands, b.tasks);
  BatchPolicy policy;
  policy.max_batch = 4;
  policy.max_queue_delay = std::chrono::milliseconds(1);
  MatchBatcher batcher(emulated_fn(0), policy, SteadyClock::instance(), "cuda:0");
  cuda_host::fail_allocation(cuda_host::allocations() + 1);
  EXPECT_THROW(batcher.count(b.query, cands, b.tasks), Error);
  cuda_host::fail_allocation(std::nullopt);
  EXPECT_FALSE(DeviceHealth::global().problem().has_value());
  EXPECT_EQ(batcher.count(b.query, cands, b.tasks), want);
}

}  // namespace
}  // namespace yw::worker
