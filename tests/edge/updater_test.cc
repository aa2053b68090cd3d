// The updater against a scripted learner (FakeLink): tiny students, real slots on a scratch
// directory, real signatures; no sockets, no camera, no assets.
#include "edge/updater.h"

#include <fstream>
#include <memory>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/clock.h"
#include "base/sha256.h"
#include "model/weights_file.h"
#include "tests/edge/fake_link.h"
#include "tests/update/test_util.h"
#include "update/signing.h"
#include "update/state.h"

namespace kd::edge {
namespace {

using testing::FakeLink;
using update::testing::Kdw;
using update::testing::ScratchDir;
constexpr int64_t kMs = 1'000'000;  // ns

class UpdaterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    {
      const auto v1 = Kdw(1);
      std::ofstream(dir_ / "v1.kdw", std::ios::binary).write(reinterpret_cast<const char*>(v1.data()), v1.size());
    }
    auto slots = update::ModelSlots::Open(dir_ / "slots");
    ASSERT_TRUE(slots.ok()) << slots.status().ToString();
    slots_.emplace(std::move(slots).value());
    ASSERT_TRUE(slots_->Bootstrap(dir_ / "v1.kdw", 1).ok());
    auto v1 = LoadRunningModel(slots_->CommittedPath(), 1, false, BuildRunningModel);
    ASSERT_TRUE(v1.ok()) << v1.status().ToString();
    models_ = std::make_unique<ModelHolder>(*v1, *v1);
    stats_.Update([](EdgeCounters& c) { c.running_version = 1; });  // as the agent does at start
    key_ = *update::GenerateSigningKey();

    opt_.device_id = "cam1";
    opt_.model.dir = dir_ / "slots";
    opt_.update.download_window = 2;
    opt_.update.probation_frames = 3;
    opt_.update.probation_seconds = 1;
    opt_.output.status_interval_ms = 1000;
    probation_ = std::make_unique<Probation>(ProbationOptions{3, 1, 3}, clock_);
    updater_ = std::make_unique<Updater>(opt_, *slots_, std::vector<std::string>{key_.public_key}, link_, *models_,
                                         *probation_, stats_, latest_, BuildRunningModel, clock_, inference_clock_);

    artifact_ = Kdw(2);
    auto decoded = model::DecodeWeights(artifact_);
    ASSERT_TRUE(decoded.ok());
    manifest_.model_id = "cam";
    manifest_.version = 2;
    manifest_.kind = update::ArtifactKind::kFull;
    manifest_.arch_hash = update::ArchHash(decoded->student->options());
    manifest_.target_digest = update::StateDigest(update::StateOf(*decoded->student));
    manifest_.artifact_size = artifact_.size();
    manifest_.artifact_sha256 = Sha256Hex(artifact_);
    manifest_.chunk_size = 1024;  // several chunks, window of 2
    manifest_.created_unix_s = clock_.WallMicros() / 1000000 - 10;
    manifest_.expires_unix_s = manifest_.created_unix_s + 3600;

    // The learner: offers the manifest on every status, serves chunks from the artefact.
    link_.on_send = [this](const wire::Message& m) {
      if (m.header.type == wire::MsgType::kStatus && offer_) {
        wire::Message r;
        r.header.type = wire::MsgType::kStatusReply;
        r.header.desired_version = manifest_.version;
        auto s = update::SignManifest(manifest_, key_);
        ASSERT_TRUE(s.ok()) << s.status().ToString();
        r.payload = update::EncodeSignedManifest(*s);
        link_.inbox.push_back(std::move(r));
      } else if (m.header.type == wire::MsgType::kChunkRequest) {
        ++chunk_requests_;
        wire::Message r;
        r.header.type = wire::MsgType::kChunk;
        r.header.object_id = m.header.object_id;
        r.header.offset = m.header.offset;
        r.payload.assign(reinterpret_cast<const char*>(artifact_.data()) + m.header.offset, m.header.length);
        link_.inbox.push_back(std::move(r));
      }
    };
  }

  // Turns of the updater, with `advance_ms` of fake time before each.
  void Run(int turns, int64_t advance_ms = 0) {
    for (int i = 0; i < turns; ++i) {
      clock_.AdvanceNanos(advance_ms * kMs);
      ASSERT_TRUE(updater_->Step());
    }
  }
  std::vector<wire::Message> Reports() const { return link_.SentOfType(wire::MsgType::kUpdateReport); }

