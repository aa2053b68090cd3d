// Mechanism tests of the distillation engine on two real frames with the real teacher
// (small input sizes keep them fast). Skipped when the assets are absent.
#include "learner/distiller.h"

#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/assets.h"
#include "learner/round_trainer.h"
#include "media/video_source.h"
#include "update/delta.h"

namespace kd::learner {
namespace {

class DistillerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!FileExists(AssetPath("centernet.json")) || !FileExists(AssetPath("vtest.avi"))) return;
    auto t = model::CenterNetTeacher::Load(AssetPath("centernet.json"));
    ASSERT_TRUE(t.ok());
    teacher_ = std::move(t).value().release();
    DatasetOptions o;
    o.student_long_side = 192;
    o.teacher_long_side = 256;
    auto d = BuildDataset(AssetPath("vtest.avi"), 300, 302, *teacher_, o);
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    data_ = new DistillDataset(std::move(d).value());
  }
  static void TearDownTestSuite() {
    delete data_;
    delete teacher_;
  }
  void SetUp() override {
    if (!teacher_) GTEST_SKIP() << "assets missing: run scripts/fetch_assets.sh";
  }
  static std::unique_ptr<Distiller> Make(char arm,
                                         double continual_ema_decay = config::DistillOptions{}.continual_ema_decay) {
    auto recipe = *config::AblationArm(arm, {});
    recipe.continual_ema_decay = continual_ema_decay;
    recipe.student.width = 8;
    recipe.student.head_channels = 16;
    recipe.iterations = 40;
    recipe.warmup = 5;
    recipe.batch_size = 2;
    recipe.pseudo_threshold = 0.2;
    recipe.ignore_threshold = 0.1;
    model::Student s(*StudentOptionsFor(recipe, *data_));
    return std::make_unique<Distiller>(recipe, s, *teacher_, torch::kCPU);
  }
  static model::CenterNetTeacher* teacher_;
  static DistillDataset* data_;
};
model::CenterNetTeacher* DistillerTest::teacher_ = nullptr;
DistillDataset* DistillerTest::data_ = nullptr;

TEST_F(DistillerTest, DatasetAlignsTeacherOutputsToTheStudentGrid) {
  EXPECT_EQ(data_->student_width, 192);
  EXPECT_EQ(data_->student_height, 160);  // 768x576 fitted to long side 192: 144 rounds up to 160
  EXPECT_EQ(data_->teacher_height, 192);
  EXPECT_EQ(data_->teacher_heat.sizes(), (std::vector<int64_t>{2, 6, 40, 48}));
  EXPECT_EQ(data_->teacher_box.sizes(), (std::vector<int64_t>{2, 4, 40, 48}));
  // Pseudo-boxes live in student pixels: inside the 192x160 image.
  for (const auto& d : data_->pseudo[0]) {
    EXPECT_LE(d.box.x2, 192.f + 8.f);
    EXPECT_LE(d.box.y2, 160.f + 8.f);
  }
  EXPECT_EQ(data_->feat_mean.sizes(), (std::vector<int64_t>{2, 128}));
  ASSERT_FALSE(data_->pseudo[0].empty());
  EXPECT_EQ(data_->frame_indices[0], 300);
}

TEST_F(DistillerTest, TheBuilderCallsItsHookBeforeEveryTeacherForwardEachRefineScaleIncluded) {
  // The labeller's wait for ingest (learner/ingest_pressure.h) runs there: before the fix it ran
  // once per batch of every scale, seconds of teacher time on a busy CPU.
  DatasetOptions o;
  o.student_long_side = 192;
  o.teacher_long_side = 256;
  o.refine.enabled = true;
  o.refine.extra_long_sides = {320};
  int forwards = 0;
  DatasetBuilder builder(*teacher_, o, [&] { ++forwards; });
  auto read = media::ReadFrames(AssetPath("vtest.avi"), 300, 302);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  const std::vector<media::Frame>& frames = *read;
  ASSERT_TRUE(builder.AddBatch(frames).ok());
  EXPECT_EQ(forwards, 2);  // the teacher scale, then 320
  ASSERT_TRUE(builder.AddBatch({frames[0]}).ok());
  EXPECT_EQ(forwards, 4);
  EXPECT_EQ(std::move(builder).Finish().value().size(), 3u);
}

TEST_F(DistillerTest, CrossKdSendsNoKdGradientToLayersAfterTheTap) {
  auto d = Make('c');
  auto grads = d->KdGradients(*data_, {0, 1});
  const auto post = model::StudentPostTapParameterNames(*d->student(), model::CrossKdTap::kTower);
  ASSERT_FALSE(post.empty());
  for (const auto& name : post) EXPECT_EQ(grads.at(name).abs().sum().item<float>(), 0.f) << name;
  EXPECT_GT(grads.at("tower.0.weight").abs().sum().item<float>(), 0.f);  // the tap's own conv learns from KD
  EXPECT_GT(grads.at("stem.0.weight").abs().sum().item<float>(), 0.f);
}

