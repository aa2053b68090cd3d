// The checked run of a student: the head follows the architecture (an NMS-free student has only
// its one-to-one outputs), LibTorch exceptions become Status values, and CheckDeployable refuses
// what a device could not run. Small random students, no assets.
#include "model/checked_run.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/weights_file.h"

namespace kd::model {
namespace {

Student SmallStudent(bool one_to_one) {
  StudentOptions o;
  o.width = 8;
  o.head_channels = 8;
  o.input_width = 128;
  o.input_height = 96;
  o.one_to_one = one_to_one;
  torch::manual_seed(1);
  Student s(o);
  s->eval();
  return s;
}

torch::Tensor Grey(const StudentOptions& o) {
  return torch::full({2, 3, o.input_height, o.input_width}, 100, torch::kUInt8);
}

TEST(CheckedRunTest, TheHeadFollowsTheArchitecture) {
  for (bool o2o : {false, true}) {
    Student s = SmallStudent(o2o);
    FusedStudent fused(*s);
    const StudentOutput raw = fused.Forward(Grey(s->options()));
    // What used to crash kdedge: a fused NMS-free student does not compute the one-to-many branch.
    EXPECT_EQ(raw.cls.defined(), !o2o);
    EXPECT_EQ(raw.cls_o2o.defined(), o2o);
    auto head = ForwardChecked(fused, Grey(s->options()));
    ASSERT_TRUE(head.ok()) << head.status().ToString();
    EXPECT_EQ(head->cls.sizes().vec(), (std::vector<int64_t>{2, 6, 24, 32}));
    EXPECT_EQ(head->box.sizes().vec(), (std::vector<int64_t>{2, 4, 24, 32}));
    EXPECT_TRUE(AllFinite(*head));
    DecodeOptions dec;
    dec.score_threshold = 0;  // an untrained student: keep everything so decoding has work to do
    auto dets = DetectChecked(fused, Grey(s->options()), 640, 480, dec);
    ASSERT_TRUE(dets.ok()) << dets.status().ToString();
    ASSERT_EQ(dets->detections.size(), 2u);
    EXPECT_FALSE(dets->detections[0].empty());
    EXPECT_TRUE(dets->finite);
    EXPECT_TRUE(CheckDeployable(fused).ok()) << (o2o ? "one-to-one" : "one-to-many");
  }
}

TEST(CheckedRunTest, AForwardThatThrowsIsAStatusNotACrash) {
  Student s = SmallStudent(true);
  {
    // A last conv whose weight no longer fits its input: LibTorch throws inside conv2d.
    torch::NoGradGuard ng;
    s->named_parameters()["cls_o2o.weight"].set_data(torch::zeros({6, 3, 1, 1}));
  }
  FusedStudent fused(*s);
  auto head = ForwardChecked(fused, Grey(s->options()));
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().code(), Status::Code::kInternal);
  EXPECT_EQ(head.status().message().find('\n'), std::string::npos) << "one line, no backtrace";
  auto dets = DetectChecked(fused, Grey(s->options()), 640, 480, DecodeOptions{});
  EXPECT_EQ(dets.status().code(), Status::Code::kInternal);
  EXPECT_EQ(CheckDeployable(fused).code(), Status::Code::kInternal);
}

TEST(CheckedRunTest, WrongInputSizeIsRefused) {
  Student s = SmallStudent(false);
  FusedStudent fused(*s);
  // 64x64 runs through the convolutions but gives a 16x16 map, not the architecture's 32x24.
  auto head = ForwardChecked(fused, torch::zeros({1, 3, 64, 64}, torch::kUInt8));
  ASSERT_FALSE(head.ok());
  EXPECT_EQ(head.status().code(), Status::Code::kFailedPrecondition);
}

TEST(CheckedRunTest, NonFiniteOutputsAreReportedAndNotDeployable) {
  Student s = SmallStudent(true);
  {
    torch::NoGradGuard ng;
    s->named_parameters()["box_o2o.bias"].fill_(std::nanf(""));
  }
  FusedStudent fused(*s);
  auto head = ForwardChecked(fused, Grey(s->options()));
  ASSERT_TRUE(head.ok()) << "NaN is a value, not an error of the run";
  EXPECT_FALSE(AllFinite(*head));
  const Status st = CheckDeployable(fused);
  EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition) << st.ToString();
  auto bytes = EncodeWeights(*s, {}, WeightDtype::kF32);
  ASSERT_TRUE(bytes.ok());
  EXPECT_EQ(CheckDeployableWeights(*bytes).code(), Status::Code::kFailedPrecondition);
}

TEST(CheckedRunTest, DeployableWeightsAreDecodedAsADeviceDecodesThem) {
  for (bool o2o : {false, true}) {
    Student s = SmallStudent(o2o);
    auto bytes = EncodeWeights(*s, {}, WeightDtype::kF16);
    ASSERT_TRUE(bytes.ok());
    EXPECT_TRUE(CheckDeployableWeights(*bytes).ok());
    std::vector<uint8_t> damaged = *bytes;
    damaged.resize(damaged.size() / 2);
    EXPECT_FALSE(CheckDeployableWeights(damaged).ok());
  }
}

}  // namespace
}  // namespace kd::model