  ScratchDir dir_;
  FakeClock clock_{100'000 * kMs};
  FakeClock inference_clock_;  // every run takes 0 ms: the self-test's latency check passes
  EdgeStats stats_{clock_};
  LatestFrame latest_;
  std::optional<update::ModelSlots> slots_;
  std::unique_ptr<ModelHolder> models_;
  std::unique_ptr<Probation> probation_;
  update::SigningKeyPair key_;
  config::EdgeOptions opt_;
  FakeLink link_;
  std::unique_ptr<Updater> updater_;
  std::vector<uint8_t> artifact_;
  update::Manifest manifest_;
  bool offer_ = true;
  int chunk_requests_ = 0;
};

TEST_F(UpdaterTest, DownloadsInChunksVerifiesAndStagesTheTrial) {
  const auto status = [&] {
    Run(1);
    return link_.SentOfType(wire::MsgType::kStatus);
  }();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_EQ(status[0].header.status.running_version, 1u);
  EXPECT_EQ(status[0].header.status.state, "running");
  Run(60);
  const size_t chunks = (artifact_.size() + 1023) / 1024;
  EXPECT_EQ(chunk_requests_, static_cast<int>(chunks));
  ASSERT_EQ(models_->Settled(), nullptr) << "a swap is pending";
  const auto next = models_->TakeForFrame();
  EXPECT_EQ(next->version, 2u);
  EXPECT_TRUE(next->trial);
  EXPECT_EQ(slots_->state().trial_version, 2u);
  const EdgeCounters c = stats_.Snapshot();
  EXPECT_EQ(c.swaps, 1u);
  EXPECT_EQ(c.downlink_bytes, artifact_.size());
  EXPECT_FALSE(c.downloading);
  EXPECT_TRUE(Reports().empty());
}

TEST_F(UpdaterTest, ResumesACompletePartialDownloadAndInstallsAtOnce) {
  // A previous process received every chunk and died before installing.
  auto d = update::ModelSlots::Download::Begin(opt_.model.dir, manifest_.artifact_sha256, manifest_.artifact_size);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->Append(0, artifact_).ok());
  Run(2);
  EXPECT_EQ(chunk_requests_, 0);
  EXPECT_EQ(models_->TakeForFrame()->version, 2u);
  EXPECT_EQ(slots_->state().trial_version, 2u);
}

TEST_F(UpdaterTest, RejectsWeightsThatDoNotMatchTheDigestAndDoesNotRetrySoon) {
  auto other = model::DecodeWeights(Kdw(3));
  ASSERT_TRUE(other.ok());
  manifest_.target_digest = update::StateDigest(update::StateOf(*other->student));
  Run(60);
  const auto reports = Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].header.outcome, wire::UpdateOutcome::kRejected);
  EXPECT_EQ(reports[0].header.model_version, 2u);
  EXPECT_NE(reports[0].header.error_text.find("digest"), std::string::npos) << reports[0].header.error_text;
  EXPECT_EQ(stats_.Snapshot().rejected_manifests, 1u);
  EXPECT_EQ(models_->TakeForFrame()->version, 1u);  // still the committed model
  EXPECT_EQ(slots_->state().trial_version, 0u);
  // Offered again within the minute: not downloaded again.
  const int requests = chunk_requests_;
  Run(5, 1100);
  EXPECT_EQ(chunk_requests_, requests);
}

TEST_F(UpdaterTest, RefusesAManifestSignedByAnUnknownKey) {
  key_ = *update::GenerateSigningKey();
  Run(3);
  const auto reports = Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].header.outcome, wire::UpdateOutcome::kRejected);
  EXPECT_EQ(chunk_requests_, 0);
  Run(3, 1100);
  EXPECT_EQ(Reports().size(), 1u);  // reported once
}

TEST_F(UpdaterTest, CommitsAfterProbationAndReportsIt) {
  Run(60);
  ASSERT_EQ(models_->TakeForFrame()->version, 2u);
  offer_ = false;
  for (int i = 0; i < 3; ++i) probation_->OnTrialFrame(1, true);
  Run(1);
  EXPECT_TRUE(Reports().empty());  // 3 frames but not 1 s yet
  Run(1, 1000);
  const auto reports = Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].header.outcome, wire::UpdateOutcome::kCommitted);
  EXPECT_EQ(slots_->state().committed_version, 2u);
  EXPECT_EQ(models_->committed()->version, 2u);
  EXPECT_FALSE(models_->TakeForFrame()->trial);
  EXPECT_EQ(stats_.Snapshot().commits, 1u);
  EXPECT_EQ(stats_.Snapshot().committed_version, 2u);
}

TEST_F(UpdaterTest, RollsBackAFailedTrialAndNeverInstallsItAgain) {
  Run(60);
  ASSERT_EQ(models_->TakeForFrame()->version, 2u);
  probation_->OnTrialFrame(1, /*finite=*/false);
  Run(1);
  const auto reports = Reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].header.outcome, wire::UpdateOutcome::kRolledBack);
  EXPECT_EQ(models_->TakeForFrame()->version, 1u);
  EXPECT_EQ(slots_->state().trial_version, 0u);
  EXPECT_EQ(stats_.Snapshot().rollbacks, 1u);
  const int requests = chunk_requests_;
  Run(10, 1100);  // the learner keeps offering v2
  EXPECT_EQ(chunk_requests_, requests);
  EXPECT_EQ(models_->current()->version, 1u);
}

}  // namespace
}  // namespace kd::edge