// The cross head at the teacher's scale (student grid 48x40 resampled to the teacher's 64x48 and
// back): the same CrossKD contract, a different loss from the student-scale path, and it learns.
TEST_F(DistillerTest, CrossKdAtTheTeacherScaleKeepsTheContractAndLearns) {
  auto d = Make('g');
  auto grads = d->KdGradients(*data_, {0, 1});
  for (const auto& name : model::StudentPostTapParameterNames(*d->student(), model::CrossKdTap::kTower)) {
    EXPECT_EQ(grads.at(name).abs().sum().item<float>(), 0.f) << name;
  }
  EXPECT_GT(grads.at("tower.0.weight").abs().sum().item<float>(), 0.f);
  auto plain = Make('c');  // same seed, same initial weights
  const auto first_plain = plain->Step(*data_, {0, 1});
  const auto first = d->Step(*data_, {0, 1});
  ASSERT_TRUE(first.losses.count("kd_cls") && first.losses.count("kd_box"));
  EXPECT_NE(first.losses.at("kd_cls"), first_plain.losses.at("kd_cls"));
  StepStats last;
  for (int i = 0; i < 15; ++i) last = d->Step(*data_, {0, 1});
  for (const auto& [name, v] : last.losses) EXPECT_TRUE(std::isfinite(v)) << name;
  EXPECT_LT(last.losses.at("total"), first.losses.at("total"));
}

// The neck tap (arm f): the head's tower joins the final convs on the detection-only side, while
// the neck and backbone still learn from KD.
TEST_F(DistillerTest, CrossKdAtTheNeckTapDecouplesTheTowerFromKd) {
  auto d = Make('f');
  auto grads = d->KdGradients(*data_, {0, 1});
  const auto post = model::StudentPostTapParameterNames(*d->student(), model::CrossKdTap::kNeck);
  ASSERT_EQ(std::count(post.begin(), post.end(), "tower.0.weight"), 1);
  for (const auto& name : post) EXPECT_EQ(grads.at(name).abs().sum().item<float>(), 0.f) << name;
  EXPECT_GT(grads.at("lat2.weight").abs().sum().item<float>(), 0.f);
  EXPECT_GT(grads.at("stem.0.weight").abs().sum().item<float>(), 0.f);
  const auto first = d->Step(*data_, {0, 1});
  StepStats last;
  for (int i = 0; i < 15; ++i) last = d->Step(*data_, {0, 1});
  for (const auto& [name, v] : last.losses) EXPECT_TRUE(std::isfinite(v)) << name;
  EXPECT_LT(last.losses.at("total"), first.losses.at("total"));
}

TEST_F(DistillerTest, MimickingSendsKdGradientToTheFinalLayers) {
  auto d = Make('b');
  auto grads = d->KdGradients(*data_, {0, 1});
  EXPECT_GT(grads.at("cls.weight").abs().sum().item<float>(), 0.f);
  EXPECT_GT(grads.at("box.weight").abs().sum().item<float>(), 0.f);
}

TEST_F(DistillerTest, TeacherIsBitwiseUnchangedAndGetsNoGradients) {
  std::vector<torch::Tensor> before;
  for (const auto& c : teacher_->graph().Constants()) before.push_back(c.clone());
  auto d = Make('e');
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(d->Step(*data_, {0, 1}).skipped);
  auto after = teacher_->graph().Constants();
  ASSERT_EQ(before.size(), after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(torch::equal(before[i], after[i]));
    EXPECT_FALSE(after[i].requires_grad());
    EXPECT_FALSE(after[i].grad().defined());
  }
}

TEST_F(DistillerTest, CakdTrainsTheOneToOneBranchAndLossesFall) {
  auto d = Make('e');
  ASSERT_TRUE(d->student()->options().one_to_one);
  auto first = d->Step(*data_, {0, 1});
  ASSERT_TRUE(first.losses.count("o2o_cls") && first.losses.count("kd_cls") && first.losses.count("det_cls"));
  StepStats last;
  for (int i = 0; i < 15; ++i) last = d->Step(*data_, {0, 1});
  EXPECT_LT(last.losses.at("total"), first.losses.at("total"));
  ASSERT_EQ(d->difficulty().size(), 2u);
  EXPECT_GE(d->difficulty()[0], 0.f);
}

