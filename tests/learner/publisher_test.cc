#include "learner/publisher.h"

#include <filesystem>

#include <gtest/gtest.h>

#include "learner/deployed_model.h"
#include "model/weights_file.h"
#include "tests/learner/stage_fixture.h"
#include "tests/support/faulty_file_system.h"
#include "update/manifest.h"

namespace kd::learner {
namespace {
using testing::StageFixture;

update::Manifest Verified(const StageFixture& f, const std::string& blob) {
  auto signed_m = update::DecodeSignedManifest(blob);
  EXPECT_TRUE(signed_m.ok());
  update::VerifyOptions vo;
  vo.trusted_keys = {f.key.public_key};
  vo.now_unix_s = f.clock.WallMicros() / 1000000;
  auto m = update::VerifyManifest(*signed_m, vo);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : update::Manifest{};
}

TEST(PublisherTest, TheFirstVersionIsAFullSnapshotAndTheNextADeltaBothSigned) {
  StageFixture f;
  f.MakeGroup("cam-a");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  {
    model::Student s(testing::TinyStudent());
    std::shared_ptr<const DeployedModel> v1;
    {
      std::lock_guard lock(f.state.mu);
      v1 = f.state.groups.at("cam-a").deployed;
    }
    auto delta =
        update::EncodeDelta(v1->state, StageFixture::Weights(2), update::ParameterNames(*s), DeltaOptionsOf(f.options));
    ASSERT_TRUE(delta.ok());
    ASSERT_TRUE(f.publisher
                    ->Publish("cam-a", delta->reconstructed,
                              {.ap = 0.45, .ap_base = 0.4, .ap50 = 0.7, .ap50_base = 0.6, .holdout_frames = 12},
                              &*delta)
                    .ok());
  }
  VersionInfo v1, v2;
  {
    std::lock_guard lock(f.state.mu);
    const Group& g = f.state.groups.at("cam-a");
    EXPECT_EQ(g.latest, 2u);
    ASSERT_TRUE(g.deployed);
    v1 = g.versions.at(1), v2 = g.versions.at(2);
    EXPECT_EQ(update::StateDigest(g.deployed->state), v2.digest);  // the reconstruction devices will run
    EXPECT_EQ(g.rollout.version(), 2u);                            // rollout.auto_start
  }
  EXPECT_EQ(v1.delta_base, 0u);
  EXPECT_TRUE(v1.delta_sha.empty());
  EXPECT_EQ(v2.delta_base, 1u);
  EXPECT_FALSE(v2.delta_sha.empty());
  EXPECT_EQ(v2.arch_hash, update::ArchHash(testing::TinyStudent()));
  EXPECT_DOUBLE_EQ(v2.ap50, 0.7);
  EXPECT_DOUBLE_EQ(v2.ap, 0.45);
  EXPECT_DOUBLE_EQ(v2.ap_base, 0.4);
  // The artefacts are on disk under their SHA-256 and the full one is what was recorded.
  auto loaded = model::LoadWeights(FullArtifactPath(f.catalogue->artifacts_dir(), v2));
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(update::StateDigest(update::StateOf(*loaded->student)), v2.digest);
  EXPECT_EQ(std::filesystem::file_size(DeltaArtifactPath(f.catalogue->artifacts_dir(), v2)), v2.delta_size);
  // Manifests verify with the learner's key and name the right artefact.
  const auto delta_m = Verified(f, f.publisher->ManifestFor("cam-a", 2, /*full=*/false).value());
  EXPECT_EQ(delta_m.kind, update::ArtifactKind::kDelta);
  EXPECT_EQ(delta_m.base_version, 1u);
  EXPECT_EQ(delta_m.artifact_sha256, v2.delta_sha);
  const auto full_m = Verified(f, f.publisher->ManifestFor("cam-a", 2, /*full=*/true).value());
  EXPECT_EQ(full_m.kind, update::ArtifactKind::kFull);
  EXPECT_EQ(full_m.target_digest, v2.digest);
  // A delta asked for where there is none is the full one.
  EXPECT_EQ(Verified(f, f.publisher->ManifestFor("cam-a", 1, false).value()).kind, update::ArtifactKind::kFull);
  EXPECT_TRUE(f.publisher->ManifestFor("cam-a", 9, true).status().IsNotFound());
}

TEST(PublisherTest, AManifestIsSignedOnceAndReSignedAfterHalfItsValidity) {
  StageFixture f;
  f.MakeGroup("cam-a");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  const std::string first = f.publisher->ManifestFor("cam-a", 1, true).value();
  EXPECT_EQ(f.publisher->ManifestFor("cam-a", 1, true).value(), first);
  f.clock.AdvanceNanos((f.options.publish.manifest_ttl_s / 2 + 1) * 1'000'000'000LL);
  const std::string later = f.publisher->ManifestFor("cam-a", 1, true).value();
  EXPECT_NE(later, first);
  EXPECT_GT(Verified(f, later).expires_unix_s, Verified(f, first).expires_unix_s);
}

TEST(PublisherTest, AStaleCandidateIsRefusedAndNothingIsPublished) {
  StageFixture f;
  f.MakeGroup("cam-a");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(2), {}).ok());
  // Made and gated against v1, but v2 came in between (a rollback from kdctl, say).
  const Status st = f.publisher->Publish("cam-a", StageFixture::Weights(3), {}, nullptr, 1);
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition) << st.ToString();
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.groups.at("cam-a").latest, 2u);
}

