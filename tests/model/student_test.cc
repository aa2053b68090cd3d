#include "model/student.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/decode.h"
#include "model/frame_tensor.h"
#include "model/inference.h"

namespace kd::model {
namespace {

TEST(StudentTest, OutputShapesFollowTheOptions) {
  StudentOptions o;
  o.input_width = 128;
  o.input_height = 96;
  o.one_to_one = true;
  Student s(o);
  auto out = s->forward(torch::rand({2, 3, 96, 128}) * 255);
  EXPECT_EQ(out.cls.sizes(), (std::vector<int64_t>{2, 6, 24, 32}));
  EXPECT_EQ(out.box.sizes(), (std::vector<int64_t>{2, 4, 24, 32}));
  EXPECT_EQ(out.cls_o2o.sizes(), out.cls.sizes());
  EXPECT_EQ(out.tap.sizes(), (std::vector<int64_t>{2, 32, 24, 32}));
  EXPECT_EQ(out.neck.sizes(), out.tap.sizes());
  EXPECT_GE(out.box.min().item<float>(), 0.f);
  // The neck tap puts the tower after the tap too; the tower tap only the final convs.
  auto after_tower = StudentPostTapParameterNames(*s, CrossKdTap::kTower);
  auto after_neck = StudentPostTapParameterNames(*s, CrossKdTap::kNeck);
  EXPECT_FALSE(after_tower.empty());
  EXPECT_EQ(std::count(after_tower.begin(), after_tower.end(), "tower.0.weight"), 0);
  EXPECT_EQ(std::count(after_neck.begin(), after_neck.end(), "tower.0.weight"), 1);
  EXPECT_GT(after_neck.size(), after_tower.size());
  for (const auto& n : after_tower) EXPECT_EQ(std::count(after_neck.begin(), after_neck.end(), n), 1) << n;
}

// The one-to-one branch at stride 8 runs on the head's features pooled 2x2: a quarter of the
// locations, decoded around anchors 8 px apart; its architecture names the stride, while a
// stride-4 architecture's JSON is what it was before the key existed.
TEST(StudentTest, AOneToOneBranchAtStride8HasHalfTheGridEachWay) {
  StudentOptions o;
  o.input_width = 128;
  o.input_height = 96;
  o.one_to_one = true;
  const std::string stride4_json = o.ArchJson();
  EXPECT_EQ(stride4_json.find("one_to_one_stride"), std::string::npos);
  o.one_to_one_stride = 8;
  Student s(o);
  auto out = s->forward(torch::rand({2, 3, 96, 128}) * 255);
  EXPECT_EQ(out.cls.sizes(), (std::vector<int64_t>{2, 6, 24, 32}));
  EXPECT_EQ(out.cls_o2o.sizes(), (std::vector<int64_t>{2, 6, 12, 16}));
  EXPECT_EQ(out.box_o2o.sizes(), (std::vector<int64_t>{2, 4, 12, 16}));
  EXPECT_EQ(o.inference_stride(), 8);
  auto back = StudentOptions::FromArchJson(o.ArchJson());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->one_to_one_stride, 8);
  EXPECT_EQ(StudentOptions::FromArchJson(stride4_json)->one_to_one_stride, 4);
  o.one_to_one_stride = 16;
  EXPECT_TRUE(o.Validate().IsInvalidArgument());

  // Decoding: cell (x=3, y=2) of the stride-8 grid is the anchor (24, 16) in input pixels.
  StudentOptions one;
  one.input_width = one.input_height = 64;
  one.labels = {0};
  one.one_to_one = true;
  one.one_to_one_stride = 8;
  StudentOutput head;
  head.cls_o2o = torch::full({1, 1, 8, 8}, -10.f);
  head.cls_o2o[0][0][2][3] = 3.f;
  head.box_o2o = torch::full({1, 4, 8, 8}, 4.f);
  const auto dets = DecodeStudentOutput(head, one, 64, 64, DecodeOptions{})[0];
  ASSERT_EQ(dets.size(), 1u);
  EXPECT_FLOAT_EQ(dets[0].box.x1, 20.f);
  EXPECT_FLOAT_EQ(dets[0].box.y2, 20.f);
}

TEST(StudentTest, OptionsValidateAndRoundTrip) {
  StudentOptions o;
  o.input_width = 100;
  EXPECT_TRUE(o.Validate().IsInvalidArgument());
  o.input_width = 384;
  o.labels = {0, 99};
  EXPECT_TRUE(o.Validate().IsInvalidArgument());
  o.labels = {0, 7};
  auto back = StudentOptions::FromArchJson(o.ArchJson());
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->ArchJson(), o.ArchJson());
  EXPECT_FALSE(StudentOptions::FromArchJson("{}").ok());
}

TEST(DecodeTest, PeaksBecomeBoxesInOriginalPixels) {
  auto heat = torch::zeros({2, 8, 8});
  heat[0][2][3] = 0.9f;
  heat[0][2][4] = 0.5f;  // not a 3x3 local maximum: suppressed by peak extraction
  heat[1][6][6] = 0.4f;
  auto box = torch::full({4, 8, 8}, 2.f);  // l=t=r=b=2 px
  DecodeOptions opt;
  auto d = DecodeDense(heat, box, {0, 7}, 4, 2.f, 1.f, opt);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].label, 0);
  EXPECT_FLOAT_EQ(d[0].score, 0.9f);
  // cell (x=3,y=2) -> centre (12,8) in input px; box (10,6,14,10); x scaled by 2.
  EXPECT_FLOAT_EQ(d[0].box.x1, 20.f);
  EXPECT_FLOAT_EQ(d[0].box.x2, 28.f);
  EXPECT_FLOAT_EQ(d[0].box.y1, 6.f);
  EXPECT_EQ(d[1].label, 7);
  opt.peak_extraction = false;
  opt.nms_iou = 0;
  EXPECT_EQ(DecodeDense(heat, box, {0, 7}, 4, 1.f, 1.f, opt).size(), 3u);
  auto boxes = DistancesToBoxes(box.unsqueeze(0), 4);
  EXPECT_FLOAT_EQ(boxes[0][0][2][3].item<float>(), 10.f);  // x1 at cell (3,2)
  EXPECT_FLOAT_EQ(boxes[0][3][2][3].item<float>(), 10.f);  // y2
}

