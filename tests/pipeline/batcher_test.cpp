#include "yw/worker/batcher.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <numeric>

namespace yw::worker {
namespace {

using std::chrono::milliseconds;

// Batches as the runner saw them.
struct Recorder {
  std::vector<std::vector<int>> batches;
  void operator()(std::vector<std::unique_ptr<int>>&& batch) {
    std::vector<int> values;
    for (auto& p : batch)
      values.push_back(*p);
    batches.push_back(values);
  }
};

TEST(BatcherTest, GroupsItemsAndKeepsTheirOrder) {
  ManualClock clock;
  Recorder rec;
  Batcher<std::unique_ptr<int>> b(
      {4, {}, milliseconds(10)}, [&](auto&& batch) { rec(std::move(batch)); }, 64, clock,
      /*start_thread=*/false);
  for (int i = 0; i < 6; ++i) {
    auto item = std::make_unique<int>(i);
    ASSERT_TRUE(b.enqueue(item));
    EXPECT_EQ(item, nullptr) << "the batcher owns what it accepted";
  }
  EXPECT_TRUE(b.pump()) << "four are a full batch";
  EXPECT_FALSE(b.pump()) << "two wait for the delay";
  clock.advance(milliseconds(10));
  EXPECT_TRUE(b.pump());
  ASSERT_EQ(rec.batches.size(), 2u);
  EXPECT_EQ(rec.batches[0], (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(rec.batches[1], (std::vector<int>{4, 5}));
  const auto s = b.stats();
  EXPECT_EQ(s.batches, 2u);
  EXPECT_EQ(s.items, 6u);
  EXPECT_EQ(s.largest_batch, 4u);
}

TEST(BatcherTest, StopFlushesWhatIsPendingAndRefusesMore) {
  ManualClock clock;
  Recorder rec;
  Batcher<std::unique_ptr<int>> b(
      {8, {}, milliseconds(1000)}, [&](auto&& batch) { rec(std::move(batch)); }, 64, clock, false);
  for (int i = 0; i < 3; ++i) {
    auto item = std::make_unique<int>(i);
    b.enqueue(item);
  }
  b.stop();
  ASSERT_EQ(rec.batches.size(), 1u);
  EXPECT_EQ(rec.batches[0].size(), 3u);
  auto late = std::make_unique<int>(99);
  EXPECT_FALSE(b.enqueue(late));
  EXPECT_NE(late, nullptr) << "a refused item stays with the caller";
}

TEST(BatcherTest, ThreadedBatcherRunsEveryItemExactlyOnce) {
  std::atomic<int> sum{0}, count{0}, batches{0};
  {
    Batcher<int> b(
        {16, {}, milliseconds(2)},
        [&](std::vector<int>&& batch) {
          ++batches;
          for (int v : batch) {
            sum += v;
            ++count;
          }
        },
        /*capacity=*/32, SteadyClock::instance());
    for (int i = 1; i <= 1000; ++i) {
      int v = i;
      ASSERT_TRUE(b.enqueue(v));
    }
    b.stop();
  }
  EXPECT_EQ(count.load(), 1000);
  EXPECT_EQ(sum.load(), 1000 * 1001 / 2);
  EXPECT_LT(batches.load(), 1000) << "items were grouped";
}

TEST(BatcherTest, EnqueueBlocksAtCapacity) {
  std::atomic<bool> release{false};
  std::atomic<int> ran{0};
  Batcher<int> b(
      {1, {}, milliseconds(0)},
      [&](std::vector<int>&& batch) {
        while (!release.load())
          std::this_thread::yield();
        ran += static_cast<int>(batch.size());
      },
      /*capacity=*/2, SteadyClock::instance());
  int v = 0;
  b.enqueue(v);  // taken by the runner, which blocks
  while (b.pending() != 0)
    std::this_thread::yield();
  b.enqueue(v);
  b.enqueue(v);  // capacity reached
  std::atomic<bool> fourth_in{false};
  std::thread producer([&] {
    int w = 0;
    b.enqueue(w);
    fourth_in = true;
  });
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(fourth_in.load()) << "the producer is held back while the batcher is full";
  release = true;
  producer.join();
  b.stop();
  EXPECT_EQ(ran.load(), 4);
}

}  // namespace
}  // namespace yw::worker
