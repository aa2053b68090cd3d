#include "learner/trainer.h"

#include <gtest/gtest.h>

#include "learner/gate.h"
#include "learner/teacher_record.h"
#include "tests/learner/stage_fixture.h"

namespace kd::learner {
namespace {
using testing::StageFixture;

TEST(GateTest, WaitsForHeldOutFramesThenNeedsTheMargin) {
  config::LearnerGateOptions gate;
  gate.min_holdout = 10;
  gate.margin = 0.01;
  EXPECT_EQ(JudgeCandidate(9, 0.99, 0.1, gate), GateVerdict::kWaiting);
  EXPECT_EQ(JudgeCandidate(10, 0.62, 0.60, gate), GateVerdict::kPass);
  EXPECT_EQ(JudgeCandidate(10, 0.605, 0.60, gate), GateVerdict::kFail);
  EXPECT_EQ(JudgeCandidate(10, 0.1, 0.0, gate), GateVerdict::kPass);  // no deployed model yet
  gate.margin = -0.05;  // a negative margin accepts a small loss (e.g. to track a drifting scene)
  EXPECT_EQ(JudgeCandidate(10, 0.56, 0.60, gate), GateVerdict::kPass);
  // The gate decides on AP (.50:.95), which ScoreOnHoldout reports as .ap; AP50 is only reported.
  EXPECT_STREQ(GateVerdictName(GateVerdict::kWaiting), "waiting for held-out frames");
}

TEST(GateTest, ADeltaShipsOnlyWhileItKeepsTheFullWeightsAccuracy) {
  config::LearnerPublishOptions publish;
  EXPECT_DOUBLE_EQ(publish.delta_max_ap_loss, 0.01);
  EXPECT_TRUE(DeltaKeepsAccuracy(0.50, 0.50, publish));
  EXPECT_TRUE(DeltaKeepsAccuracy(0.495, 0.50, publish));
  EXPECT_FALSE(DeltaKeepsAccuracy(0.48, 0.50, publish));
  EXPECT_FALSE(DeltaKeepsAccuracy(0.35, 0.77, publish));  // measured in the demo: top-k lost 0.42 AP
  EXPECT_TRUE(DeltaKeepsAccuracy(0.60, 0.55, publish));   // a delta may also score higher
  publish.delta_max_ap_loss = 1.0;
  EXPECT_TRUE(DeltaKeepsAccuracy(0.0, 0.9, publish));
}

TEST(GateTest, TheUpdateLadderTriesTheWideDeltaOnlyWhenTheTopKFallsShort) {
  config::LearnerPublishOptions publish;  // top-k 0.2, wide 1.0, at most 0.01 AP lost
  EXPECT_DOUBLE_EQ(publish.delta_wide_fraction, 1.0);
  int calls = 0;
  const auto wide = [&calls](std::optional<double> ap) {
    return [&calls, ap]() -> std::optional<double> {
      ++calls;
      return ap;
    };
  };
  // The top-k keeps the accuracy: the wide delta is never made.
  EXPECT_EQ(ClimbUpdateLadder(0.80, 0.795, wide(0.80), publish), UpdateRung::kTopKDelta);
  EXPECT_EQ(calls, 0);
  // The top-k lost 0.05 AP (as in the twelfth stop's demos): the wide delta keeps it and ships.
  EXPECT_EQ(ClimbUpdateLadder(0.80, 0.75, wide(0.799), publish), UpdateRung::kWideDelta);
  EXPECT_EQ(calls, 1);
  // Both fall short, or the wide delta could not be made: full weights.
  EXPECT_EQ(ClimbUpdateLadder(0.80, 0.75, wide(0.78), publish), UpdateRung::kFull);
  EXPECT_EQ(ClimbUpdateLadder(0.80, 0.75, wide(std::nullopt), publish), UpdateRung::kFull);
  EXPECT_EQ(calls, 3);
  // A wide fraction at or below the top-k fraction turns the rung off: nothing is tried.
  publish.delta_wide_fraction = publish.delta_max_fraction;
  EXPECT_EQ(ClimbUpdateLadder(0.80, 0.75, wide(0.80), publish), UpdateRung::kFull);
  EXPECT_EQ(calls, 3);
  EXPECT_STREQ(UpdateRungName(UpdateRung::kWideDelta), "wide delta");
}

TEST(GateTest, ScoreOnHoldoutIsDeterministicAndRefusesWeightsThatDoNotFit) {
  const auto arch = testing::TinyStudent();
  auto data = testing::SyntheticRows(4, 64, 64, 64, 64);
  // One confident teacher box per frame as ground truth.
  for (auto& fd : data.teacher_dets) fd.detections = {Detection{{8, 8, 40, 40}, 0.9f, 0}};
  const auto weights = StageFixture::Weights(1);
  auto a = ScoreOnHoldout(arch, weights, data, config::LearnerGateOptions{});
  auto b = ScoreOnHoldout(arch, weights, data, config::LearnerGateOptions{});
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_DOUBLE_EQ(a->ap, b->ap);
  EXPECT_DOUBLE_EQ(a->ap50, b->ap50);
  // AP averages AP over IoU .50..95, so it can never exceed AP50.
  EXPECT_GE(a->ap, 0.0);
  EXPECT_LE(a->ap, a->ap50);
  EXPECT_LE(a->ap50, 1.0);
  auto wrong = update::TensorMap{};
  EXPECT_FALSE(ScoreOnHoldout(arch, wrong, data, config::LearnerGateOptions{}).ok());
}

TEST(AssembleFromStoreTest, StoredFramesAndRecordsBecomeADatasetSkippingWhatIsGone) {
  StageFixture f;
  const auto rows = testing::SyntheticRows(3, 64, 48, 32, 24);
  for (uint64_t seq = 1; seq <= 3; ++seq) {
    ASSERT_TRUE(f.store->PutFrame({"cam-a", seq, 0, 0, testing::GreyJpeg(64, 48, 40 * seq)}).ok());
    ASSERT_TRUE(f.store->PutTeacher("cam-a", seq, EncodeTeacherRow(rows, seq - 1), 0.5f, kTeacherBlobSchema).ok());
  }
  ASSERT_TRUE(f.store->PutFrame({"cam-a", 4, 0, 0, testing::GreyJpeg(64, 48)}).ok());  // not labelled
  auto data = AssembleFromStore(*f.store, {{"cam-a", 3}, {"cam-a", 4}, {"cam-a", 1}, {"cam-b", 1}});
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  ASSERT_EQ(data->size(), 2u);  // seq 4 has no record, cam-b no frame
  EXPECT_EQ(data->student_width, 32);
  EXPECT_TRUE(torch::equal(data->teacher_heat[0], rows.teacher_heat[2]));  // in the order asked
  EXPECT_TRUE(torch::equal(data->teacher_heat[1], rows.teacher_heat[0]));
}

}  // namespace
}  // namespace kd::learner