TEST_F(DistillerTest, CakdAtStride8MatchesOnThePooledGridAndLossesFall) {
  auto d = Make('i');
  ASSERT_EQ(d->student()->options().one_to_one_stride, 8);
  auto first = d->Step(*data_, {0, 1});
  ASSERT_TRUE(first.losses.count("o2o_cls") && first.losses.count("o2o_box") && first.losses.count("det_cls"));
  StepStats last;
  for (int i = 0; i < 15; ++i) last = d->Step(*data_, {0, 1});
  EXPECT_LT(last.losses.at("total"), first.losses.at("total"));
  // The branch's boxes learn on their own grid. (Its class loss rises at first at either stride:
  // the IoU-aware targets grow as the cross head's boxes improve.)
  EXPECT_LT(last.losses.at("o2o_box"), first.losses.at("o2o_box"));
}

TEST_F(DistillerTest, NonFiniteLossSkipsTheStepAndKeepsWeights) {
  auto d = Make('c');
  DistillDataset bad = *data_;
  bad.teacher_heat = bad.teacher_heat.clone();
  bad.teacher_heat[0][0][0][0] = std::nanf("");
  std::vector<torch::Tensor> before;
  for (const auto& p : d->student()->parameters()) before.push_back(p.clone());
  auto st = d->Step(bad, {0, 1});
  EXPECT_TRUE(st.skipped);
  auto params = d->student()->parameters();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], params[i]));
}

TEST_F(DistillerTest, ContinualRoundsHandOutTheWeightAverageAndTrainOnTheRawWeights) {
  auto d = Make('h');
  d->SetContinual(0.3);
  const update::TensorMap start = update::StateOf(*d->student());
  ASSERT_FALSE(d->Step(*data_, {0, 1}).skipped);
  const update::TensorMap raw = update::StateOf(*d->student());
  const update::TensorMap trained = d->TrainedState();
  // The first update has decay 0.1: trained = 0.1 * start + 0.9 * raw, for every float tensor
  // (parameters and BN running statistics); the student itself keeps the raw weights.
  int moved = 0;
  for (const auto& [name, t] : trained) {
    if (!torch::isFloatingType(t.scalar_type())) continue;
    EXPECT_TRUE(torch::allclose(t, 0.1 * start.at(name) + 0.9 * raw.at(name), 1e-5, 1e-6)) << name;
    moved += !torch::equal(raw.at(name), start.at(name));
  }
  EXPECT_GT(moved, 0);
  // Without averaging, or offline (no SetContinual), the trained state is the student's own.
  auto plain = Make('h', 0.0);
  plain->SetContinual(0.3);
  auto offline = Make('h');
  for (auto* dd : {plain.get(), offline.get()}) {
    ASSERT_FALSE(dd->Step(*data_, {0, 1}).skipped);
    const update::TensorMap own = update::StateOf(*dd->student());
    for (const auto& [name, t] : dd->TrainedState()) EXPECT_TRUE(torch::equal(t, own.at(name))) << name;
  }
}

// Elements of each parameter tensor that moved away from `base` (more than the moving average's
// rounding, 1e-6), and how many a top-k delta of `fraction` may carry.
struct Moved {
  int64_t moved = 0, allowed = 0;
};
std::map<std::string, Moved> MovedFrom(const update::TensorMap& base, const update::TensorMap& now,
                                       const std::set<std::string>& params, double fraction) {
  std::map<std::string, Moved> out;
  for (const auto& name : params) {
    const auto& b = base.at(name);
    out[name] = {(now.at(name) - b).abs().gt(1e-6).sum().item<int64_t>(), update::DeltaTopK(fraction, b.numel())};
  }
  return out;
}

