// The trainer stage end to end on real frames (real_asset): the real teacher labels 24 frames of
// vtest.avi through the labeller stage, the factory model is published as v1, and one training
// round is gated on the held-out frames and published as v2 with a delta. Skipped (GTEST_SKIP)
// without the assets. About 15 s on 2 cores.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/assets.h"
#include "base/clock.h"
#include "learner/labeller.h"
#include "learner/remote_teacher.h"
#include "learner/teacher_record.h"
#include "learner/trainer.h"
#include "media/image_ops.h"
#include "media/video_source.h"
#include "model/teacher.h"
#include "tests/learner/label_worker.h"
#include "tests/learner/stage_fixture.h"

namespace kd::learner {
namespace {
using testing::StageFixture;

config::LearnerOptions RoundOptions(const std::string& store_path) {
  config::LearnerOptions o = testing::StageOptions(store_path);
  o.training.min_frames = 8;
  o.training.round_frames = 16;
  o.training.round_iterations = 4;
  o.gate.margin = -1;               // any candidate passes: this test is about the path, not the accuracy
  o.publish.delta_max_ap_loss = 1;  // and the delta always ships (GateTest covers the rule)
  return o;
}

TEST(TrainStageTest, ARoundOnRealFramesIsGatedAndPublishedWithADelta) {
  const std::string graph = AssetPath("centernet.json"), video = AssetPath("vtest.avi");
  if (!std::filesystem::exists(graph) || !std::filesystem::exists(video)) {
    GTEST_SKIP() << "assets missing: run scripts/fetch_assets.sh";
  }
  auto teacher = model::CenterNetTeacher::Load(graph);
  ASSERT_TRUE(teacher.ok()) << teacher.status().ToString();
  StageFixture f(RoundOptions);
  {
    std::lock_guard lock(f.state.mu);
    f.state.GroupFor("cam-a");
  }
  media::SourceOptions so;
  so.end = 24;
  auto source = media::OpenSource(video, so);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  for (uint64_t seq = 1;; ++seq) {
    auto frame = (*source)->Next();
    ASSERT_TRUE(frame.ok());
    if (!*frame) break;
    ASSERT_TRUE(f.store->PutFrame({"cam-a", seq, 0, 0, media::EncodeJpeg(**frame).value()}).ok());
  }

  // The factory model (an untrained student at the camera's student size) is version 1.
  model::StudentOptions arch;
  arch.input_width = 384;
  arch.input_height = 288;
  model::LoadedStudent factory;
  factory.student = model::Student(arch);
  factory.student->eval();
  TrainStage trainer(f.state, *f.store, *f.catalogue, *f.publisher, **teacher, torch::kCPU, config::DistillOptions{},
                     &factory, f.clock);
  trainer.PublishFactoryModels();
  {
    std::lock_guard lock(f.state.mu);
    ASSERT_EQ(f.state.groups.at("cam-a").latest, 1u);
  }

  CenterNetTeacherPass pass(**teacher, /*chunk_frames=*/4);
  {
    const std::atomic<bool> cancelled{true};  // a stopping learner: no forward starts
    EXPECT_EQ(pass.Label(std::vector<media::Frame>(5), {}, DatasetOptions{}, cancelled).status().code(),
              Status::Code::kUnavailable);
  }
  LabelStage labeller(f.state, *f.store, *f.catalogue, pass, config::LabelRefineOptions{.enabled = false});
  for (bool did_work = true; did_work;) {
    did_work = false;
    ASSERT_TRUE(labeller.LabelNext("cam-a", &did_work).ok());
  }

  const std::atomic<bool> stopping{false};
  ASSERT_TRUE(trainer.Round("cam-a", stopping));
  std::lock_guard lock(f.state.mu);
  const Group& g = f.state.groups.at("cam-a");
  EXPECT_EQ(g.labelled + g.held_out, 24u);
  const auto round = nlohmann::json::parse(g.last_round_json);
  EXPECT_EQ(round.at("gate"), "pass") << round.dump();
  EXPECT_EQ(round.at("steps"), 4) << round.dump();
  EXPECT_EQ(round.at("holdout_frames"), 3) << "the newest holdout_window (3) held-out frames";
  EXPECT_GE(round.at("ap50_candidate").get<double>(), 0.0);
  // Both the delta's reconstruction and the full weights were scored; the AP gate never reads above AP50.
  EXPECT_LE(round.at("ap_candidate").get<double>(), round.at("ap50_candidate").get<double>());
  EXPECT_TRUE(round.contains("ap_full")) << round.dump();
  EXPECT_FALSE(round.contains("delta")) << "delta_max_ap_loss = 1 never drops the delta";
  ASSERT_EQ(g.latest, 2u);
  EXPECT_EQ(g.versions.at(2).delta_base, 1u);  // the candidate is the delta devices will apply
  EXPECT_EQ(update::StateDigest(g.deployed->state), g.versions.at(2).digest);
}

// The teacher on a label worker (learner/remote_teacher.h) stores what the coordinator's own
// teacher would: the same JPEGs, options and teacher give the same teacher rows, byte for byte.
TEST(RemoteTeacherRealTest, ALabelWorkersRowsAreTheCoordinatorsOwn) {
  const std::string graph = AssetPath("centernet.json"), video = AssetPath("vtest.avi");
  if (!std::filesystem::exists(graph) || !std::filesystem::exists(video)) {
    GTEST_SKIP() << "assets missing: run scripts/fetch_assets.sh";
  }
  auto teacher = model::CenterNetTeacher::Load(graph);
  ASSERT_TRUE(teacher.ok()) << teacher.status().ToString();
  media::SourceOptions so;
  so.end = 4;
  auto source = media::OpenSource(video, so);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  std::vector<media::Frame> frames;
  std::vector<std::vector<uint8_t>> jpegs;
  for (auto frame = (*source)->Next(); frame.ok() && *frame; frame = (*source)->Next()) {
    jpegs.push_back(media::EncodeJpeg(**frame).value());
    frames.push_back(media::DecodeJpeg(jpegs.back()).value());  // the labeller decodes what it stored
    frames.back().index = static_cast<int64_t>(frames.size());
  }
  ASSERT_EQ(frames.size(), 4u);
  DatasetOptions options;
  options.refine = {.enabled = true, .extra_long_sides = {640}};

  auto server = cluster::KvStore::Serve({.host = "127.0.0.1", .port = 0, .timeout_s = 5});
  ASSERT_TRUE(server.ok());
  auto pool = cluster::WorkerPool::Open(**server, {.secret = testing::kClusterSecret}, SystemClock::Get());
  ASSERT_TRUE(pool.ok());
  std::atomic<bool> stop_polling{false};
  std::thread polling([&] {  // as the coordinator's membership thread
    while (!stop_polling) {
      (void)(*pool)->Poll();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  CenterNetTeacherPass local(**teacher, /*chunk_frames=*/2), on_worker(**teacher, /*chunk_frames=*/2);
  auto worker = std::make_unique<testing::LabelWorker>((*server)->port(), cluster::WorkerRole::kLabel, on_worker);
  RemoteTeacherPass remote(**pool, local);
  const std::atomic<bool> never{false};
  auto here = local.Label(frames, jpegs, options, never);
  auto there = remote.Label(frames, jpegs, options, never);
  ASSERT_TRUE(here.ok() && there.ok()) << here.status().ToString() << " / " << there.status().ToString();
  EXPECT_EQ(remote.frames_remote(), 4u) << "the batch was labelled here, not on the worker";
  ASSERT_EQ(there->size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(EncodeTeacherRow(*there, i), EncodeTeacherRow(*here, i)) << "row " << i;
  EXPECT_TRUE(torch::equal(there->images, here->images));
  worker.reset();
  stop_polling = true;
  polling.join();
}

}  // namespace
}  // namespace kd::learner
