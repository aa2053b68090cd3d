#include "learner/loop_state.h"

#include <gtest/gtest.h>

namespace kd::learner {
namespace {

config::LearnerOptions Options() {
  config::LearnerOptions o;
  o.gate.holdout_every = 4;
  o.gate.holdout_window = 3;
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
    expected_holdout += IsHoldout(seq, 4) ? 1 : 0;
    s.AddLabelled("cam-z", seq, 0.5f);
  }
  const Group& g = s.groups.at("cam-z");
  EXPECT_EQ(g.held_out, expected_holdout);
  EXPECT_EQ(g.labelled, 400 - expected_holdout);
  // About one in four, in no regular pattern, and the same answer every time.
  EXPECT_GT(expected_holdout, 60u);
  EXPECT_LT(expected_holdout, 140u);
  EXPECT_EQ(IsHoldout(12345, 4), IsHoldout(12345, 4));
  // Only the newest `holdout_window` held-out seqs are kept, oldest first.
  const auto& window = g.holdout.at("cam-z");
  ASSERT_EQ(window.size(), 3u);
  EXPECT_LT(window[0], window[1]);
  EXPECT_LT(window[1], window[2]);
  for (uint64_t seq : window) EXPECT_TRUE(IsHoldout(seq, 4));
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
