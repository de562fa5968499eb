#include "yw/worker/shutdown.hpp"

#include <gtest/gtest.h>

namespace yw::worker {
namespace {

using std::chrono::seconds;

class ShutdownTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  ShutdownController ctl_{clock_, seconds(10)};
};

TEST_F(ShutdownTest, RunsUntilASignal) {
  EXPECT_EQ(ctl_.update(3), ShutdownPhase::running);
  EXPECT_TRUE(ctl_.fetching_allowed());
  clock_.advance(seconds(3600));
  EXPECT_EQ(ctl_.update(3), ShutdownPhase::running);
}

TEST_F(ShutdownTest, FirstSignalStopsFetchingAndWaitsForRunningJobs) {
  ctl_.request_stop("SIGTERM");
  EXPECT_FALSE(ctl_.fetching_allowed());
  EXPECT_EQ(ctl_.deadline(), clock_.now() + seconds(10));
  clock_.advance(seconds(9));
  EXPECT_EQ(ctl_.update(2), ShutdownPhase::draining) << "jobs still have a second left";
  EXPECT_EQ(ctl_.update(0), ShutdownPhase::stopped) << "all jobs finished in time";
}

TEST_F(ShutdownTest, NoJobsRunningStopsAtOnce) {
  ctl_.request_stop("SIGINT");
  EXPECT_EQ(ctl_.update(0), ShutdownPhase::stopped);
}

TEST_F(ShutdownTest, DeadlineFailsBackJobsStillRunning) {
  ctl_.request_stop("SIGTERM");
  clock_.advance(seconds(10));
  EXPECT_EQ(ctl_.update(1), ShutdownPhase::failing_back);
  EXPECT_FALSE(ctl_.fetching_allowed());
  ctl_.failed_back();
  EXPECT_EQ(ctl_.phase(), ShutdownPhase::stopped);
}

TEST_F(ShutdownTest, SecondSignalSkipsTheWait) {
  ctl_.request_stop("SIGTERM");
  clock_.advance(seconds(1));
  ctl_.request_stop("SIGTERM");
  EXPECT_EQ(ctl_.update(4), ShutdownPhase::failing_back);
  EXPECT_EQ(ctl_.signals_received(), 2);
}

TEST_F(ShutdownTest, JobsFinishingWhileFailingBackAlsoStop) {
  ctl_.request_stop("SIGTERM");
  clock_.advance(seconds(11));
  EXPECT_EQ(ctl_.update(1), ShutdownPhase::failing_back);
  EXPECT_EQ(ctl_.update(0), ShutdownPhase::stopped);
}

TEST_F(ShutdownTest, SignalsAfterStopChangeNothing) {
  ctl_.request_stop("SIGTERM");
  EXPECT_EQ(ctl_.update(0), ShutdownPhase::stopped);
  ctl_.request_stop("SIGTERM");
  EXPECT_EQ(ctl_.update(5), ShutdownPhase::stopped);
}

TEST(ShutdownZeroTimeoutTest, ZeroTimeoutFailsBackImmediately) {
  ManualClock clock;
  ShutdownController ctl(clock, seconds(0));
  ctl.request_stop("SIGTERM");
  EXPECT_EQ(ctl.update(1), ShutdownPhase::failing_back);
}

}  // namespace
}  // namespace yw::worker
