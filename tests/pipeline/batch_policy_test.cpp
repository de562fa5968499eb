#include "yw/worker/batch_policy.hpp"

#include <gtest/gtest.h>

#include "yw/common/error.hpp"

namespace yw::worker {
namespace {

using std::chrono::milliseconds;

class BatchPolicyTest : public ::testing::Test {
 protected:
  // Items enqueued at the given offsets from t0, oldest first.
  std::vector<Clock::time_point> at(std::initializer_list<int> ms) {
    std::vector<Clock::time_point> out;
    for (const int m : ms)
      out.push_back(t0_ + milliseconds(m));
    return out;
  }
  Clock::time_point t(int ms) const { return t0_ + milliseconds(ms); }

  Clock::time_point t0_ = Clock::time_point{} + std::chrono::hours(1);
  BatchPolicy policy_{8, {}, milliseconds(20)};
};

TEST_F(BatchPolicyTest, NothingPendingIsIdle) {
  EXPECT_EQ(decide({}, policy_, t(0)), BatchDecision::idle());
}

TEST_F(BatchPolicyTest, WaitsForTheOldestItemsDeadline) {
  const auto pending = at({0, 5, 7});
  EXPECT_EQ(decide(pending, policy_, t(8)), BatchDecision::wait_until(t(20)));
  EXPECT_EQ(decide(pending, policy_, t(19)), BatchDecision::wait_until(t(20)));
}

TEST_F(BatchPolicyTest, SendsEverythingAvailableOnceTheDelayIsUp) {
  const auto pending = at({0, 5, 7});
  EXPECT_EQ(decide(pending, policy_, t(20)), BatchDecision::send(3));
  EXPECT_EQ(decide(pending, policy_, t(500)), BatchDecision::send(3));
}

TEST_F(BatchPolicyTest, AFullBatchGoesAtOnce) {
  const auto pending = at({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_EQ(decide(pending, policy_, t(9)), BatchDecision::send(8))
      << "never more than max_batch, never a wait when full";
}

TEST_F(BatchPolicyTest, ThePreferredSizeGoesWithoutWaiting) {
  policy_.preferred = {2, 4};
  EXPECT_EQ(decide(at({0}), policy_, t(1)), BatchDecision::wait_until(t(20)));
  EXPECT_EQ(decide(at({0, 1}), policy_, t(1)), BatchDecision::send(2));
  EXPECT_EQ(decide(at({0, 1, 2}), policy_, t(2)), BatchDecision::send(2))
      << "largest preferred size that can be built, the rest keeps waiting";
  EXPECT_EQ(decide(at({0, 1, 2, 3, 4}), policy_, t(4)), BatchDecision::send(4));
}

TEST_F(BatchPolicyTest, ZeroDelaySendsImmediately) {
  policy_.max_queue_delay = milliseconds(0);
  EXPECT_EQ(decide(at({0}), policy_, t(0)), BatchDecision::send(1));
}

TEST_F(BatchPolicyTest, FlushSendsWithoutWaiting) {
  EXPECT_EQ(decide(at({0, 1}), policy_, t(1), /*flush=*/true), BatchDecision::send(2));
}

TEST_F(BatchPolicyTest, MaxBatchOfOneNeverWaits) {
  policy_.max_batch = 1;
  EXPECT_EQ(decide(at({0, 1}), policy_, t(1)), BatchDecision::send(1));
}

TEST(BatchPolicyValidateTest, RejectsImpossibleSettings) {
  EXPECT_THROW((BatchPolicy{0, {}, std::chrono::microseconds(0)}.validate()), ConfigError);
  EXPECT_THROW((BatchPolicy{4, {8}, std::chrono::microseconds(0)}.validate()), ConfigError);
  EXPECT_THROW((BatchPolicy{4, {0}, std::chrono::microseconds(0)}.validate()), ConfigError);
  EXPECT_NO_THROW((BatchPolicy{4, {2, 4}, std::chrono::microseconds(10)}.validate()));
}

}  // namespace
}  // namespace yw::worker
