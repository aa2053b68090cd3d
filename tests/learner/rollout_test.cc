#include "learner/rollout.h"

#include <gtest/gtest.h>

namespace kd::learner {
namespace {

constexpr int64_t kSecond = 1000000;

TEST(RolloutTest, CanaryFirstThenEveryoneAfterProbation) {
  Rollout r({"", 10, 1});
  EXPECT_EQ(r.Desired("a"), 0u);  // idle: no opinion
  r.Start(3, 2, 0);
  r.NoteDevice("b", 0);  // the first to report becomes the canary
  r.NoteDevice("a", 0);
  EXPECT_EQ(r.canary(), "b");
  EXPECT_EQ(r.Desired("b"), 3u);
  EXPECT_EQ(r.Desired("a"), 2u);
  r.OnReport("b", 3, DeviceOutcome::kCommitted, 1 * kSecond);
  EXPECT_EQ(r.stage(), RolloutStage::kCanary);  // probation not over
  r.Tick(5 * kSecond);
  EXPECT_EQ(r.Desired("a"), 2u);
  r.Tick(11 * kSecond);
  EXPECT_EQ(r.stage(), RolloutStage::kAll);
  EXPECT_EQ(r.Desired("a"), 3u);
}

TEST(RolloutTest, ConfiguredCanaryAndReportsForOtherVersionsIgnored) {
  Rollout r({"cam-9", 0, 1});
  r.Start(5, 4, 0);
  r.NoteDevice("cam-1", 0);
  EXPECT_EQ(r.canary(), "cam-9");
  r.OnReport("cam-9", 4, DeviceOutcome::kRolledBack, 0);  // an old version's report
  EXPECT_EQ(r.stage(), RolloutStage::kCanary);
  r.OnReport("cam-9", 5, DeviceOutcome::kCommitted, 0);
  EXPECT_EQ(r.stage(), RolloutStage::kAll);
}

TEST(RolloutTest, FailuresHaltAtTheThreshold) {
  Rollout r({"", 0, 2});
  r.Start(7, 6, 0);
  r.NoteDevice("a", 0);
  r.OnReport("a", 7, DeviceOutcome::kCommitted, 0);
  EXPECT_EQ(r.stage(), RolloutStage::kAll);
  r.OnReport("b", 7, DeviceOutcome::kRolledBack, 0);
  EXPECT_EQ(r.stage(), RolloutStage::kAll);
  r.OnReport("c", 7, DeviceOutcome::kRejected, 0);
  EXPECT_EQ(r.stage(), RolloutStage::kHalted);
  EXPECT_EQ(r.failures(), 2);
  EXPECT_EQ(r.Desired("b"), 6u);  // the learner then publishes a revert as a new version
}

TEST(RolloutTest, ARevertGoesToEveryoneAtOnce) {
  Rollout r({"", 10, 1});
  r.Start(8, 7, 0, /*canary_first=*/false);
  EXPECT_EQ(r.stage(), RolloutStage::kAll);
  EXPECT_EQ(r.Desired("anyone"), 8u);
}

// What a halt falls back to is the last known-good version: never one that failed, nor one that
// no device has committed yet (found end to end: v2 failed and halted, v3 replaced the halt with
// v2 as its fallback, and v3's failure sent the devices back to the failed v2).
TEST(RolloutTest, TheFallbackIsTheLastVersionADeviceCommittedWithoutAHalt) {
  Rollout r({"", 0, 1});
  r.Start(2, 1, 0);
  EXPECT_EQ(r.previous(), 1u);
  r.NoteDevice("a", 0);
  r.OnReport("a", 2, DeviceOutcome::kRolledBack, 0);
  ASSERT_EQ(r.stage(), RolloutStage::kHalted);
  EXPECT_EQ(r.Desired("a"), 1u);
  r.Start(3, 2, 0);  // the next version, while v2 failed: the fallback stays v1
  EXPECT_EQ(r.previous(), 1u);
  r.Start(4, 3, 0);  // v3 not committed by anyone yet: still v1
  EXPECT_EQ(r.previous(), 1u);
  r.OnReport("a", 4, DeviceOutcome::kCommitted, 0);
  r.Start(5, 4, 0);  // v4 was committed and not halted: proven
  EXPECT_EQ(r.previous(), 4u);
  r.OnReport("a", 5, DeviceOutcome::kRejected, 0);
  EXPECT_EQ(r.stage(), RolloutStage::kHalted);
  EXPECT_EQ(r.Desired("a"), 4u);
}

TEST(RolloutTest, JsonRoundTripAndCorruption) {
  Rollout r({"", 10, 1});
  r.Start(3, 2, 0);
  r.NoteDevice("x", 0);
  r.OnReport("x", 3, DeviceOutcome::kCommitted, 42);
  auto back = Rollout::FromJson(r.ToJson(), {"", 10, 1});
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->ToJson(), r.ToJson());
  EXPECT_TRUE(Rollout::FromJson("{", {}).status().IsCorruption());
  EXPECT_TRUE(Rollout::FromJson(R"({"stage":"weird"})", {}).status().IsCorruption());
}

}  // namespace
}  // namespace kd::learner
