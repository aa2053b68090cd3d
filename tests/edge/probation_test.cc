#include "edge/probation.h"

#include <gtest/gtest.h>

#include "base/clock.h"
#include "edge/edge_stats.h"

namespace kd::edge {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

ProbationOptions Options() {
  ProbationOptions o;
  o.frames = 5;
  o.seconds = 2;
  o.max_latency_ratio = 2;
  return o;
}

TEST(ProbationTest, CommitsAfterEnoughGoodFramesAndTime) {
  FakeClock clock;
  Probation p(Options(), clock);
  p.Start();
  for (int i = 0; i < 4; ++i) p.OnTrialFrame(10, true);
  clock.AdvanceNanos(3 * kSecond);
  EXPECT_EQ(p.Decide().verdict, Probation::Verdict::kWait);  // 4 < 5 frames
  p.OnTrialFrame(10, true);
  const auto d = p.Decide();
  EXPECT_EQ(d.verdict, Probation::Verdict::kCommit);
  EXPECT_EQ(d.frames, 5u);
}

TEST(ProbationTest, WaitsForTheMinimumTimeEvenWithEnoughFrames) {
  FakeClock clock;
  Probation p(Options(), clock);
  p.Start();
  for (int i = 0; i < 50; ++i) p.OnTrialFrame(10, true);
  clock.AdvanceNanos(kSecond);
  EXPECT_EQ(p.Decide().verdict, Probation::Verdict::kWait);  // 1 s < 2 s
  clock.AdvanceNanos(kSecond);
  EXPECT_EQ(p.Decide().verdict, Probation::Verdict::kCommit);
}

TEST(ProbationTest, RollsBackOnANonFiniteFrame) {
  FakeClock clock;
  Probation p(Options(), clock);
  p.Start();
  p.OnTrialFrame(10, true);
  p.OnTrialFrame(10, false);
  const auto d = p.Decide();
  EXPECT_EQ(d.verdict, Probation::Verdict::kRollBack);
  EXPECT_EQ(d.reason, "1 frames with non-finite outputs");
}

TEST(ProbationTest, RollsBackOnARunTimeErrorNamingTheFirstOne) {
  FakeClock clock;
  Probation p(Options(), clock);
  p.Start();
  p.OnTrialError("Internal: first");
  p.OnTrialError("Internal: second");
  const auto d = p.Decide();
  EXPECT_EQ(d.verdict, Probation::Verdict::kRollBack);
  EXPECT_EQ(d.reason, "2 frames failed to run (Internal: first)");
}

TEST(ProbationTest, RollsBackWhenSlowerThanTheBaselineAfterTenFrames) {
  FakeClock clock;
  Probation p(Options(), clock);
  for (int i = 0; i < 20; ++i) p.OnCommittedFrame(10);  // baseline 10 ms
  p.Start();
  for (uint64_t i = 0; i + 1 < Probation::kLatencyMinFrames; ++i) p.OnTrialFrame(30, true);
  EXPECT_EQ(p.Decide().verdict, Probation::Verdict::kWait);  // 9 frames: no latency verdict yet
  p.OnTrialFrame(30, true);                                  // mean 30 > 2 x 10 + 1
  const auto d = p.Decide();
  EXPECT_EQ(d.verdict, Probation::Verdict::kRollBack);
  EXPECT_NE(d.reason.find("inference 30"), std::string::npos) << d.reason;
}

TEST(ProbationTest, LatencyWithinRatioPlusSlackPasses) {
  FakeClock clock;
  Probation p(Options(), clock);
  p.OnCommittedFrame(10);
  p.Start();
  for (int i = 0; i < 10; ++i) p.OnTrialFrame(21, true);  // 21 <= 2 x 10 + 1
  clock.AdvanceNanos(2 * kSecond);
  EXPECT_EQ(p.Decide().verdict, Probation::Verdict::kCommit);
}

TEST(ProbationTest, StartResetsTheTrialCounters) {
  FakeClock clock;
  Probation p(Options(), clock);
  p.Start();
  p.OnTrialFrame(10, false);
  ASSERT_EQ(p.Decide().verdict, Probation::Verdict::kRollBack);
  clock.AdvanceNanos(10 * kSecond);
  p.Start();  // a new trial: the old failure and the elapsed time do not count
  for (int i = 0; i < 5; ++i) p.OnTrialFrame(10, true);
  EXPECT_EQ(p.Decide().verdict, Probation::Verdict::kWait);
  clock.AdvanceNanos(2 * kSecond);
  EXPECT_EQ(p.Decide().verdict, Probation::Verdict::kCommit);
}

TEST(RateMeterTest, FramesPerSecondAndMeanOverTheInterval) {
  FakeClock clock;
  RateMeter meter(clock);
  meter.Add(10);
  meter.Add(20);
  clock.AdvanceNanos(kSecond / 2);
  const auto r = meter.Take();
  EXPECT_DOUBLE_EQ(r.fps, 4.0);
  EXPECT_DOUBLE_EQ(r.mean_ms, 15.0);
  clock.AdvanceNanos(kSecond);
  const auto empty = meter.Take();  // a new interval
  EXPECT_DOUBLE_EQ(empty.fps, 0.0);
  EXPECT_DOUBLE_EQ(empty.mean_ms, 0.0);
}

TEST(EdgeStatsTest, InferredFramesFeedTheIntervalAndTheLongestGap) {
  FakeClock clock;
  EdgeStats stats(clock);
  stats.OnInferred(5, 1);
  clock.AdvanceNanos(kSecond / 4);
  EXPECT_EQ(stats.OnInferred(7, 2), 2u);
  clock.AdvanceNanos(kSecond / 4);
  const EdgeCounters c = stats.CloseInterval();
  EXPECT_EQ(c.frames_inferred, 2u);
  EXPECT_EQ(c.running_version, 2u);
  EXPECT_DOUBLE_EQ(c.fps, 4.0);
  EXPECT_DOUBLE_EQ(c.mean_inference_ms, 6.0);
  EXPECT_DOUBLE_EQ(c.max_frame_gap_ms, 250.0);
  EXPECT_DOUBLE_EQ(c.inference_ms_total, 12.0);
}

}  // namespace
}  // namespace kd::edge
