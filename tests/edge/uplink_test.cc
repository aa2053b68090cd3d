#include "edge/uplink.h"

#include <algorithm>
#include <memory>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "edge/running_model.h"
#include "tests/edge/fake_link.h"

namespace kd::edge {
namespace {

using testing::FakeLink;
constexpr int64_t kMs = 1'000'000;  // ns

TEST(BackoffTest, DoublesUpToTheCapAndResets) {
  Backoff b(/*max_ms=*/500);
  EXPECT_EQ(b.Next(), 100);
  EXPECT_EQ(b.Next(), 200);
  EXPECT_EQ(b.Next(), 400);
  EXPECT_EQ(b.Next(), 500);
  EXPECT_EQ(b.Next(), 500);
  b.Reset();
  EXPECT_EQ(b.Next(), 100);
}

PendingFrame Frame(uint64_t seq) {
  PendingFrame p;
  p.seq = seq;
  p.capture_time_us = 1000 + static_cast<int64_t>(seq);
  p.width = 4, p.height = 2;
  p.jpeg = {0xFF, 0xD8, static_cast<uint8_t>(seq)};
  return p;
}

std::vector<uint64_t> FrameSeqs(const std::vector<wire::Message>& sent) {
  std::vector<uint64_t> seqs;
  for (const auto& m : sent) {
    if (m.header.type == wire::MsgType::kFrame) seqs.push_back(m.header.seq);
  }
  return seqs;
}

class UplinkTest : public ::testing::Test {
 protected:
  UplinkTest() {
    auto m = std::make_shared<RunningModel>();
    m->version = 7;
    models_ = std::make_unique<ModelHolder>(m, m);
    learner_.heartbeat_ms = 2000;
    learner_.timeout_ms = 6000;
    learner_.reconnect_max_ms = 1000;
    uplink_opt_.buffer_frames = 8;
    uplink_opt_.resend_after_ms = 3000;
    uplink_ = std::make_unique<Uplink>("cam1", uplink_opt_, learner_, link_, queue_, *models_, stats_, clock_);
  }
  void Credit(uint32_t n) {
    link_.Reply(wire::MsgType::kCredit, [&](wire::Header& h) { h.credits = n; });
  }