// A one-to-one branch decodes without peak extraction and NMS; the peak test keeps only its 3x3
// local maxima (still no NMS).
TEST(InferenceTest, OneToOnePeakTestDropsANeighbourOfAStrongerLocation) {
  StudentOptions o;
  o.input_width = 32;
  o.input_height = 32;
  o.labels = {0};
  o.one_to_one = true;
  StudentOutput out;
  out.cls_o2o = torch::full({1, 1, 8, 8}, -10.f);
  out.cls_o2o[0][0][2][3] = 2.f;
  out.cls_o2o[0][0][2][4] = 1.f;  // beside the stronger one: overlapping box, not a local maximum
  out.cls_o2o[0][0][6][6] = 0.f;
  out.box_o2o = torch::full({1, 4, 8, 8}, 4.f);
  out.cls = torch::full({1, 1, 8, 8}, 5.f);  // the one-to-many branch is not what a one-to-one student decodes
  out.box = out.box_o2o;
  DecodeOptions opt;
  EXPECT_EQ(DecodeStudentOutput(out, o, 32, 32, opt)[0].size(), 3u);
  opt.one_to_one_peak_test = true;
  const auto peaks = DecodeStudentOutput(out, o, 32, 32, opt)[0];
  ASSERT_EQ(peaks.size(), 2u);
  EXPECT_NEAR(peaks[0].score, 1.f / (1.f + std::exp(-2.f)), 1e-6);
  EXPECT_NEAR(peaks[1].score, 0.5f, 1e-6);
}

TEST(InferenceTest, DetectBatchReturnsOneListPerImage) {
  StudentOptions o;
  o.input_width = 64;
  o.input_height = 64;
  Student s(o);
  auto imgs = torch::randint(0, 255, {3, 3, 64, 64}).to(torch::kUInt8);
  auto d = DetectBatch(*s, imgs, 128, 128);
  EXPECT_EQ(d.size(), 3u);
  for (const auto& v : d) EXPECT_LE(v.size(), 100u);
}

}  // namespace
}  // namespace kd::model

namespace kd::model {
namespace {

TEST(FusedStudentTest, MatchesTheModuleInEvalMode) {
  for (int variant = 0; variant < 3; ++variant) {  // one-to-many; one-to-one at stride 4, at stride 8
    const bool o2o = variant > 0;
    StudentOptions o;
    o.input_width = 128;
    o.input_height = 96;
    o.one_to_one = o2o;
    o.one_to_one_stride = variant == 2 ? 8 : 4;
    Student s(o);
    // Non-trivial BN statistics: a few training-mode forwards.
    s->train();
    for (int i = 0; i < 3; ++i) s->forward(torch::rand({2, 3, 96, 128}) * 255);
    s->eval();
    torch::NoGradGuard ng;
    auto x = torch::rand({2, 3, 96, 128}) * 255;
    auto ref = s->forward(x);
    FusedStudent fused(*s);
    auto got = fused.Forward(x);
    if (o2o) {
      EXPECT_TRUE(torch::allclose(got.cls_o2o, ref.cls_o2o, 1e-3, 1e-3));
      EXPECT_TRUE(torch::allclose(got.box_o2o, ref.box_o2o, 1e-3, 1e-3));
    } else {
      EXPECT_TRUE(torch::allclose(got.cls, ref.cls, 1e-3, 1e-3));
      EXPECT_TRUE(torch::allclose(got.box, ref.box, 1e-3, 1e-3));
    }
    auto a = DetectBatch(*s, x, 256, 192);
    auto b = DetectBatch(fused, x, 256, 192);
    ASSERT_EQ(a.size(), b.size());
  }
}

}  // namespace
}  // namespace kd::model

namespace kd::model {
namespace {

TEST(FrameTensorTest, RgbBytesBecomeAChwCopy) {
  media::Frame f;
  f.width = 3, f.height = 2;
  for (int i = 0; i < 3 * 2 * 3; ++i) f.rgb.push_back(static_cast<uint8_t>(i));
  const torch::Tensor t = FrameToTensor(f);
  EXPECT_EQ(t.sizes(), (torch::IntArrayRef{3, 2, 3}));
  EXPECT_EQ(t.dtype(), torch::kUInt8);
  // Pixel (y=1, x=2) is bytes 15, 16, 17 (R, G, B).
  EXPECT_EQ(t[0][1][2].item<int>(), 15);
  EXPECT_EQ(t[1][1][2].item<int>(), 16);
  EXPECT_EQ(t[2][1][2].item<int>(), 17);
  f.rgb.assign(f.rgb.size(), 0);  // a copy: the frame may go away
  EXPECT_EQ(t[2][1][2].item<int>(), 17);
}

}  // namespace
}  // namespace kd::model
