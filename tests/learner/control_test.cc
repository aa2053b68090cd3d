#include "learner/control.h"

#include <gtest/gtest.h>

#include "tests/learner/stage_fixture.h"
#include "update/manifest.h"

namespace kd::learner {
namespace {
using testing::StageFixture;

struct ControlFixture : StageFixture {
  ControlStage stage{state, *publisher, *catalogue, clock};

  // Two versions of cam-a's group; rollout of v2 with cam-a as the canary.
  void PublishTwo() {
    MakeGroup("cam-a");
    ASSERT_TRUE(publisher->Publish("cam-a", Weights(1), {}).ok());
    ASSERT_TRUE(PublishAsDelta("cam-a", 2).ok());
  }
  wire::Message Status(uint64_t running, bool want_full = false) {
    auto in = Message("cam-a", wire::MsgType::kStatus, 1);
    in.message.header.status.running_version = running;
    in.message.header.status.floor_version = running;
    in.message.header.status.want_full = want_full;
    return stage.Handle(in).message;
  }
  VersionInfo Version(uint64_t v) {
    std::lock_guard lock(state.mu);
    return state.groups.at("cam-a").versions.at(v);
  }
};

update::Manifest ManifestOf(const StageFixture& f, const wire::Message& reply) {
  update::VerifyOptions vo;
  vo.trusted_keys = {f.key.public_key};
  vo.now_unix_s = f.clock.WallMicros() / 1000000;
  return update::VerifyManifest(update::DecodeSignedManifest(reply.payload).value(), vo).value();
}

TEST(ControlStageTest, AStatusGetsTheDesiredVersionWithADeltaManifestFromItsBase) {
  ControlFixture f;
  f.PublishTwo();
  const auto r = f.Status(1);
  EXPECT_EQ(r.header.type, wire::MsgType::kStatusReply);
  EXPECT_EQ(r.header.desired_version, 2u);  // the first device to report is the canary
  ASSERT_FALSE(r.payload.empty());
  const auto m = ManifestOf(f, r);
  EXPECT_EQ(m.kind, update::ArtifactKind::kDelta);
  EXPECT_EQ(m.artifact_sha256, f.Version(2).delta_sha);
  // Asked for a full snapshot (or running another base): the full artefact.
  EXPECT_EQ(ManifestOf(f, f.Status(1, /*want_full=*/true)).kind, update::ArtifactKind::kFull);
  // Running the desired version already: no manifest.
  EXPECT_TRUE(f.Status(2).payload.empty());
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.devices.at("cam-a").running_version, 2u);
  EXPECT_EQ(f.state.groups.at("cam-a").rollout.canary(), "cam-a");
}

TEST(ControlStageTest, ChunkRequestsReturnArtefactBytesAndUnknownObjectsAnError) {
  ControlFixture f;
  f.PublishTwo();
  const VersionInfo v2 = f.Version(2);
  auto req = StageFixture::Message("cam-a", wire::MsgType::kChunkRequest, 5);
  req.message.header.object_id = v2.delta_sha;
  req.message.header.offset = 0;
  req.message.header.length = 4096;
  const auto chunk = f.stage.Handle(req).message;
  ASSERT_EQ(chunk.header.type, wire::MsgType::kChunk);
  EXPECT_EQ(chunk.payload, testing::ReadFile(DeltaArtifactPath(f.catalogue->artifacts_dir(), v2)).substr(0, 4096));
  EXPECT_EQ(chunk.header.length, chunk.payload.size());
  req.message.header.object_id = std::string(64, 'a');
  const auto err = f.stage.Handle(req).message;
  EXPECT_EQ(err.header.type, wire::MsgType::kError);
  EXPECT_EQ(err.header.error_code, wire::ErrorCode::kUnknownObject);
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.devices.at("cam-a").downlink_bytes, chunk.payload.size());
}

TEST(ControlStageTest, ARolledBackReportHaltsTheRolloutDurably) {
  ControlFixture f;
  f.PublishTwo();
  (void)f.Status(1);  // cam-a becomes the canary of v2
  auto report = StageFixture::Message("cam-a", wire::MsgType::kUpdateReport, 7);
  report.message.header.model_version = 2;
  report.message.header.outcome = wire::UpdateOutcome::kRolledBack;
  report.message.header.error_text = "probation: 3 inference errors";
  const auto ack = f.stage.Handle(report).message;
  EXPECT_EQ(ack.header.type, wire::MsgType::kAck);
  {
    std::lock_guard lock(f.state.mu);
    EXPECT_EQ(f.state.groups.at("cam-a").rollout.stage(), RolloutStage::kHalted);
    ASSERT_EQ(f.state.devices.at("cam-a").reports.size(), 1u);
    EXPECT_EQ(f.state.devices.at("cam-a").reports[0], "v2 rolled back: probation: 3 inference errors");
  }
  // Persisted before the ack: a fresh catalogue over the same store sees the halt.
  LoopState reloaded(f.options);
  Catalogue catalogue(reloaded, *f.store, f.catalogue->artifacts_dir());
  ASSERT_TRUE(catalogue.Load().ok());
  std::lock_guard lock(reloaded.mu);
  EXPECT_EQ(reloaded.groups.at("cam-a").rollout.stage(), RolloutStage::kHalted);
}

TEST(ControlStageTest, BandwidthMetersFollowTheClock) {
  ControlFixture f;
  {
    std::lock_guard lock(f.state.mu);
    f.state.Device("cam-a");
  }
  f.stage.Tick();  // starts the meter
  for (int i = 0; i < 60; ++i) {
    {
      std::lock_guard lock(f.state.mu);
      f.state.devices.at("cam-a").uplink_bytes += 25'000;  // 25 kB per 2 s = 100 kbit/s
    }
    f.clock.AdvanceNanos(ControlStage::kRateIntervalUs * 1000);
    f.stage.Tick();
  }
  std::lock_guard lock(f.state.mu);
  const DeviceInfo& d = f.state.devices.at("cam-a");
  // After 120 s (4 time constants) the average is within 2 % of the rate.
  EXPECT_NEAR(d.uplink_kbps, 100.0, 2.0);
  EXPECT_DOUBLE_EQ(d.downlink_kbps, 0.0);
}

TEST(ControlStageTest, CanaryProbationEndsOnTheClock) {
  ControlFixture f;
  f.PublishTwo();
  (void)f.Status(1);
  auto report = StageFixture::Message("cam-a", wire::MsgType::kUpdateReport, 7);
  report.message.header.model_version = 2;
  report.message.header.outcome = wire::UpdateOutcome::kCommitted;
  (void)f.stage.Handle(report);
  f.stage.Tick();
  {
    std::lock_guard lock(f.state.mu);
    EXPECT_EQ(f.state.groups.at("cam-a").rollout.stage(), RolloutStage::kCanary);
  }
  f.clock.AdvanceNanos((f.options.rollout.canary_probation_s + 1) * 1'000'000'000LL);
  f.stage.Tick();
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.groups.at("cam-a").rollout.stage(), RolloutStage::kAll);
}

TEST(ControlStageTest, OtherMessagesGetABadHeaderError) {
  ControlFixture f;
  const auto r = f.stage.Handle(StageFixture::Message("cam-a", wire::MsgType::kFrame, 1));
  EXPECT_EQ(r.message.header.type, wire::MsgType::kError);
  EXPECT_EQ(r.message.header.error_code, wire::ErrorCode::kBadHeader);
}

}  // namespace
}  // namespace kd::learner