  FakeClock clock_{10'000 * kMs};  // 10 s: hello is due at once
  EdgeStats stats_{clock_};
  config::EdgeLearnerOptions learner_;
  config::EdgeUplinkOptions uplink_opt_;
  FakeLink link_;
  BoundedQueue<PendingFrame> queue_{64};
  std::unique_ptr<ModelHolder> models_;
  std::unique_ptr<Uplink> uplink_;
};

TEST_F(UplinkTest, HelloFirstAndNoFramesWithoutCredit) {
  queue_.Push(Frame(1), false);
  ASSERT_TRUE(uplink_->Step());
  ASSERT_EQ(link_.SentOfType(wire::MsgType::kHello).size(), 1u);
  EXPECT_EQ(link_.sent[0].header.device_id, "cam1");
  EXPECT_EQ(link_.sent[0].header.model_version, 7u);
  EXPECT_TRUE(FrameSeqs(link_.sent).empty());
  EXPECT_EQ(uplink_->waiting(), 1u);
}

TEST_F(UplinkTest, SendsWithinTheCreditWindowAndCountsAcks) {
  for (uint64_t s = 1; s <= 3; ++s) queue_.Push(Frame(s), false);
  Credit(2);
  uplink_->Step();  // hello; the credit arrives
  uplink_->Step();  // two frames go
  EXPECT_EQ(FrameSeqs(link_.sent), (std::vector<uint64_t>{1, 2}));
  const auto frame = link_.SentOfType(wire::MsgType::kFrame)[0];
  EXPECT_EQ(frame.header.capture_time_us, 1001);
  EXPECT_EQ(frame.payload.size(), 3u);
  link_.Reply(wire::MsgType::kAck, [](wire::Header& h) { h.ack_seq = 1, h.credits = 2; });
  uplink_->Step();  // the ack
  uplink_->Step();  // room for one more
  EXPECT_EQ(FrameSeqs(link_.sent), (std::vector<uint64_t>{1, 2, 3}));
  const EdgeCounters c = stats_.Snapshot();
  EXPECT_EQ(c.frames_sent, 3u);
  EXPECT_EQ(c.frames_acked, 1u);
  EXPECT_EQ(c.frames_resent, 0u);
  EXPECT_EQ(c.uplink_bytes, 9u);
  EXPECT_EQ(stats_.AckedSeqs(), std::vector<uint64_t>{1});
  EXPECT_EQ(uplink_->waiting(), 2u);
}

TEST_F(UplinkTest, ResendsUnackedFramesAfterAReconnect) {
  for (uint64_t s = 1; s <= 3; ++s) queue_.Push(Frame(s), false);
  Credit(16);
  uplink_->Step();
  uplink_->Step();
  link_.Reply(wire::MsgType::kAck, [](wire::Header& h) { h.ack_seq = 1, h.credits = 16; });
  uplink_->Step();
  ASSERT_EQ(FrameSeqs(link_.sent), (std::vector<uint64_t>{1, 2, 3}));
  // The learner goes silent past timeout_ms: reconnect, and credits are gone until it answers.
  clock_.AdvanceNanos(7000 * kMs);
  link_.sent.clear();
  uplink_->Step();
  EXPECT_EQ(link_.reconnects, 1);
  uplink_->Step();
  EXPECT_TRUE(FrameSeqs(link_.sent).empty());
  EXPECT_EQ(link_.SentOfType(wire::MsgType::kHello).size(), 1u);  // hello again, not heartbeat
  Credit(16);
  uplink_->Step();
  uplink_->Step();
  EXPECT_EQ(FrameSeqs(link_.sent), (std::vector<uint64_t>{2, 3}));  // the un-acked ones, in order
  EXPECT_EQ(stats_.Snapshot().frames_resent, 2u);
}

TEST_F(UplinkTest, ResendsAfterResendAfterMsWithoutAck) {
  queue_.Push(Frame(5), false);
  Credit(4);
  uplink_->Step();
  uplink_->Step();
  ASSERT_EQ(FrameSeqs(link_.sent), std::vector<uint64_t>{5});
  clock_.AdvanceNanos(2000 * kMs);
  Credit(4);  // keeps the link alive
  uplink_->Step();
  uplink_->Step();
  EXPECT_EQ(FrameSeqs(link_.sent), std::vector<uint64_t>{5});  // 2 s < resend_after_ms
  clock_.AdvanceNanos(1500 * kMs);
  uplink_->Step();
  EXPECT_EQ(FrameSeqs(link_.sent), (std::vector<uint64_t>{5, 5}));
  EXPECT_EQ(link_.reconnects, 0);
}

TEST_F(UplinkTest, MalformedRefusalsAreDroppedStorageErrorsKept) {
  queue_.Push(Frame(1), false);
  queue_.Push(Frame(2), false);
  Credit(4);
  uplink_->Step();
  uplink_->Step();
  link_.Reply(wire::MsgType::kError, [](wire::Header& h) { h.seq = 1, h.error_code = wire::ErrorCode::kBadPayload; });
  link_.Reply(wire::MsgType::kError, [](wire::Header& h) { h.seq = 2, h.error_code = wire::ErrorCode::kStorageFull; });
  uplink_->Step();
  uplink_->Step();
  const EdgeCounters c = stats_.Snapshot();
  EXPECT_EQ(c.frames_refused, 1u);
  EXPECT_EQ(c.frames_kept_for_resend, 1u);
  link_.sent.clear();
  clock_.AdvanceNanos(3500 * kMs);
  Credit(4);
  uplink_->Step();
  uplink_->Step();
  EXPECT_EQ(FrameSeqs(link_.sent), std::vector<uint64_t>{2});  // 1 was refused for good
}

TEST_F(UplinkTest, FinishesOnceDrainedAndAcked) {
  queue_.Push(Frame(1), false);
  queue_.Close();
  uplink_->FinishWhenDrained();
  Credit(4);
  EXPECT_TRUE(uplink_->Step());
  EXPECT_TRUE(uplink_->Step());  // sent, waiting for the ack
  link_.Reply(wire::MsgType::kAck, [](wire::Header& h) { h.ack_seq = 1, h.credits = 4; });
  EXPECT_TRUE(uplink_->Step());
  EXPECT_FALSE(uplink_->Step());
  EXPECT_EQ(uplink_->waiting(), 0u);
  EXPECT_TRUE(uplink_->drained());
}

// What the agent's shutdown grace waits on: a frame the inference stage queued after the uplink's
// last turn is not yet in waiting(), but the uplink is not drained until it was sent and acked.
TEST_F(UplinkTest, AFrameStillQueuedIsNotDrained) {
  uplink_->FinishWhenDrained();
  Credit(4);
  EXPECT_TRUE(uplink_->Step());  // nothing queued yet
  queue_.Push(Frame(1), false);  // the last selected frame, then the end of the stream
  queue_.Close();
  EXPECT_EQ(uplink_->waiting(), 0u);
  EXPECT_FALSE(uplink_->drained());
  EXPECT_TRUE(uplink_->Step());  // sent
  link_.Reply(wire::MsgType::kAck, [](wire::Header& h) { h.ack_seq = 1, h.credits = 4; });
  EXPECT_TRUE(uplink_->Step());
  EXPECT_FALSE(uplink_->drained());
  EXPECT_FALSE(uplink_->Step());
  EXPECT_TRUE(uplink_->drained());
  EXPECT_EQ(stats_.Snapshot().frames_acked, 1u);
}

TEST_F(UplinkTest, AFullResendBufferDropsTheOldest) {
  for (uint64_t s = 1; s <= 10; ++s) queue_.Push(Frame(s), false);  // buffer_frames = 8
  uplink_->Step();
  EXPECT_EQ(stats_.Snapshot().frames_dropped_unacked, 2u);
  Credit(16);
  uplink_->Step();
  uplink_->Step();
  EXPECT_EQ(FrameSeqs(link_.sent), (std::vector<uint64_t>{3, 4, 5, 6, 7, 8, 9, 10}));
}

}  // namespace
}  // namespace kd::edge
