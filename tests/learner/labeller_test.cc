#include "learner/labeller.h"

#include <gtest/gtest.h>

#include "learner/teacher_record.h"
#include "tests/learner/stage_fixture.h"

namespace kd::learner {
namespace {
using testing::StageFixture;

// Labels every frame with random targets on the requested student grid, and records what it saw.
class FakeTeacher final : public TeacherPass {
 public:
  Result<DistillDataset> Label(const std::vector<media::Frame>& frames, const DatasetOptions& options) override {
    calls.push_back(frames.size());
    if (fail) return Status::Internal("teacher forward failed");
    const int w = frames[0].width, h = frames[0].height;
    const int sw = options.student_long_side * w / std::max(w, h), sh = options.student_long_side * h / std::max(w, h);
    return testing::SyntheticRows(frames.size(), w, h, sw / 4 * 4, sh / 4 * 4);
  }
  std::vector<size_t> calls;
  bool fail = false;
};

struct LabelFixture : StageFixture {
  FakeTeacher teacher;
  LabelStage stage{state, *store, *catalogue, teacher};
  void Put(uint64_t seq, std::vector<uint8_t> jpeg) {
    ASSERT_TRUE(store->PutFrame({"cam-a", seq, 0, 0, std::move(jpeg)}).ok());
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

}  // namespace
}  // namespace kd::learner
