#include "learner/round_scheduler.h"

#include <map>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace kd::learner {
namespace {

config::LearnerScheduleOptions Options() {
  config::LearnerScheduleOptions o;
  o.floor_s = 1000;
  o.drift_weight = 4;
  o.drift_threshold = 0.2;
  o.stale_weight = 1;
  o.stale_horizon_s = 100;
  o.backoff_after = 2;
  o.backoff_base_s = 10;
  o.backoff_max_s = 40;
  return o;
}

// Runs `rounds` picks, each round costing `seconds`, and counts the picks per group.
std::map<std::string, int> Simulate(RoundScheduler& s, const std::map<std::string, GroupSignals>& ready, int rounds,
                                    double seconds, double* now) {
  std::map<std::string, int> picks;
  for (int i = 0; i < rounds; ++i) {
    auto g = s.Pick(ready, *now);
    if (!g) {
      *now += 1;
      continue;
    }
    ++picks[*g];
    *now += seconds;
    s.RoundDone(*g, seconds, RoundOutcome::kPublished, *now);
  }
  return picks;
}

TEST(RoundSchedulerTest, WithoutSignalsGroupsShareTrainerTimeEqually) {
  RoundScheduler s(Options());
  double now = 0;
  const auto picks = Simulate(s, {{"a", {}}, {"b", {}}, {"c", {}}}, 30, 5, &now);
  EXPECT_EQ(picks.at("a"), 10);
  EXPECT_EQ(picks.at("b"), 10);
  EXPECT_EQ(picks.at("c"), 10);
}

TEST(RoundSchedulerTest, ADriftingGroupGetsAShareInProportionButTheOthersStillTrain) {
  RoundScheduler s(Options());
  double now = 0;
  // drift 1.0 -> share 1 + 4 = 5 against 1 and 1.
  const auto picks = Simulate(s, {{"drifting", {.drift = 1.0}}, {"b", {}}, {"c", {}}}, 70, 5, &now);
  EXPECT_NEAR(picks.at("drifting"), 50, 2);
  EXPECT_NEAR(picks.at("b"), 10, 2);
  EXPECT_NEAR(picks.at("c"), 10, 2);
  EXPECT_NEAR(s.ledger_seconds("drifting") / s.ledger_seconds("b"), 5.0, 1.0);
}

TEST(RoundSchedulerTest, AStaleDeployedModelRaisesTheShareUpToALimit) {
  RoundScheduler s(Options());
  double now = 0;
  // Age 1000 s over a 100 s horizon: capped at 3 -> share 4 against 1.
  const auto picks = Simulate(s, {{"stale", {.deployed_age_s = 1000}}, {"fresh", {}}}, 50, 5, &now);
  EXPECT_NEAR(picks.at("stale"), 40, 2);
  EXPECT_NEAR(picks.at("fresh"), 10, 2);
}

TEST(RoundSchedulerTest, AGroupWithoutDriftWhoseGateKeepsRejectingBacksOffAndDriftEndsIt) {
  RoundScheduler s(Options());
  double now = 0;
  std::map<std::string, GroupSignals> ready{{"quiet", {}}};
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(s.Pick(ready, now).value_or(""), "quiet");
    s.RoundDone("quiet", 5, RoundOutcome::kRejected, now);
  }
  // Two rejections in a row: 10 s of backoff, then 20, 40, 40 (capped).
  EXPECT_TRUE(s.backing_off("quiet", now));
  EXPECT_FALSE(s.Pick(ready, now + 9).has_value());
  ASSERT_EQ(s.Pick(ready, now + 10).value_or(""), "quiet");
  now += 10;
  s.RoundDone("quiet", 5, RoundOutcome::kRejected, now);
  EXPECT_FALSE(s.Pick(ready, now + 19).has_value());
  EXPECT_TRUE(s.Pick(ready, now + 20).has_value());
  now += 20;
  s.RoundDone("quiet", 5, RoundOutcome::kRejected, now);
  now += 40;
  ASSERT_TRUE(s.Pick(ready, now).has_value());
  s.RoundDone("quiet", 5, RoundOutcome::kRejected, now);
  EXPECT_FALSE(s.Pick(ready, now + 39).has_value());
  // Drift above the threshold: trains again at once.
  ready["quiet"].drift = 0.5;
  EXPECT_EQ(s.Pick(ready, now + 1).value_or(""), "quiet");
  // A published version also ends the backoff.
  ready["quiet"].drift = 0;
  s.RoundDone("quiet", 5, RoundOutcome::kPublished, now + 2);
  EXPECT_FALSE(s.backing_off("quiet", now + 2));
}

TEST(RoundSchedulerTest, RoundsTheGateCouldNotJudgeNeitherBackOffNorEndABackoff) {
  RoundScheduler s(Options());
  double now = 0;
  std::map<std::string, GroupSignals> ready{{"new", {}}};
  // A new group's first rounds wait for held-out labels: however many, they are no rejections.
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(s.Pick(ready, now).value_or(""), "new") << "round " << i;
    now += 5;
    s.RoundDone("new", 5, RoundOutcome::kUndecided, now);
    EXPECT_FALSE(s.backing_off("new", now)) << "round " << i;
  }
  EXPECT_DOUBLE_EQ(s.ledger_seconds("new"), 25);  // their trainer time still counts in the fair share
  // One rejection, an undecided round, a second rejection: two in a row, so the backoff starts.
  s.RoundDone("new", 5, RoundOutcome::kRejected, now);
  s.RoundDone("new", 5, RoundOutcome::kUndecided, now);
  EXPECT_FALSE(s.backing_off("new", now));
  s.RoundDone("new", 5, RoundOutcome::kRejected, now);
  EXPECT_TRUE(s.backing_off("new", now));
  // An undecided round does not end it either.
  s.RoundDone("new", 5, RoundOutcome::kUndecided, now + 1);
  EXPECT_TRUE(s.backing_off("new", now + 1));
}

TEST(RoundSchedulerTest, TheFloorServesAGroupThatWaitedTooLongWhateverItsLedger) {
  auto o = Options();
  o.floor_s = 30;
  RoundScheduler s(o);
  double now = 0;
  // "hot" drifts hard (share 401) and would take every round; "cold" must still train every 30 s.
  std::map<std::string, GroupSignals> ready{{"hot", {.drift = 100}}, {"cold", {}}};
  const auto picks = Simulate(s, ready, 60, 5, &now);  // 300 s of rounds
  EXPECT_GE(picks.at("cold"), 300 / 35 - 1);
  EXPECT_GT(picks.at("hot"), picks.at("cold"));
  auto status = nlohmann::json::parse(s.StatusJson(now));
  EXPECT_TRUE(status.contains("cold"));
  EXPECT_NE(status["cold"]["last_pick"].get<std::string>().find("floor"), std::string::npos) << status.dump();
}

TEST(RoundSchedulerTest, ANewGroupStartsAtTheSmallestLedgerInsteadOfTakingEveryRound) {
  RoundScheduler s(Options());
  double now = 0;
  (void)Simulate(s, {{"a", {}}, {"b", {}}}, 20, 5, &now);
  const auto picks = Simulate(s, {{"a", {}}, {"b", {}}, {"late", {}}}, 30, 5, &now);
  EXPECT_NEAR(picks.at("late"), 10, 1);
  EXPECT_NEAR(picks.at("a"), 10, 1);
}

}  // namespace
}  // namespace kd::learner
