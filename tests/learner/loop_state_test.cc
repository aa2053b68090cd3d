#include "learner/loop_state.h"

#include <algorithm>
#include <limits>
#include <map>
#include <mutex>
#include <set>

#include <gtest/gtest.h>

namespace kd::learner {
namespace {

config::LearnerOptions Options() {
  config::LearnerOptions o;
  o.gate.holdout_every = 4;
  o.gate.holdout_window = 3;
  o.gate.holdout_span_ms = 0;  // these tests' seqs are counters: split per frame
  o.groups.push_back({"lobby", {"cam-a", "cam-b"}});
  return o;
}

TEST(LoopStateTest, DevicesJoinTheirConfiguredGroupOrOneOfTheirOwn) {
  LoopState s(Options());
  EXPECT_EQ(s.GroupNameOf("cam-a"), "lobby");
  EXPECT_EQ(s.GroupNameOf("cam-z"), "cam-z");
  std::lock_guard lock(s.mu);
  s.GroupFor("cam-a");
  s.GroupFor("cam-b");
  s.GroupFor("cam-z");
  ASSERT_EQ(s.groups.size(), 2u);
  EXPECT_EQ(s.groups.at("lobby").devices, (std::set<std::string>{"cam-a", "cam-b"}));
  EXPECT_EQ(s.Device("cam-b").group, "lobby");
  EXPECT_EQ(s.groups.at("lobby").rollout.stage(), RolloutStage::kIdle);
}

TEST(LoopStateTest, TheHoldoutSplitDependsOnlyOnTheSeqAndTheWindowIsBounded) {
  LoopState s(Options());
  size_t expected_holdout = 0;
  std::lock_guard lock(s.mu);
  for (uint64_t seq = 1; seq <= 400; ++seq) {
    expected_holdout += IsHoldout(seq, 4, 0) ? 1 : 0;
    s.AddLabelled("cam-z", seq, 0.5f);
  }
  const Group& g = s.groups.at("cam-z");
  EXPECT_EQ(g.held_out, expected_holdout);
  EXPECT_EQ(g.labelled, 400 - expected_holdout);
  // About one in four, in no regular pattern, and the same answer every time.
  EXPECT_GT(expected_holdout, 60u);
  EXPECT_LT(expected_holdout, 140u);
  EXPECT_EQ(IsHoldout(12345, 4, 0), IsHoldout(12345, 4, 0));
  // Only the newest `holdout_window` held-out seqs are kept, oldest first.
  const auto& window = g.holdout.at("cam-z");
  ASSERT_EQ(window.size(), 3u);
  EXPECT_LT(window[0], window[1]);
  EXPECT_LT(window[1], window[2]);
  for (uint64_t seq : window) EXPECT_TRUE(IsHoldout(seq, 4, 0));
}

TEST(LoopStateTest, EachBlockOfEverySpansHoldsOutExactlyOneAtAPositionThatVaries) {
  // Edge seqs (wall-clock microseconds) over 4,000 spans of 10 s from 2026-12-01, every = 8.
  const uint64_t span_us = 10'000'000, first = 1'796'083'200'000'000 / span_us;
  std::set<uint64_t> positions;
  uint64_t last_held = 0, longest_gap = 0, held = 0;
  for (uint64_t unit = first / 8 * 8; unit < first + 4000; unit += 8) {
    int in_block = 0;
    for (uint64_t k = 0; k < 8; ++k) {
      // Any seq inside the span decides the same way.
      const bool h = IsHoldout((unit + k) * span_us + 1234, 8, span_us);
      EXPECT_EQ(h, IsHoldout((unit + k) * span_us + span_us - 1, 8, span_us));
      if (!h) continue;
      ++in_block, ++held;
      positions.insert(k);
      if (last_held != 0) longest_gap = std::max(longest_gap, unit + k - last_held);
      last_held = unit + k;
    }
    EXPECT_EQ(in_block, 1) << "block of span " << unit;
  }
  EXPECT_GE(held, 500u);
  EXPECT_LT(longest_gap, 16u);      // never two blocks without a held-out span
  EXPECT_EQ(positions.size(), 8u);  // not one fixed phase that a looping scene could alias with
}

TEST(LoopStateTest, FramesOfOneSpanOfSeqsShareTheSplitSoABurstIsNeverSplit) {
  config::LearnerOptions o = Options();
  o.gate.holdout_span_ms = 10000;
  o.gate.holdout_window = 1000;
  LoopState s(o);
  std::lock_guard lock(s.mu);
  // An edge's seqs are wall-clock microseconds: 60 bursts of 7 frames 100 ms apart, one burst
  // every 3.5 s (its max_fps = 2), from 2026-12-01 on.
  const uint64_t start_us = 1'796'083'200'000'000;
  std::map<uint64_t, std::set<bool>> sides_of_span;  // seq / 10 s -> the sides its frames went to
  size_t held = 0, frames = 0;
  for (uint64_t burst = 0; burst < 60; ++burst) {
    std::set<bool> sides;
    for (uint64_t k = 0; k < 7; ++k) {
      const uint64_t seq = start_us + burst * 3'500'000 + k * 100'000;
      const bool h = IsHoldout(seq, 4, 10'000'000);
      sides_of_span[seq / 10'000'000].insert(h);
      if (seq / 10'000'000 == (start_us + burst * 3'500'000) / 10'000'000) sides.insert(h);
      held += h, ++frames;
      s.AddLabelled("cam-s", seq, 0.5f);
    }
    EXPECT_EQ(sides.size(), 1u) << "burst " << burst << " (the part inside its first span)";
  }
  for (const auto& [span, sides] : sides_of_span) EXPECT_EQ(sides.size(), 1u) << "span " << span;
  const Group& g = s.groups.at("cam-s");
  EXPECT_EQ(g.held_out, held);
  EXPECT_EQ(g.labelled, frames - held);
  // 22 spans of 10 s, about one in four held out: some, not all.
  EXPECT_GT(held, 0u);
  EXPECT_LT(held, frames / 2);
  // Per frame (span 0), the same seqs split within bursts.
  size_t bursts_split_per_frame = 0;
  for (uint64_t burst = 0; burst < 60; ++burst) {
    std::set<bool> sides;
    for (uint64_t k = 0; k < 7; ++k) sides.insert(IsHoldout(start_us + burst * 3'500'000 + k * 100'000, 4, 0));
    bursts_split_per_frame += sides.size() == 2;
  }
  EXPECT_GT(bursts_split_per_frame, 30u);
}

TEST(LoopStateTest, DriftIsTheRiseOfRecentDisagreementOverItsLongRunLevel) {
  LoopState s(Options());
  std::lock_guard lock(s.mu);
  for (uint64_t seq = 1; seq <= 400; ++seq) s.AddLabelled("cam-c", seq, 0.5f);
  EXPECT_NEAR(s.groups.at("cam-c").Drift(), 0.0, 1e-9);  // steady: no drift
  // The scene changes: the deployed student disagrees twice as much on fresh frames.
  for (uint64_t seq = 401; seq <= 440; ++seq) s.AddLabelled("cam-c", seq, 1.0f);
  const double drift = s.groups.at("cam-c").Drift();
  EXPECT_GT(drift, 0.4);  // fast ~0.99 over slow ~0.67 after 40 frames
  EXPECT_LT(drift, 1.0);  // the slow average has started to follow
  // A better model deployed: disagreement falls below the long-run level, which is no drift.
  for (uint64_t seq = 441; seq <= 480; ++seq) s.AddLabelled("cam-c", seq, 0.1f);
  EXPECT_EQ(s.groups.at("cam-c").Drift(), 0.0);
  // Non-finite difficulties are ignored.
  s.AddLabelled("cam-d", 1, std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(s.groups.at("cam-d").Drift(), 0.0);
}

TEST(LoopStateTest, ARoundNeedsMinFramesThenMinNewFramesSinceTheLastRoundBegan) {
  LoopState s(Options());
  std::lock_guard lock(s.mu);
  Group& g = s.GroupFor("cam-n");
  uint64_t seq = 0;
  auto label_replay_frames = [&](uint64_t n) {  // n frames that join the replay set (not held out)
    for (uint64_t added = 0; added < n;) {
      if (!IsHoldout(++seq, 4, 0)) ++added;
      s.AddLabelled("cam-n", seq, 0.5f);
    }
  };
  label_replay_frames(9);
  EXPECT_FALSE(g.HasLabelsForARound(10, 4));  // fewer than min_frames
  label_replay_frames(1);
  EXPECT_TRUE(g.HasLabelsForARound(10, 4));  // the first round needs min_frames only
  g.labelled_at_last_round = g.labelled;     // a round begins (TrainStage::Prepare)
  EXPECT_FALSE(g.HasLabelsForARound(10, 4));
  label_replay_frames(3);
  EXPECT_FALSE(g.HasLabelsForARound(10, 4));
  label_replay_frames(1);
  EXPECT_TRUE(g.HasLabelsForARound(10, 4));
  g.labelled_at_last_round = g.labelled;
  EXPECT_TRUE(g.HasLabelsForARound(10, 0));  // min_new_frames = 0: rounds back to back
}

TEST(LoopStateTest, ARepliesAddressesTheRequest) {
  wire::Header h;
  h.device_id = "cam-a";
  h.seq = 42;
  const auto r = ReplyTo(h, wire::MsgType::kAck, 777);
  EXPECT_EQ(r.header.type, wire::MsgType::kAck);
  EXPECT_EQ(r.header.device_id, "cam-a");
  EXPECT_EQ(r.header.seq, 42u);
  EXPECT_EQ(r.header.send_time_us, 777);
}

}  // namespace
}  // namespace kd::learner
