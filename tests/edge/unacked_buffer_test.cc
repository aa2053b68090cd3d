#include "edge/unacked_buffer.h"

#include <vector>

#include <gtest/gtest.h>

namespace kd::edge {
namespace {

PendingFrame Frame(uint64_t seq, size_t jpeg_bytes = 10) {
  PendingFrame f;
  f.seq = seq;
  f.capture_time_us = static_cast<int64_t>(seq) * 1000;
  f.width = 16;
  f.height = 12;
  f.jpeg.assign(jpeg_bytes, 0xAB);
  return f;
}

std::vector<uint64_t> Seqs(const std::vector<const PendingFrame*>& frames) {
  std::vector<uint64_t> out;
  for (const PendingFrame* f : frames) out.push_back(f->seq);
  return out;
}

TEST(UnackedBufferTest, AtFrameCapacityTheOldestIsDroppedAndCounted) {
  UnackedBuffer buf(3);
  for (uint64_t s = 1; s <= 5; ++s) buf.Push(Frame(s, 10));
  EXPECT_EQ(buf.size(), 3u);
  EXPECT_EQ(buf.bytes(), 30u);
  EXPECT_EQ(buf.stats().pushed, 5u);
  EXPECT_EQ(buf.stats().dropped_oldest, 2u);
  EXPECT_EQ(buf.stats().dropped_bytes, 20u);
  EXPECT_FALSE(buf.Ack(1));  // dropped
  EXPECT_FALSE(buf.Ack(2));
  EXPECT_TRUE(buf.Ack(3));
  EXPECT_EQ(Seqs(buf.TakeDue(0, 1000, 10)), (std::vector<uint64_t>{4, 5}));
}

TEST(UnackedBufferTest, AtByteCapacityTheOldestAreDroppedUntilTheNewFrameFits) {
  UnackedBuffer buf(100, 1000);
  buf.Push(Frame(1, 400));
  buf.Push(Frame(2, 400));
  EXPECT_EQ(buf.bytes(), 800u);
  buf.Push(Frame(3, 400));  // 1200 > 1000: seq 1 goes
  EXPECT_EQ(buf.size(), 2u);
  EXPECT_EQ(buf.bytes(), 800u);
  EXPECT_EQ(buf.stats().dropped_oldest, 1u);
  EXPECT_EQ(buf.stats().dropped_bytes, 400u);
  buf.Push(Frame(4, 900));  // needs 2 and 3 gone
  EXPECT_EQ(buf.size(), 1u);
  EXPECT_EQ(buf.bytes(), 900u);
  EXPECT_EQ(buf.stats().dropped_oldest, 3u);
  EXPECT_EQ(buf.stats().dropped_bytes, 1200u);
  // A frame larger than the whole byte capacity is kept, alone: the newest frame always stays.
  buf.Push(Frame(5, 5000));
  EXPECT_EQ(buf.size(), 1u);
  EXPECT_EQ(buf.bytes(), 5000u);
  EXPECT_EQ(Seqs(buf.TakeDue(0, 1000, 10)), (std::vector<uint64_t>{5}));
}

TEST(UnackedBufferTest, AckRemovesAndUnknownSeqCountsAsDuplicate) {
  UnackedBuffer buf(10);
  buf.Push(Frame(7, 100));
  buf.Push(Frame(9, 50));
  EXPECT_TRUE(buf.Ack(7));
  EXPECT_EQ(buf.size(), 1u);
  EXPECT_EQ(buf.bytes(), 50u);
  EXPECT_FALSE(buf.Ack(7));   // acked twice
  EXPECT_FALSE(buf.Ack(8));   // never pushed
  EXPECT_FALSE(buf.Ack(42));  // future
  EXPECT_EQ(buf.stats().acked, 1u);
  EXPECT_EQ(buf.stats().duplicate_acks, 3u);
  EXPECT_TRUE(buf.Ack(9));
  EXPECT_TRUE(buf.empty());
  EXPECT_EQ(buf.bytes(), 0u);
  EXPECT_TRUE(buf.TakeDue(1'000'000, 0, 10).empty());
}

TEST(UnackedBufferTest, TakeDueSendsNewFramesFirstThenTheLongestWaiting) {
  UnackedBuffer buf(10);
  for (uint64_t s = 1; s <= 4; ++s) buf.Push(Frame(s));
  const int64_t kResend = 100;
  EXPECT_EQ(Seqs(buf.TakeDue(0, kResend, 2)), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(Seqs(buf.TakeDue(50, kResend, 10)), (std::vector<uint64_t>{3, 4}));  // 1, 2 not due yet
  EXPECT_TRUE(buf.TakeDue(99, kResend, 10).empty());
  EXPECT_EQ(buf.stats().resent, 0u);

  const auto again = buf.TakeDue(100, kResend, 10);  // 1, 2 sent at 0: due at exactly 100
  EXPECT_EQ(Seqs(again), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(again[0]->attempts, 2u);
  EXPECT_EQ(again[0]->last_sent_us, 100);
  EXPECT_EQ(buf.stats().resent, 2u);

  buf.Push(Frame(5));
  EXPECT_EQ(Seqs(buf.TakeDue(120, kResend, 10)), (std::vector<uint64_t>{5}));  // new first; 3, 4 wait to 150
  EXPECT_EQ(Seqs(buf.TakeDue(160, kResend, 10)), (std::vector<uint64_t>{3, 4}));
  // At 260: 1, 2 (sent at 100), 5 (at 120), 3, 4 (at 160) are all due; the longest-waiting go
  // first, not the lowest seq, so re-sends rotate over the buffer.
  EXPECT_EQ(Seqs(buf.TakeDue(260, kResend, 10)), (std::vector<uint64_t>{1, 2, 5, 3, 4}));
  // New frames still come before any re-send, even when re-sends are due.
  buf.Push(Frame(6));
  EXPECT_EQ(Seqs(buf.TakeDue(1000, kResend, 2)), (std::vector<uint64_t>{6, 1}));
}

TEST(UnackedBufferTest, MaxIsRespected) {
  UnackedBuffer buf(10);
  for (uint64_t s = 1; s <= 5; ++s) buf.Push(Frame(s));
  EXPECT_TRUE(buf.TakeDue(0, 100, 0).empty());
  EXPECT_EQ(Seqs(buf.TakeDue(0, 100, 1)), (std::vector<uint64_t>{1}));
  EXPECT_EQ(Seqs(buf.TakeDue(0, 100, 3)), (std::vector<uint64_t>{2, 3, 4}));
  EXPECT_EQ(Seqs(buf.TakeDue(500, 100, 3)), (std::vector<uint64_t>{5, 1, 2}));
  EXPECT_EQ(Seqs(buf.TakeDue(500, 100, 100)), (std::vector<uint64_t>{3, 4}));
}

TEST(UnackedBufferTest, AClockStartingAtZeroDoesNotMakeSentFramesLookUnsent) {
  UnackedBuffer buf(10);
  buf.Push(Frame(1));
  ASSERT_EQ(buf.TakeDue(0, 1000, 10).size(), 1u);
  EXPECT_TRUE(buf.TakeDue(0, 1000, 10).empty());
  EXPECT_EQ(Seqs(buf.TakeDue(1000, 1000, 10)), (std::vector<uint64_t>{1}));
}

TEST(UnackedBufferTest, MarkAllUnsentMakesEverythingDueInSeqOrder) {
  UnackedBuffer buf(10);
  for (uint64_t s = 1; s <= 3; ++s) buf.Push(Frame(s));
  buf.TakeDue(0, 100, 10);
  buf.TakeDue(200, 100, 1);  // re-sends 1: now sent last at 200, later than 2 and 3
  EXPECT_EQ(buf.stats().resent, 1u);
  buf.MarkAllUnsent();
  const auto all = buf.TakeDue(210, 100, 10);  // nothing would be due by time alone
  EXPECT_EQ(Seqs(all), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(all[0]->attempts, 3u);
  EXPECT_EQ(all[1]->attempts, 2u);
  EXPECT_EQ(all[2]->last_sent_us, 210);
  EXPECT_EQ(buf.stats().resent, 4u);  // every frame had been sent before
  EXPECT_TRUE(buf.TakeDue(250, 100, 10).empty());
}

TEST(UnackedBufferTest, PushResetsSendStateAndKeepsPayload) {
  UnackedBuffer buf(10);
  PendingFrame f = Frame(3, 5);
  f.last_sent_us = 77;  // stale values from the caller are ignored
  f.attempts = 9;
  f.score = 0.5f;
  buf.Push(f);
  const auto due = buf.TakeDue(1, 100, 10);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0]->attempts, 1u);
  EXPECT_EQ(due[0]->score, 0.5f);
  EXPECT_EQ(due[0]->jpeg.size(), 5u);
  EXPECT_EQ(due[0]->capture_time_us, 3000);
  EXPECT_EQ(buf.stats().resent, 0u);
}

TEST(UnackedBufferDeathTest, NonIncreasingSeqIsABug) {
  UnackedBuffer buf(10);
  buf.Push(Frame(5));
  EXPECT_DEATH(buf.Push(Frame(5)), "seq");
  EXPECT_DEATH(UnackedBuffer(0), "at least one frame");
}

}  // namespace
}  // namespace kd::edge
