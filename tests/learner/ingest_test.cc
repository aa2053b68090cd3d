#include "learner/ingest.h"

#include <gtest/gtest.h>

#include "tests/learner/stage_fixture.h"

namespace kd::learner {
namespace {
using testing::StageFixture;

struct IngestFixture : StageFixture {
  std::atomic<bool> draining{false};
  int wakes = 0;
  IngestStage stage{state, *store, clock, draining, [this] { ++wakes; }};

  wire::Incoming Frame(const std::string& device, uint64_t seq) {
    return Message(device, wire::MsgType::kFrame, seq, testing::GreyJpeg(64, 48));
  }
};

TEST(IngestStageTest, FramesAreStoredThenAckedWithCredits) {
  IngestFixture f;
  const auto replies = f.stage.StoreAndAck({f.Frame("cam-a", 1), f.Frame("cam-a", 2), f.Frame("cam-b", 1)});
  ASSERT_EQ(replies.size(), 3u);
  for (const auto& r : replies) {
    EXPECT_EQ(r.message.header.type, wire::MsgType::kAck);
    EXPECT_EQ(r.message.header.credits, 4u);
  }
  EXPECT_EQ(replies[1].message.header.ack_seq, 2u);
  EXPECT_EQ(replies[2].peer, "peer-cam-b");
  // Durable before the ack: the store has them.
  EXPECT_TRUE(f.store->GetFrame("cam-a", 2).value().has_value());
  EXPECT_EQ(f.store->CountFrames("cam-a").value(), 2u);
  EXPECT_EQ(f.wakes, 1);
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.devices.at("cam-a").frames_stored, 2u);
  EXPECT_EQ(f.state.frames_received, 3u);
  EXPECT_EQ(f.state.ingest_writes, 1u);  // one synced write for the batch
}

TEST(IngestStageTest, StoredFramesCountTowardsTheIngestPressure) {
  IngestFixture f;
  EXPECT_EQ(f.state.pressure.FramesPerSecond(), 0);
  (void)f.stage.StoreAndAck({f.Frame("cam-a", 1), f.Frame("cam-a", 2), f.Frame("cam-a", 2)});
  // Three acknowledged (the resend too) within the one-second window of the fixture's clock.
  EXPECT_NEAR(f.state.pressure.FramesPerSecond(), 3, 1e-9);
  f.clock.AdvanceNanos(1'000'000'000);
  EXPECT_EQ(f.state.pressure.FramesPerSecond(), 0);
}

TEST(IngestStageTest, AResentFrameIsAckedAgainAndCountedAsDuplicate) {
  IngestFixture f;
  (void)f.stage.StoreAndAck({f.Frame("cam-a", 7)});
  const auto replies = f.stage.StoreAndAck({f.Frame("cam-a", 7)});
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].message.header.type, wire::MsgType::kAck);
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.devices.at("cam-a").frames_stored, 1u);
  EXPECT_EQ(f.state.devices.at("cam-a").frames_duplicate, 1u);
}

TEST(IngestStageTest, FramesBeyondTheCreditWindowAreRefusedAndNotStored) {
  IngestFixture f;
  std::vector<wire::Incoming> batch;
  for (uint64_t seq = 1; seq <= 6; ++seq) batch.push_back(f.Frame("cam-a", seq));
  const auto replies = f.stage.StoreAndAck(batch);
  ASSERT_EQ(replies.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    if (i < 4) {
      EXPECT_EQ(replies[i].message.header.type, wire::MsgType::kAck) << i;
    } else {
      EXPECT_EQ(replies[i].message.header.type, wire::MsgType::kError) << i;
      EXPECT_EQ(replies[i].message.header.error_code, wire::ErrorCode::kOutOfCredit) << i;
    }
  }
  EXPECT_FALSE(f.store->GetFrame("cam-a", 5).value().has_value());
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.devices.at("cam-a").frames_out_of_credit, 2u);
}

TEST(IngestStageTest, AFullStoreIsStorageFullAndNothingIsAcked) {
  IngestFixture f;
  ASSERT_TRUE(f.store->SetMaxBytes(storage::kMinMaxBytes).ok());
  // Metadata is never dropped by retention, so filling it reaches the budget (as in storage_test).
  const std::string value(64 << 10, 'm');
  Status filled;
  for (int i = 0; i < 200 && filled.ok(); ++i) filled = f.store->PutMeta("blob/" + std::to_string(i), value);
  ASSERT_TRUE(filled.IsNoSpace()) << filled.ToString();
  const std::vector<uint8_t> frame(1 << 20, 0x5a);
  const auto replies = f.stage.StoreAndAck({StageFixture::Message("cam-a", wire::MsgType::kFrame, 9, frame)});
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_EQ(replies[0].message.header.type, wire::MsgType::kError);
  EXPECT_EQ(replies[0].message.header.error_code, wire::ErrorCode::kStorageFull);
  EXPECT_FALSE(f.store->GetFrame("cam-a", 9).value().has_value());
  EXPECT_EQ(f.wakes, 0);
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.devices.at("cam-a").store_errors, 1u);
  EXPECT_EQ(f.state.devices.at("cam-a").frames_stored, 0u);
}

TEST(IngestStageTest, HelloGetsCreditsAndNoneWhileDraining) {
  IngestFixture f;
  auto r = f.stage.HandleOther(StageFixture::Message("cam-a", wire::MsgType::kHello, 1));
  EXPECT_EQ(r.message.header.type, wire::MsgType::kCredit);
  EXPECT_EQ(r.message.header.credits, 4u);
  f.draining = true;
  r = f.stage.HandleOther(StageFixture::Message("cam-a", wire::MsgType::kHeartbeat, 2));
  EXPECT_EQ(r.message.header.type, wire::MsgType::kHeartbeat);
  EXPECT_EQ(r.message.header.credits, 0u);
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.devices.at("cam-a").last_seen_us, f.clock.WallMicros());
}

TEST(IngestStageTest, AnythingElseOnTheFramesSocketIsABadHeaderError) {
  IngestFixture f;
  const auto r = f.stage.HandleOther(StageFixture::Message("cam-a", wire::MsgType::kChunkRequest, 1));
  EXPECT_EQ(r.message.header.type, wire::MsgType::kError);
  EXPECT_EQ(r.message.header.error_code, wire::ErrorCode::kBadHeader);
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.frames_rejected, 1u);
}

}  // namespace
}  // namespace kd::learner
