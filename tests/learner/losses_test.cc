#include "learner/losses.h"

#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace kd::learner {
namespace {

TEST(LossesTest, QualityFocalLossHandValues) {
  auto logits = torch::tensor({0.f, 0.f});
  auto target = torch::tensor({0.5f, 1.f});
  auto l = QualityFocalLoss(logits, target, 2.0);
  // sigma(0) = 0.5: the first element matches its target -> modulating factor 0.
  EXPECT_FLOAT_EQ(l[0].item<float>(), 0.f);
  // BCE(0.5, 1) = ln 2, times |0.5 - 1|^2 = 0.25.
  EXPECT_NEAR(l[1].item<float>(), std::log(2.f) * 0.25f, 1e-6);
}

TEST(LossesTest, GiouLossHandValues) {
  auto a = torch::tensor({{0.f, 0.f, 10.f, 10.f}, {0.f, 0.f, 10.f, 10.f}, {0.f, 0.f, 10.f, 10.f}});
  auto b = torch::tensor({{0.f, 0.f, 10.f, 10.f}, {5.f, 0.f, 15.f, 10.f}, {20.f, 0.f, 30.f, 10.f}});
  auto l = GiouLoss(a, b);
  EXPECT_NEAR(l[0].item<float>(), 0.f, 1e-6);
  EXPECT_NEAR(l[1].item<float>(), 1.f - 50.f / 150.f, 1e-6);  // enclosure == union
  // Disjoint: IoU 0, enclosure 300, union 200 -> GIoU = -1/3.
  EXPECT_NEAR(l[2].item<float>(), 1.f + 1.f / 3.f, 1e-6);
  // A degenerate (inverted) prediction stays finite.
  auto inv = GiouLoss(torch::tensor({{10.f, 10.f, 0.f, 0.f}}), torch::tensor({{0.f, 0.f, 10.f, 10.f}}));
  EXPECT_TRUE(std::isfinite(inv[0].item<float>()));
  EXPECT_NEAR(PairwiseIou(a, b)[1].item<float>(), 1.f / 3.f, 1e-6);
}

TEST(LossesTest, AlignScaleMatchesTeacherStatistics) {
  auto s = torch::randn({4, 3, 5, 5}) * 7 + 2;
  auto mean = torch::tensor({1.f, -2.f, 0.5f});
  auto std = torch::tensor({0.5f, 3.f, 1.f});
  auto a = AlignScale(s, mean, std);
  EXPECT_TRUE(torch::allclose(a.mean({0, 2, 3}), mean, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(a.std({0, 2, 3}), std, 1e-3, 1e-3));
}

// AlignScale runs as a fused batch norm; its values and its gradient (the student learns through
// it) must be those of CrossKD's formula with the unbiased std.
TEST(LossesTest, AlignScaleIsCrossKdsFormulaInValueAndGradient) {
  torch::manual_seed(3);
  const auto x = (torch::randn({3, 4, 6, 5}) * 3 + 1).requires_grad_(true);
  const auto mean = torch::tensor({1.f, -2.f, 0.5f, 0.f});
  const auto std = torch::tensor({0.5f, 3.f, 1.f, 2.f});
  const auto weights = torch::randn({3, 4, 6, 5});
  const auto formula = [&](const torch::Tensor& s) {
    auto m = s.mean({0, 2, 3}, true);
    auto sd = s.std({0, 2, 3}, /*unbiased=*/true, true);
    return (s - m) / (sd + 1e-6) * std.view({1, -1, 1, 1}) + mean.view({1, -1, 1, 1});
  };
  const auto fused = AlignScale(x, mean, std);
  const auto grad_fused = torch::autograd::grad({(fused * weights).sum()}, {x})[0];
  const auto reference = formula(x);
  const auto grad_reference = torch::autograd::grad({(reference * weights).sum()}, {x})[0];
  EXPECT_TRUE(torch::allclose(fused, reference, 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(grad_fused, grad_reference, 1e-4, 1e-5))
      << (grad_fused - grad_reference).abs().max().item<float>();
}

TEST(LossesTest, OneToManyPeaksAtTheCentreAndIgnoresUncertainTeacher) {
  const int k = 2, h = 16, w = 16;
  auto heat = torch::zeros({1, k, h, w});
  heat[0][1][2][12] = 0.2f;  // teacher-uncertain, away from any object
  auto box = torch::zeros({1, 4, h, w});
  std::vector<std::vector<Detection>> pseudo = {{{{16, 16, 32, 48}, 0.8f, 0}, {{40, 4, 44, 8}, 0.1f, 1}}};
  AssignOptions opt;
  DetTargets t = AssignOneToMany(pseudo, heat, box, 4, opt);
  EXPECT_EQ(t.num_objects, 1);  // the 0.1 box is below the pseudo-label threshold
  // Box centre (24,32) -> cell (6,8): the target peaks there at 1.
  EXPECT_NEAR(t.cls[0][0][8][6].item<float>(), 1.f, 1e-6);
  EXPECT_LT(t.cls[0][0][8][4].item<float>(), 1.f);
  EXPECT_EQ(t.cls[0][1].sum().item<float>(), 0.f);
  EXPECT_FLOAT_EQ(t.box[0][0][8][6].item<float>(), 16.f);
  EXPECT_FLOAT_EQ(t.box[0][3][8][6].item<float>(), 48.f);
  EXPECT_EQ(t.cls_weight[0][1][2][12].item<float>(), 0.f);  // ignored
  EXPECT_EQ(t.cls_weight[0][0][2][12].item<float>(), 1.f);
  EXPECT_EQ(t.box_weight[0][0][0].item<float>(), 0.f);
}

TEST(LossesTest, LadAssignsFromTheTeachersPredictions) {
  const int h = 16, w = 16;
  auto heat = torch::zeros({1, 1, h, w});
  auto box = torch::zeros({1, 4, h, w});
  // The teacher predicts the object well only at cell (x=5, y=9), off the geometric centre.
  heat[0][0][9][5] = 0.9f;
  box[0][0][9][5] = 4.f;   // l: 20-16
  box[0][1][9][5] = 20.f;  // t: 36-16
  box[0][2][9][5] = 12.f;  // r: 32-20
  box[0][3][9][5] = 12.f;  // b: 48-36
  std::vector<std::vector<Detection>> pseudo = {{{{16, 16, 32, 48}, 0.8f, 0}}};
  AssignOptions opt;
  opt.from_teacher = true;
  DetTargets t = AssignOneToMany(pseudo, heat, box, 4, opt);
  EXPECT_NEAR(t.cls[0][0][9][5].item<float>(), 1.f, 1e-6);  // the teacher's best location
  EXPECT_LE((t.box_weight > 0).sum().item<int64_t>(), opt.lad_topk);
}

// Cross-head predictions for one object at (16,16)-(32,48): perfect boxes everywhere except a
// bad one at cell (x=6, y=8), most confident at (6,7).
struct CrossMaps {
  torch::Tensor prob, boxes;
};
CrossMaps OneObjectMaps() {
  const int h = 16, w = 16;
  CrossMaps m{torch::full({1, 1, h, w}, 0.1f), torch::zeros({1, 4, h, w})};
  m.prob[0][0][8][6] = 0.3f;
  m.prob[0][0][7][6] = 0.9f;
  m.boxes[0][0].fill_(16);
  m.boxes[0][1].fill_(16);
  m.boxes[0][2].fill_(32);
  m.boxes[0][3].fill_(48);
  m.boxes[0][2][8][6] = 20;
  return m;
}

TEST(LossesTest, OneToOnePicksOneLocationPerObjectByTaskAlignedMetric) {
  auto m = OneObjectMaps();
  std::vector<std::vector<Detection>> pseudo = {{{{16, 16, 32, 48}, 0.8f, 0}, {{16, 16, 32, 48}, 0.1f, 0}}};
  TaskAlignedOptions o;
  o.consistent = false;
  o.iou_targets = false;
  auto t = AssignTaskAligned(pseudo, m.prob, m.boxes, torch::zeros_like(m.prob), 4, o);
  EXPECT_EQ(t.one_to_one.num_objects, 1);
  EXPECT_EQ(t.one_to_one.cls.sum().item<float>(), 1.f);
  EXPECT_EQ(t.one_to_one.cls[0][0][7][6].item<float>(), 1.f);
  EXPECT_EQ(t.one_to_one.box_weight.sum().item<float>(), 1.f);
  EXPECT_FALSE(t.one_to_many.cls.defined());  // the centre Gaussian stays AssignOneToMany's
}

// Consistent dual assignment: the one-to-many positives are the top-k of the same ranking, the
// one-to-one match is their top 1, and the targets follow the IoU.
TEST(LossesTest, ConsistentDualAssignmentSharesOneMetricWithIouAwareTargets) {
  auto m = OneObjectMaps();
  m.boxes[0][3][7][6] = 44;  // the most confident location's box: IoU 0.875 with the object
  auto heat = torch::zeros_like(m.prob);
  heat[0][0][1][14] = 0.2f;  // teacher-uncertain, away from the object: ignored
  heat[0][0][7][6] = 0.2f;   // uncertain too, but a positive: never ignored
  std::vector<std::vector<Detection>> pseudo = {{{{16, 16, 32, 48}, 0.8f, 0}}};
  TaskAlignedOptions o;
  o.topk = 4;
  auto t = AssignTaskAligned(pseudo, m.prob, m.boxes, heat, 4, o);
  // t = s^0.5 IoU^6: (6,7) 0.949 * 0.449 = 0.43 beats the perfect boxes at s = 0.1 (0.32).
  EXPECT_EQ(t.one_to_one.cls.nonzero().size(0), 1);
  EXPECT_NEAR(t.one_to_one.cls[0][0][7][6].item<float>(), 0.875f, 1e-5);
  const auto& many = t.one_to_many;
  ASSERT_TRUE(many.cls.defined());
  EXPECT_EQ(many.num_objects, 1);
  EXPECT_EQ((many.box_weight > 0).sum().item<int64_t>(), 4);
  EXPECT_GT(many.box_weight[0][7][6].item<float>(), 0.f);  // the one-to-one match is a positive
  // Normalised t times the largest IoU among the positives (1.0, the perfect boxes): 1 at the top.
  EXPECT_NEAR(many.cls[0][0][7][6].item<float>(), 1.f, 1e-5);
  EXPECT_NEAR(many.cls.max().item<float>(), 1.f, 1e-5);
  EXPECT_EQ(many.cls[0][0][8][6].item<float>(), 0.f);  // the bad box ranks last of the candidates
  EXPECT_EQ(many.cls_weight[0][0][1][14].item<float>(), 0.f);
  EXPECT_EQ(many.cls_weight[0][0][7][6].item<float>(), 1.f);
  EXPECT_FLOAT_EQ(many.box[0][3][7][6].item<float>(), 48.f);
  // Without IoU-aware targets the same locations get 1.
  o.iou_targets = false;
  auto flat = AssignTaskAligned(pseudo, m.prob, m.boxes, heat, 4, o);
  EXPECT_TRUE(torch::equal(flat.one_to_many.box_weight > 0, many.box_weight > 0));
  EXPECT_EQ(flat.one_to_one.cls[0][0][7][6].item<float>(), 1.f);
  EXPECT_EQ(flat.one_to_many.cls.sum().item<float>(), 4.f);
}

}  // namespace
}  // namespace kd::learner

namespace kd::learner {
namespace {

TEST(LossesTest, AdaptiveWeightsFavourHardElementsAndDampTeacherDoubt) {
  // Two locations, one class: both teacher-confident (0.9); the student matches the first (0.9)
  // and misses the second (0.1). A third location is teacher-unsure (0.4).
  auto t = torch::tensor({0.9f, 0.9f, 0.4f}).view({1, 1, 1, 3});
  auto s = torch::tensor({0.9f, 0.1f, 0.4f}).view({1, 1, 1, 3});
  auto iou = torch::tensor({1.f, 0.5f, 1.f}).view({1, 1, 3});
  KdWeights w = AdaptiveKdWeights(s, t, iou, /*lambda=*/1.0, /*ignore_threshold=*/0.15);
  EXPECT_NEAR(w.cls[0][0][0][0].item<float>(), 1.f, 1e-6);   // easy: weight 1
  EXPECT_NEAR(w.cls[0][0][0][1].item<float>(), 1.8f, 1e-6);  // hard: 1 + |0.1 - 0.9|
  EXPECT_NEAR(w.cls[0][0][0][2].item<float>(), 0.5f, 1e-6);  // teacher unsure: halved
  EXPECT_NEAR(w.box[0][0][0].item<float>(), 0.9f, 1e-6);     // c_T * (1 + 0)
  EXPECT_NEAR(w.box[0][0][1].item<float>(), 1.35f, 1e-6);    // c_T * (1 + 0.5)
  EXPECT_NEAR(w.box[0][0][2].item<float>(), 0.2f, 1e-6);     // 0.4 * 1 * 0.5
  EXPECT_FALSE(w.cls.requires_grad());
}

}  // namespace
}  // namespace kd::learner