TEST_F(DistillerTest, SparseTrainingMovesOnlyTheTopKCoordinatesSoTheTopKDeltaCarriesItWhole) {
  update::DeltaOptions topk, wide;
  topk.max_fraction = 0.2;
  topk.min_abs_change = wide.min_abs_change = 1e-3f;
  wide.max_fraction = 1.0;
  for (double fraction : {0.2, 1.0}) {
    SCOPED_TRACE(fraction);
    auto d = Make('h');
    d->SetContinual(1.0);
    const update::TensorMap anchor = update::StateOf(*d->student());
    const auto params = update::ParameterNames(*d->student());
    d->AnchorSparse(fraction, 2);  // two dense probe steps, then the top-k by distance moved
    ASSERT_FALSE(d->Step(*data_, {0, 1}).skipped);
    EXPECT_TRUE(d->UpdateMasks().empty());  // still probing (or dense)
    for (int i = 0; i < 5; ++i) ASSERT_FALSE(d->Step(*data_, {0, 1}).skipped);
    const update::TensorMap raw = update::StateOf(*d->student()), trained = d->TrainedState();
    int64_t moved = 0, over = 0;
    for (const auto& [name, m] : MovedFrom(anchor, trained, params, 0.2)) {
      moved += m.moved;
      over += m.moved > m.allowed;
    }
    EXPECT_GT(moved, 0);
    // The top-k delta of the same fraction reconstructs what the wide delta (every element that
    // moved more than 1e-3) does, bit for bit: nothing training changed is left behind.
    auto a = update::EncodeDelta(anchor, trained, params, topk);
    auto b = update::EncodeDelta(anchor, trained, params, wide);
    ASSERT_TRUE(a.ok() && b.ok());
    bool same = true;
    for (const auto& name : params) same = same && torch::equal(a->reconstructed.at(name), b->reconstructed.at(name));
    if (fraction < 1) {
      EXPECT_EQ(over, 0);
      EXPECT_TRUE(same);
      const auto masks = d->UpdateMasks();
      ASSERT_EQ(masks.size(), params.size());
      for (const auto& [name, mask] : masks) {
        const auto& t = raw.at(name);
        EXPECT_EQ(mask.sum().item<int64_t>(), std::min<int64_t>(update::DeltaTopK(fraction, t.numel()), t.numel()));
        // The raw weights outside the mask are the anchor's exactly (AdamW's decay undone).
        EXPECT_TRUE(torch::equal(torch::where(mask, t, anchor.at(name)), t)) << name;
      }
    } else {
      EXPECT_GT(over, 0);  // dense training spreads: the test can tell the two apart
      EXPECT_FALSE(same);
      EXPECT_TRUE(d->UpdateMasks().empty());
    }
  }
}

TEST_F(DistillerTest, SparseRoundsReanchorAtEachNewDeployedVersion) {
  auto recipe = *config::AblationArm('h', {});
  recipe.student.width = 8;
  recipe.student.head_channels = 16;
  recipe.warmup = 2;
  recipe.batch_size = 2;
  RoundTrainer rounds(*teacher_, torch::kCPU, recipe);
  model::Student s(*StudentOptionsFor(recipe, *data_));
  const model::StudentOptions arch = s->options();
  const auto params = update::ParameterNames(*s);
  const update::TensorMap v1 = update::StateOf(*s);
  std::atomic<bool> stop{false};
  auto train = [&](const update::TensorMap& deployed, uint64_t version, double fraction) {
    RoundStart start{.token = 1, .arch = &arch, .state = &deployed, .anchor = version};
    auto r = rounds.Train("g", *data_, start, {.iterations = 4, .seed = 0, .update_fraction = fraction}, nullptr, stop);
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->state : update::TensorMap{};
  };
  auto within = [&](const update::TensorMap& base, const update::TensorMap& now) {
    int64_t over = 0;
    for (const auto& [name, m] : MovedFrom(base, now, params, 0.2)) over += m.moved > m.allowed;
    return over == 0;
  };
  const update::TensorMap r1 = train(v1, 1, 0.2);
  EXPECT_TRUE(within(v1, r1));
  // v2 is published: other weights (here a differently initialised student, far from r1). The next
  // round starts from them, with fresh coordinates: its delta from v2 fits the top-k again.
  torch::manual_seed(7);
  model::Student other(arch);
  const update::TensorMap v2 = update::StateOf(*other);
  const update::TensorMap r2 = train(v2, 2, 0.2);
  EXPECT_TRUE(within(v2, r2));
  // A round that failed the gate leaves v2 deployed: the next one continues on the same coordinates.
  const update::TensorMap r3 = train(v2, 2, 0.2);
  EXPECT_TRUE(within(v2, r3));
  EXPECT_NE(update::StateDigest(r3), update::StateDigest(r2));
  // Dense rounds again: every coordinate trains.
  const update::TensorMap r4 = train(v2, 2, 1.0);
  EXPECT_FALSE(within(v2, r4));
}

TEST_F(DistillerTest, LabelFreeBatchesHaveFiniteNormalisedLosses) {
  DistillDataset empty = *data_;
  empty.teacher_heat = torch::zeros_like(empty.teacher_heat);
  for (auto& p : empty.pseudo) p.clear();
  auto d = Make('e');
  auto st = d->Step(empty, {0, 1});
  EXPECT_FALSE(st.skipped);
  for (const auto& [name, v] : st.losses) EXPECT_TRUE(std::isfinite(v)) << name;
}

TEST_F(DistillerTest, EvaluationAgainstTheTeacherRuns) {
  auto d = Make('a');
  auto m = EvaluateStudent(*d->student(), *data_, {0, 1});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_GT(m->num_gt, 0);
  EXPECT_GE(m->ap50, 0.0);
}

}  // namespace
}  // namespace kd::learner
