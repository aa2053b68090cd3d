// The learner's stages at once, as kdlearnd runs them: ingest, labeller, publisher, control and
// admin each on their own thread over one LoopState, Catalogue, Publisher and store. The checks are
// light (counts add up, every request is answered); the point is the ThreadSanitizer build, which
// reports any access to shared state outside LoopState::mu (see docs/DEVELOPING.md, "Sanitizers").
#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "learner/admin.h"
#include "learner/control.h"
#include "learner/ingest.h"
#include "learner/labeller.h"
#include "tests/learner/stage_fixture.h"

namespace kd::learner {
namespace {
using testing::StageFixture;

class RandomTeacher final : public TeacherPass {
 public:
  Result<DistillDataset> Label(const std::vector<media::Frame>& frames,
                               const std::vector<std::vector<uint8_t>>& /*jpegs*/, const DatasetOptions& options,
                               const std::atomic<bool>& /*cancel*/) override {
    const int w = frames[0].width, h = frames[0].height;
    const int sw = options.student_long_side * w / std::max(w, h), sh = options.student_long_side * h / std::max(w, h);
    return testing::SyntheticRows(frames.size(), w, h, sw / 4 * 4, sh / 4 * 4);
  }
};

TEST(LearnerStagesConcurrencyTest, StagesShareLoopStateOnTheirOwnThreads) {
  StageFixture f;
  // cam-a is only labelled (no deployed student: the fake teacher's grid is the config's); cam-b's
  // group gets versions published while its device asks for status, chunks and reports.
  f.MakeGroup("cam-b");
  ASSERT_TRUE(f.publisher->Publish("cam-b", StageFixture::Weights(1), {}).ok());
  std::atomic<bool> draining{false}, stop{false};
  std::atomic<int> wakes{0};
  RandomTeacher teacher;
  IngestStage ingest(f.state, *f.store, f.clock, draining, [&] { ++wakes; });
  LabelStage label(f.state, *f.store, *f.catalogue, teacher, config::LabelRefineOptions{.enabled = false});
  ControlStage control(f.state, *f.publisher, *f.catalogue, f.clock);
  AdminStage admin(f.state, *f.catalogue, *f.publisher, nullptr,
                   StatusSources{f.store.get(), nullptr, nullptr, &draining}, f.clock);
  constexpr uint64_t kFrames = 24, kPublishes = 3;
  const auto jpeg = testing::GreyJpeg(64, 48);

  std::vector<std::thread> threads;
  threads.emplace_back([&] {  // ingest: batches of 2 frames per camera
    for (uint64_t seq = 1; seq <= kFrames; seq += 2) {
      std::vector<wire::Incoming> batch;
      for (const char* dev : {"cam-a", "cam-b"}) {
        for (uint64_t s = seq; s < seq + 2; ++s)
          batch.push_back(StageFixture::Message(dev, wire::MsgType::kFrame, s, jpeg));
      }
      for (const auto& r : ingest.StoreAndAck(batch)) EXPECT_EQ(r.message.header.type, wire::MsgType::kAck);
    }
  });
  std::atomic<bool> labelled_all{false};
  threads.emplace_back([&] {  // labeller: cam-a until everything ingested is labelled
    while (!stop) {
      bool did_work = false;
      EXPECT_TRUE(label.LabelNext("cam-a", &did_work).ok());
      std::lock_guard lock(f.state.mu);
      auto wm = f.state.label_wm.find("cam-a");
      if (wm != f.state.label_wm.end() && wm->second == kFrames) labelled_all = true;
    }
  });
  std::atomic<bool> published_all{false};
  threads.emplace_back([&] {  // trainer/publisher: new versions of cam-b's group
    for (uint64_t i = 0; i < kPublishes; ++i) EXPECT_TRUE(f.PublishAsDelta("cam-b", 2 + i).ok());
    published_all = true;
  });
  threads.emplace_back([&] {  // control: cam-b's status, chunk requests and install reports
    uint64_t seq = 0;
    while (!stop) {
      auto status = StageFixture::Message("cam-b", wire::MsgType::kStatus, ++seq);
      status.message.header.status.running_version = 1;
      status.message.header.status.floor_version = 1;
      const auto reply = control.Handle(status).message;
      EXPECT_EQ(reply.header.type, wire::MsgType::kStatusReply);
      std::string object;
      {
        std::lock_guard lock(f.state.mu);
        const Group& g = f.state.groups.at("cam-b");
        object = g.versions.rbegin()->second.full_sha;
      }
      auto chunk = StageFixture::Message("cam-b", wire::MsgType::kChunkRequest, ++seq);
      chunk.message.header.object_id = object;
      chunk.message.header.length = 512;
      (void)control.Handle(chunk);  // a pruned version's artefact is an error reply: both are fine
      auto report = StageFixture::Message("cam-b", wire::MsgType::kUpdateReport, ++seq);
      report.message.header.model_version = reply.header.desired_version;
      report.message.header.outcome = wire::UpdateOutcome::kCommitted;
      EXPECT_EQ(control.Handle(report).message.header.type, wire::MsgType::kAck);
      control.Tick();
    }
  });
  threads.emplace_back([&] {  // admin: status documents while all of that happens
    while (!stop) {
      const auto j = nlohmann::json::parse(admin.HandleRequest(R"({"cmd":"status"})"));
      EXPECT_TRUE(j.value("ok", false));
    }
  });
  while (!(labelled_all && published_all)) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  stop = true;
  for (auto& t : threads) t.join();

  EXPECT_GE(wakes.load(), 1);
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.frames_received, 2 * kFrames);
  const Group& a = f.state.groups.at("cam-a");
  EXPECT_EQ(a.labelled + a.held_out, kFrames);
  EXPECT_EQ(f.state.groups.at("cam-b").latest, 1 + kPublishes);
}

}  // namespace
}  // namespace kd::learner
