// Real-asset tests of the teacher: skipped (exit 77 via GTEST_SKIP) when the assets are absent.
#include "model/teacher.h"

#include <set>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/assets.h"
#include "media/image_ops.h"
#include "media/video_source.h"
#include "model/decode.h"

namespace kd::model {
namespace {

class TeacherTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!FileExists(AssetPath("centernet.json")) || !FileExists(AssetPath("vtest.avi"))) return;
    auto t = CenterNetTeacher::Load(AssetPath("centernet.json"));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    teacher_ = std::move(t).value().release();
    media::SourceOptions so;
    so.begin = 300;
    so.end = 301;
    auto src = media::OpenSource(AssetPath("vtest.avi"), so);
    ASSERT_TRUE(src.ok());
    auto f = (*src)->Next();
    ASSERT_TRUE(f.ok() && f->has_value());
    frame300_ = new media::Frame(**f);
  }
  static void TearDownTestSuite() {
    delete teacher_;
    delete frame300_;
  }
  void SetUp() override {
    if (!teacher_) GTEST_SKIP() << "assets missing: run scripts/fetch_assets.sh";
  }
  static torch::Tensor Input(int w, int h) {
    media::Frame r = media::ResizeRgb(*frame300_, w, h);
    return torch::from_blob(r.rgb.data(), {1, h, w, 3}, torch::kUInt8).permute({0, 3, 1, 2}).to(torch::kFloat);
  }
  static CenterNetTeacher* teacher_;
  static media::Frame* frame300_;
};
CenterNetTeacher* TeacherTest::teacher_ = nullptr;
media::Frame* TeacherTest::frame300_ = nullptr;

TEST_F(TeacherTest, ParityWithTfjsOnFrame300) {
  auto out = teacher_->Forward(Input(512, 512));
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  ASSERT_EQ(out->heat.sizes(), (std::vector<int64_t>{1, 80, 128, 128}));
  auto person = out->heat[0][0];
  // Reference (tfjs 4.22 on the same frame): person maximum 0.6496.
  EXPECT_NEAR(person.max().item<float>(), 0.6496f, 1e-3f);
  // The top person peaks fall on the same cells as the reference (row*128 + col).
  auto top = std::get<1>(person.flatten().topk(5));
  std::set<int64_t> got;
  for (int i = 0; i < 5; ++i) got.insert(top[i].item<int64_t>());
  EXPECT_EQ(got, (std::set<int64_t>{5537, 5603, 5609, 5665, 7222}));
}

TEST_F(TeacherTest, AspectPreservingInputFindsThePedestrians) {
  auto out = teacher_->Forward(Input(512, 384));
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->box.sizes(), (std::vector<int64_t>{1, 4, 96, 128}));
  std::vector<int> labels(80);
  for (int i = 0; i < 80; ++i) labels[static_cast<size_t>(i)] = i;
  DecodeOptions opt;
  opt.score_threshold = 0.3f;
  auto dets = DecodeDense(out->heat[0], out->box[0], labels, 4, 768.f / 512.f, 576.f / 384.f, opt);
  int people = 0;
  for (const auto& d : dets) {
    if (d.label == 0) {
      ++people;
      // Pedestrians here are ~25-50 px wide and ~60-110 px tall in the 768x576 frame.
      EXPECT_GT(d.box.height(), d.box.width());
      EXPECT_LT(d.box.width(), 80.f);
    }
  }
  EXPECT_GE(people, 4);
  EXPECT_TRUE(teacher_->Forward(torch::zeros({1, 3, 100, 100})).status().IsInvalidArgument());
}

TEST_F(TeacherTest, HeadIsDifferentiableButFrozen) {
  auto out = teacher_->Forward(Input(256, 192));
  ASSERT_TRUE(out.ok());
  auto feat = out->feature.detach().clone().requires_grad_(true);
  auto head = teacher_->Head(feat);
  ASSERT_TRUE(head.ok());
  // Running the head on the teacher's own feature reproduces its outputs.
  EXPECT_TRUE(torch::allclose(head->cls_logits, out->cls_logits, 1e-4, 1e-4));
  head->cls_logits.sigmoid().sum().backward();
  ASSERT_TRUE(feat.grad().defined());
  EXPECT_GT(feat.grad().abs().sum().item<float>(), 0.f);
  EXPECT_GT(teacher_->NumParameters(), 2'000'000);
}

// The cross head computes only the student's classes: the same logits, and the same gradient into
// the feature, as the full head followed by a selection of those classes.
TEST_F(TeacherTest, HeadOfChosenClassesIsTheFullHeadSelected) {
  auto out = teacher_->Forward(Input(256, 192));
  ASSERT_TRUE(out.ok());
  const std::vector<int64_t> classes = {0, 2, 7, 5};
  auto full_feat = out->feature.detach().clone().requires_grad_(true);
  auto chosen_feat = out->feature.detach().clone().requires_grad_(true);
  auto full = teacher_->Head(full_feat);
  auto chosen = teacher_->Head(chosen_feat, classes);
  ASSERT_TRUE(full.ok() && chosen.ok());
  ASSERT_EQ(chosen->cls_logits.size(1), 4);
  const auto selected = full->cls_logits.index_select(1, torch::tensor(classes));
  EXPECT_TRUE(torch::allclose(chosen->cls_logits, selected, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(chosen->box, full->box, 1e-5, 1e-5));
  (selected.sigmoid().sum() + full->box.sum()).backward();
  (chosen->cls_logits.sigmoid().sum() + chosen->box.sum()).backward();
  EXPECT_TRUE(torch::allclose(chosen_feat.grad(), full_feat.grad(), 1e-4, 1e-5));
  EXPECT_TRUE(teacher_->Head(out->feature, {80}).status().IsInvalidArgument());
  // Output channels can only be chosen for a convolution.
  EXPECT_TRUE(teacher_->graph()
                  .Run({{"tower_0/CenternetHead/Relu_2", out->feature}}, {"tower_0/wh"},
                       {{"tower_0/wh", torch::tensor(std::vector<int64_t>{0})}})
                  .status()
                  .IsInvalidArgument());
}

}  // namespace
}  // namespace kd::model