TEST(PublisherTest, OldArtefactsArePrunedButTheRolloutFallbackIsKept) {
  StageFixture f;
  f.MakeGroup("cam-a");
  for (uint64_t v = 1; v <= 6; ++v) ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(v), {}).ok());
  std::lock_guard lock(f.state.mu);
  const Group& g = f.state.groups.at("cam-a");
  EXPECT_EQ(g.history.size(), 6u);
  // keep_versions = 2: three versions keep their artefacts. No device committed anything, so the
  // fallback is still v1 (what the devices ship with): kept, with the two newest.
  EXPECT_EQ(g.rollout.previous(), 1u);
  std::vector<uint64_t> kept;
  for (const auto& [v, info] : g.versions) kept.push_back(v);
  EXPECT_EQ(kept, (std::vector<uint64_t>{1, 5, 6}));
  for (uint64_t v = 1; v <= 6; ++v) {
    const bool on_disk = std::filesystem::exists(FullArtifactPath(f.catalogue->artifacts_dir(), g.history.at(v)));
    EXPECT_EQ(on_disk, g.versions.count(v) > 0) << v;
  }
}

TEST(PublisherTest, RevertRepublishesTheFallbackAsANewVersionForEveryDevice) {
  StageFixture f;
  f.MakeGroup("cam-a");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(2), {}).ok());
  ASSERT_TRUE(f.publisher->Revert("cam-a").ok());
  std::lock_guard lock(f.state.mu);
  const Group& g = f.state.groups.at("cam-a");
  EXPECT_EQ(g.latest, 3u);
  EXPECT_EQ(g.versions.at(3).revert_of, 1u);
  EXPECT_EQ(g.versions.at(3).digest, g.versions.at(1).digest);  // versions only go up; weights go back
  EXPECT_EQ(g.reverts, 1u);
  EXPECT_EQ(g.rollout.Desired("cam-a"), 3u);
}

TEST(PublisherTest, ChunksAreRangesOfTheGroupsArtefactsOnly) {
  StageFixture f;
  f.MakeGroup("cam-a");
  f.MakeGroup("cam-b");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  VersionInfo v1;
  {
    std::lock_guard lock(f.state.mu);
    v1 = f.state.groups.at("cam-a").versions.at(1);
  }
  const auto bytes = testing::ReadFile(FullArtifactPath(f.catalogue->artifacts_dir(), v1));
  auto chunk = f.publisher->ReadChunk("cam-a", v1.full_sha, 100, 1000);
  ASSERT_TRUE(chunk.ok()) << chunk.status().ToString();
  EXPECT_EQ(*chunk, bytes.substr(100, 1000));
  auto tail = f.publisher->ReadChunk("cam-a", v1.full_sha, v1.full_size - 10, 1000);
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->size(), 10u);                                                             // clipped to the file
  EXPECT_TRUE(f.publisher->ReadChunk("cam-b", v1.full_sha, 0, 100).status().IsNotFound());  // another group's
  EXPECT_TRUE(f.publisher->ReadChunk("cam-a", v1.full_sha, v1.full_size, 100).status().IsNotFound());
  EXPECT_TRUE(f.publisher->ReadChunk("cam-a", v1.full_sha, 0, 0).status().IsInvalidArgument());
  EXPECT_TRUE(f.publisher->ReadChunk("cam-a", v1.full_sha, 0, 4097).status().IsInvalidArgument());
}

}  // namespace
}  // namespace kd::learner

namespace kd::learner {
namespace {

// Every file operation of a publish fails once, with each kind of fault: the publish is refused or
// complete, never half-done. The group still deploys v1, a restarted learner loads its catalogue
// (every listed artefact present and matching its digest), and the next publish works.
TEST(PublisherFaultTest, AFailedPublishLeavesTheCatalogueAsItWasAndTheNextOneWorks) {
  using kd::testing::AllFaults;
  using kd::testing::FaultName;
  constexpr int kMaxOperations = 100;
  int operations = 0;
  for (const auto fault : AllFaults()) {
    for (int i = 0; i < kMaxOperations; ++i) {
      StageFixture f;
      f.MakeGroup("cam-a");
      ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
      kd::testing::FaultyFileSystem faulty(FileSystem::Default(), fault, i);
      Publisher publisher(f.state, *f.catalogue, f.key, f.clock, faulty);
      const Status st = f.PublishAsDelta("cam-a", 2, &publisher);  // a full and a delta artefact
      if (!faulty.triggered()) {
        ASSERT_TRUE(st.ok()) << st.ToString();
        operations = i;
        break;
      }
      SCOPED_TRACE(std::string(FaultName(fault)) + " at operation " + std::to_string(i));
      EXPECT_FALSE(st.ok());
      {
        std::lock_guard lock(f.state.mu);
        const Group& g = f.state.groups.at("cam-a");
        EXPECT_EQ(g.latest, 1u);
        EXPECT_EQ(g.versions.size(), 1u);
        EXPECT_EQ(update::StateDigest(g.deployed->state), g.versions.at(1).digest);
      }
      LoopState restarted(f.options);
      Catalogue catalogue(restarted, *f.store, f.catalogue->artifacts_dir());
      ASSERT_TRUE(catalogue.Load().ok());
      {
        std::lock_guard lock(restarted.mu);
        EXPECT_EQ(restarted.groups.at("cam-a").latest, 1u);
      }
      EXPECT_TRUE(f.PublishAsDelta("cam-a", 2).ok());
    }
  }
  EXPECT_GE(operations, 12) << "two artefacts, each written atomically (open, append, sync, close, rename, sync dir)";
}

}  // namespace
}  // namespace kd::learner
