#include "learner/catalogue.h"

#include <gtest/gtest.h>

#include "learner/admin.h"
#include "learner/deployed_model.h"
#include "learner/teacher_record.h"
#include "learner/version_json.h"
#include "model/weights_file.h"
#include "tests/learner/stage_fixture.h"

namespace kd::learner {
namespace {
using testing::StageFixture;

TEST(CatalogueTest, VersionsRolloutAndTheDeployedModelSurviveARestart) {
  StageFixture f;
  f.MakeGroup("cam-a");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  ASSERT_TRUE(f.PublishAsDelta("cam-a", 2).ok());

  LoopState reloaded(f.options);
  Catalogue catalogue(reloaded, *f.store, f.catalogue->artifacts_dir());
  ASSERT_TRUE(catalogue.Load().ok());
  std::lock_guard lock(reloaded.mu);
  const Group& g = reloaded.groups.at("cam-a");
  EXPECT_EQ(g.latest, 2u);
  EXPECT_EQ(g.devices, (std::set<std::string>{"cam-a"}));
  ASSERT_EQ(g.versions.size(), 2u);
  EXPECT_EQ(g.versions.at(2).holdout_frames, 0u);
  EXPECT_EQ(g.versions.at(2).delta_base, 1u);
  EXPECT_EQ(g.rollout.version(), 2u);
  ASSERT_TRUE(g.deployed);
  ASSERT_TRUE(g.arch);
  EXPECT_EQ(g.arch->ArchJson(), testing::TinyStudent().ArchJson());
  EXPECT_EQ(update::StateDigest(g.deployed->state), g.versions.at(2).digest);
}

TEST(CatalogueTest, VersionRecordsKeepTheGatesApAndOlderRecordsWithoutItReadNotMeasured) {
  VersionInfo info;
  info.version = 3, info.ap = 0.41, info.ap_base = 0.38, info.ap50 = 0.9, info.ap50_base = 0.88;
  const auto back = VersionFromJson(VersionToJson(info));
  EXPECT_DOUBLE_EQ(back.ap, 0.41);
  EXPECT_DOUBLE_EQ(back.ap_base, 0.38);
  EXPECT_DOUBLE_EQ(back.ap50, 0.9);
  auto old = VersionToJson(info);  // a record written before the gate measured AP
  old.erase("ap");
  old.erase("ap_base");
  EXPECT_DOUBLE_EQ(VersionFromJson(old).ap, -1.0);
  EXPECT_DOUBLE_EQ(VersionFromJson(old).ap50, 0.9);
  old["ap"] = "high";
  EXPECT_THROW(VersionFromJson(old), nlohmann::json::exception);
  old.erase("ap");
  old.erase("digest");  // the fields every record has stay required
  EXPECT_THROW(VersionFromJson(old), nlohmann::json::exception);
}

TEST(CatalogueTest, AnArtefactThatDoesNotMatchItsDigestIsCorruption) {
  StageFixture f;
  f.MakeGroup("cam-a");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  VersionInfo v1;
  {
    std::lock_guard lock(f.state.mu);
    v1 = f.state.groups.at("cam-a").versions.at(1);
  }
  // Another valid model file under v1's name: loads, but is not v1.
  torch::manual_seed(99);
  model::Student other(testing::TinyStudent());
  auto bytes = model::EncodeWeights(*other, {1, 0, "test", 0}, model::WeightDtype::kF32).value();
  ASSERT_TRUE(WriteFileAtomic(FileSystem::Default(), FullArtifactPath(f.catalogue->artifacts_dir(), v1), bytes).ok());
  LoopState reloaded(f.options);
  Catalogue catalogue(reloaded, *f.store, f.catalogue->artifacts_dir());
  const Status st = catalogue.Load();
  EXPECT_TRUE(st.IsCorruption()) << st.ToString();
}

TEST(CatalogueTest, RebuildRestoresWatermarksCountsAndTheSplit) {
  StageFixture f;
  const auto rows = testing::SyntheticRows(1, 64, 48, 32, 24);
  for (uint64_t seq = 1; seq <= 10; ++seq) {
    ASSERT_TRUE(f.store->PutFrame({"cam-a", seq, 0, 0, testing::GreyJpeg(64, 48)}).ok());
    if (seq <= 6) {
      ASSERT_TRUE(f.store->PutTeacher("cam-a", seq, EncodeTeacherRow(rows, 0), 0.5f, kTeacherBlobSchema).ok());
    }
  }
  ASSERT_TRUE(f.catalogue->PersistLabelWatermark("cam-a", 6).ok());
  auto n = f.catalogue->RebuildFromStore();
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, 6u);
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.label_wm.at("cam-a"), 6u);
  EXPECT_EQ(f.state.devices.at("cam-a").frames_stored, 10u);  // what the store holds, not this process's arrivals
  const Group& g = f.state.groups.at("cam-a");
  EXPECT_EQ(g.labelled + g.held_out, 6u);
  size_t held = 0;
  for (uint64_t seq = 1; seq <= 6; ++seq) held += IsHoldout(seq, f.options.gate.holdout_every, 0) ? 1 : 0;
  EXPECT_EQ(g.held_out, held);
}

TEST(CatalogueTest, EnrolmentsAndRevocationsArePersisted) {
  StageFixture f;
  ASSERT_TRUE(EnrollDevice(f.state, nullptr, "cam-a", "key-a").ok());
  ASSERT_TRUE(EnrollDevice(f.state, nullptr, "cam-b", "key-b").ok());
  ASSERT_TRUE(EnrollDevice(f.state, nullptr, "cam-c", "").ok());  // no key: not in the registry
  {
    std::lock_guard lock(f.state.mu);
    f.state.devices.at("cam-b").enrolled = false;
  }
  ASSERT_TRUE(f.catalogue->PersistDevices().ok());
  auto records = f.catalogue->LoadDevices();
  ASSERT_TRUE(records.ok());
  ASSERT_EQ(records->size(), 2u);
  EXPECT_EQ((*records)[0].id, "cam-a");
  EXPECT_FALSE((*records)[0].revoked);
  EXPECT_EQ((*records)[1].public_key, "key-b");
  EXPECT_TRUE((*records)[1].revoked);
}

TEST(CatalogueTest, AGarbledRegistryIsCorruption) {
  StageFixture f;
  ASSERT_TRUE(f.store->PutMeta("registry/devices", "{not json").ok());
  EXPECT_TRUE(f.catalogue->LoadDevices().status().IsCorruption());
  ASSERT_TRUE(f.store->PutMeta("catalogue/groups", "[\"ghost\"]").ok());
  EXPECT_TRUE(f.catalogue->Load().IsCorruption());  // listed, but no record of it
}

}  // namespace
}  // namespace kd::learner
