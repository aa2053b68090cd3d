#include "learner/labeller.h"

#include <atomic>
#include <chrono>
#include <thread>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "learner/teacher_record.h"
#include "model/threads.h"
#include "tests/learner/stage_fixture.h"

namespace kd::learner {
namespace {
using testing::StageFixture;

// Labels every frame with random targets on the requested student grid, and records what it saw.
class FakeTeacher final : public TeacherPass {
 public:
  Result<DistillDataset> Label(const std::vector<media::Frame>& frames,
                               const std::vector<std::vector<uint8_t>>& /*jpegs*/, const DatasetOptions& options,
                               const std::atomic<bool>& cancel) override {
    calls.push_back(frames.size());
    threads_seen = at::get_num_threads();
    if (fail) return Status::Internal("teacher forward failed");
    if (cancel) return Status::Unavailable("cancelled");
    const int w = frames[0].width, h = frames[0].height;
    const int sw = options.student_long_side * w / std::max(w, h), sh = options.student_long_side * h / std::max(w, h);
    auto rows = testing::SyntheticRows(frames.size(), w, h, sw / 4 * 4, sh / 4 * 4);
    refine_seen = options.refine;
    if (jittered_person) {
      // One person per frame whose left edge jitters +-2 px around 10, frame after frame.
      for (size_t i = 0; i < frames.size(); ++i) {
        const float x1 = (frames[i].index % 2 == 0) ? 12.f : 8.f;
        rows.teacher_dets[i].detections = {Detection{{x1, 5, 40, 45}, 0.9f, 0}};
      }
    }
    return rows;
  }
  std::vector<size_t> calls;
  bool fail = false;
  bool jittered_person = false;
  config::LabelRefineOptions refine_seen;
  std::atomic<int> threads_seen{0};  // LibTorch's team size on the labelling thread, at the last call
};

// The batch and run expectations below are worked out for 8 frames per teacher batch (the
// default is 2, CPU's best; the logic does not depend on the number).
config::LearnerOptions LabelOptions(const std::string& store_path) {
  config::LearnerOptions o = testing::StageOptions(store_path);
  o.teacher.batch = 8;
  return o;
}

struct LabelFixture : StageFixture {
  LabelFixture() : StageFixture(LabelOptions) {}
  FakeTeacher teacher;
  LabelStage stage{state, *store, *catalogue, teacher, config::LabelRefineOptions{}};
  void Put(uint64_t seq, std::vector<uint8_t> jpeg, int64_t capture_time_us = 0) {
    ASSERT_TRUE(store->PutFrame({"cam-a", seq, capture_time_us, 0, std::move(jpeg)}).ok());
  }
};

TEST(LabelStageTest, FramesBeyondTheWatermarkAreLabelledInBatchesAndSplit) {
  LabelFixture f;
  const size_t batch = static_cast<size_t>(f.options.teacher.batch);
  const size_t n = batch + 3;
  for (uint64_t seq = 1; seq <= n; ++seq) f.Put(seq, testing::GreyJpeg(64, 48));
  bool did_work = false;
  ASSERT_TRUE(f.stage.LabelNext("cam-a", &did_work).ok());
  EXPECT_TRUE(did_work);
  ASSERT_TRUE(f.stage.LabelNext("cam-a", &did_work).ok());
  EXPECT_EQ(f.teacher.calls, (std::vector<size_t>{batch, 3}));
  did_work = false;
  ASSERT_TRUE(f.stage.LabelNext("cam-a", &did_work).ok());
  EXPECT_FALSE(did_work);  // nothing new
  for (uint64_t seq = 1; seq <= n; ++seq) {
    auto rec = f.store->GetTeacher("cam-a", seq).value();
    ASSERT_TRUE(rec.has_value()) << seq;
    EXPECT_TRUE(DecodeTeacherRow(rec->blob).ok()) << seq;
    EXPECT_FLOAT_EQ(rec->difficulty, 1.f);  // no deployed student yet: every frame counts as hard
  }
  EXPECT_EQ(f.store->GetMeta("label_wm/cam-a").value().value(), std::to_string(n));
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.label_wm.at("cam-a"), n);
  const Group& g = f.state.groups.at("cam-a");
  EXPECT_EQ(g.labelled + g.held_out, n);
}

config::LearnerOptions OneTeacherThreadOptions(const std::string& store_path) {
  config::LearnerOptions o = LabelOptions(store_path);
  o.teacher.threads = 1;
  return o;
}

// teacher.threads is the labeller thread's own LibTorch team, whatever the process's setting.
TEST(LabelStageTest, TheLabellerThreadRunsTheTeacherOnTeacherThreads) {
  model::SetComputeThreads(2);  // the process's (training.threads)
  StageFixture f(OneTeacherThreadOptions);
  FakeTeacher teacher;
  LabelStage stage{f.state, *f.store, *f.catalogue, teacher, config::LabelRefineOptions{}};
  ASSERT_TRUE(f.store->PutFrame({"cam-a", 1, 0, 0, testing::GreyJpeg(64, 48)}).ok());
  std::atomic<bool> stopping{false};
  std::thread labeller([&] { stage.Run(stopping); });
  for (int i = 0; i < 500 && teacher.threads_seen == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  stopping = true;
  stage.Wake();
  labeller.join();
  EXPECT_EQ(teacher.threads_seen, 1);
  EXPECT_EQ(at::get_num_threads(), 2);  // other threads keep the process's value
}

TEST(LabelStageTest, UndecodableFramesAreSkippedAndASizeChangeStartsANewBatch) {
  LabelFixture f;
  f.Put(1, testing::GreyJpeg(64, 48));
  f.Put(2, {0xff, 0xd8, 0x00});  // not a JPEG
  f.Put(3, testing::GreyJpeg(64, 48));
  f.Put(4, testing::GreyJpeg(96, 48));
  bool did_work = false;
  ASSERT_TRUE(f.stage.LabelNext("cam-a", &did_work).ok());
  ASSERT_TRUE(f.stage.LabelNext("cam-a", &did_work).ok());
  EXPECT_EQ(f.teacher.calls, (std::vector<size_t>{2, 1}));
  EXPECT_FALSE(f.store->GetTeacher("cam-a", 2).value().has_value());
  EXPECT_TRUE(f.store->GetTeacher("cam-a", 4).value().has_value());
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.label_wm.at("cam-a"), 4u);
}

// A burst (frames 67 ms apart) longer than a batch is labelled as one run, its boxes smoothed along
// the run; a frame 2 s later starts the next batch. The teacher pass gets the recipe's [refine].
TEST(LabelStageTest, ABurstIsLabelledAsOneRunAndItsBoxesAreSmoothedAlongIt) {
  LabelFixture f;
  f.teacher.jittered_person = true;
  const size_t batch = static_cast<size_t>(f.options.teacher.batch);
  const size_t n = batch + 3;
  constexpr int64_t kFrameUs = 66'667;
  for (uint64_t seq = 1; seq <= n; ++seq) f.Put(seq, testing::GreyJpeg(64, 48), static_cast<int64_t>(seq) * kFrameUs);
  f.Put(n + 1, testing::GreyJpeg(64, 48), static_cast<int64_t>(n) * kFrameUs + 2'000'000);
  bool did_work = false;
  ASSERT_TRUE(f.stage.LabelNext("cam-a", &did_work).ok());
  ASSERT_TRUE(f.stage.LabelNext("cam-a", &did_work).ok());
  EXPECT_EQ(f.teacher.calls, (std::vector<size_t>{n, 1}));
  EXPECT_EQ(f.teacher.refine_seen, config::LabelRefineOptions{});
  auto row_of = [&](uint64_t seq) { return DecodeTeacherRow(f.store->GetTeacher("cam-a", seq).value()->blob).value(); };
  ASSERT_EQ(n, 11u) << "the expectations below are worked out for teacher.batch = 8";
  // Seq 6 of 1..11: the window is 2..10 (radius 4), 5 even and 4 odd seqs: x1 = 10 + (5*2 - 4*2) / 9.
  const auto mid = row_of(6);
  ASSERT_EQ(mid.teacher.size(), 1u);
  EXPECT_NEAR(mid.teacher[0].box.x1, 10.f + 2.f / 9.f, 1e-4);
  ASSERT_EQ(mid.pseudo.size(), 1u);  // the pseudo-labels are the same box in student pixels
  EXPECT_NEAR(mid.pseudo[0].box.x1, mid.teacher[0].box.x1 * static_cast<float>(mid.student_width) / 64.f, 1e-3);
  // The run's first frame has no neighbour before it: its box stays; the lone frame too.
  EXPECT_FLOAT_EQ(row_of(1).teacher[0].box.x1, 8.f);
  EXPECT_FLOAT_EQ(row_of(n + 1).teacher[0].box.x1, (n + 1) % 2 == 0 ? 12.f : 8.f);
}

TEST(LabelStageTest, ATeacherFailureLeavesTheWatermarkSoTheBatchIsRetried) {
  LabelFixture f;
  f.Put(1, testing::GreyJpeg(64, 48));
  f.teacher.fail = true;
  bool did_work = false;
  const Status st = f.stage.LabelNext("cam-a", &did_work);
  EXPECT_EQ(st.code(), Status::Code::kInternal);
  EXPECT_FALSE(f.store->GetMeta("label_wm/cam-a").value().has_value());
  f.teacher.fail = false;
  ASSERT_TRUE(f.stage.LabelNext("cam-a", &did_work).ok());
  EXPECT_TRUE(f.store->GetTeacher("cam-a", 1).value().has_value());
}

TEST(LabelStageTest, ACancelledBatchLeavesTheWatermarkForTheNextStart) {
  LabelFixture f;
  f.Put(1, testing::GreyJpeg(64, 48));
  const std::atomic<bool> stopping{true};
  bool did_work = false;
  EXPECT_EQ(f.stage.LabelNext("cam-a", &did_work, stopping).code(), Status::Code::kUnavailable);
  EXPECT_FALSE(f.store->GetMeta("label_wm/cam-a").value().has_value());
  EXPECT_FALSE(f.store->GetTeacher("cam-a", 1).value().has_value());
  ASSERT_TRUE(f.stage.LabelNext("cam-a", &did_work).ok());
  EXPECT_TRUE(f.store->GetTeacher("cam-a", 1).value().has_value());
}

}  // namespace
}  // namespace kd::learner
