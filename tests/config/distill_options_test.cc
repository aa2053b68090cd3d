#include "config/distill_options.h"

#include <gtest/gtest.h>

namespace kd::config {
namespace {

TEST(DistillOptionsTest, DefaultsAreValidAndParseOverrides) {
  EXPECT_TRUE(DistillOptions{}.Validate().ok());
  auto o = ParseDistillOptions("iterations = 10\nmimic = true\n[student]\nwidth = 24\nclasses = [\"person\"]\n");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->iterations, 10);
  EXPECT_TRUE(o->mimic);
  EXPECT_EQ(o->student.width, 24);
  EXPECT_EQ(o->student.classes, std::vector<std::string>{"person"});
}

// The shipped recipe file and the built-in defaults are one source: loading the file over defaults
// in which every field differs must give exactly DistillOptions{} (so the file lists every key,
// with the built-in value).
TEST(DistillOptionsTest, TheExampleRecipeListsEveryKeyWithItsBuiltInDefault) {
  DistillOptions other;
  other.student = {.width = 9, .head_channels = 9, .classes = {"dog"}, .input_long_side = 96};
  other.refine = {.enabled = false,
                  .extra_long_sides = {96},
                  .wbf_iou = 0.9,
                  .smooth = false,
                  .smooth_radius = 1,
                  .track_iou = 0.9,
                  .track_min_score = 0.9,
                  .min_track_length = 9,
                  .max_gap_ms = 9};
  other.teacher_long_side = 96, other.iterations = 9, other.batch_size = 9, other.lr = 0.9;
  other.weight_decay = 0.9, other.warmup = 9, other.continual_lr_scale = 0.9, other.continual_ema_decay = 0.9,
  other.grad_clip = 9, other.hflip = !other.hflip, other.seed = 9;
  other.pseudo_labels = !other.pseudo_labels, other.pseudo_threshold = 0.9, other.ignore_threshold = 0.09;
  other.mimic = !other.mimic, other.crosskd = !other.crosskd, other.cakd = true, other.lad = !other.lad;
  other.crosskd_teacher_scale = !other.crosskd_teacher_scale, other.crosskd_tap = "tower";
  other.cakd_consistent = !other.cakd_consistent, other.cakd_topk = 9, other.cakd_iou_targets = !other.cakd_iou_targets;
  other.cakd_alpha = 9, other.cakd_beta = 9, other.adaptive = !other.adaptive, other.adaptive_lambda = 9;
  other.w_det_cls = other.w_det_box = other.w_kd_cls = other.w_kd_box = other.w_o2o = 9;
  auto file = LoadDistillOptions(KD_SOURCE_DIR "/config/examples/distill.toml", other);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_TRUE(*file == DistillOptions{}) << "config/examples/distill.toml and config/distill_options.h disagree";
  // The perturbation reaches every field (a new field left out above would make this test blind).
  EXPECT_FALSE(other.student == DistillOptions{}.student);
  EXPECT_FALSE(other.refine == DistillOptions{}.refine);
}

TEST(DistillOptionsTest, RefineSectionParsesAndChecksRanges) {
  auto o = ParseDistillOptions("[refine]\nenabled = false\nextra_long_sides = [640]\nsmooth_radius = 2\n");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_FALSE(o->refine.enabled);
  EXPECT_EQ(o->refine.extra_long_sides, std::vector<int>{640});
  EXPECT_EQ(o->refine.smooth_radius, 2);
  EXPECT_TRUE(ParseDistillOptions("[refine]\nextra_long_sides = [650]\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("[refine]\nextra_long_sides = [\"x\"]\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("[refine]\nwbf_iou = 1.5\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("[refine]\nmin_track_length = 0\n").status().IsInvalidArgument());
  EXPECT_NE(ParseDistillOptions("[refine]\nradius = 2\n").status().message().find("refine.radius"), std::string::npos);
}

TEST(DistillOptionsTest, UnknownKeysWrongTypesAndRangesAreErrors) {
  auto unknown = ParseDistillOptions("iterashuns = 10\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("iterashuns"), std::string::npos);
  EXPECT_NE(ParseDistillOptions("[student]\ndepth = 3\n").status().message().find("student.depth"), std::string::npos);
  EXPECT_TRUE(ParseDistillOptions("iterations = \"many\"\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("batch_size = 0\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("continual_lr_scale = 0.0\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("continual_lr_scale = 1.5\n").status().IsInvalidArgument());
  EXPECT_DOUBLE_EQ(ParseDistillOptions("continual_lr_scale = 0.6\n")->continual_lr_scale, 0.6);
  EXPECT_TRUE(ParseDistillOptions("continual_ema_decay = 1.0\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("continual_ema_decay = -0.1\n").status().IsInvalidArgument());
  EXPECT_DOUBLE_EQ(ParseDistillOptions("continual_ema_decay = 0\n")->continual_ema_decay, 0.0);
  EXPECT_TRUE(ParseDistillOptions("crosskd = false\ncakd = true\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("lr = [\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("crosskd_tap = \"stem\"\n").status().IsInvalidArgument());
  EXPECT_EQ(ParseDistillOptions("crosskd_tap = \"neck\"\n")->crosskd_tap, "neck");
  EXPECT_TRUE(ParseDistillOptions("cakd_topk = 0\n").status().IsInvalidArgument());
  EXPECT_TRUE(LoadDistillOptions("/nonexistent.toml").status().IsNotFound());
}

TEST(DistillOptionsTest, AblationArmsAreCumulative) {
  auto a = *AblationArm('a', {});
  EXPECT_TRUE(a.pseudo_labels && !a.mimic && !a.crosskd && !a.cakd && !a.adaptive);
  EXPECT_TRUE(AblationArm('b', {})->mimic);
  auto c = *AblationArm('c', {});
  EXPECT_TRUE(c.crosskd && !c.mimic && !c.cakd);
  EXPECT_TRUE(c.crosskd_tap == "tower" && !c.crosskd_teacher_scale);  // the earlier default, whatever the base
  auto e = *AblationArm('e', {});
  EXPECT_TRUE(e.crosskd && e.cakd && e.adaptive);
  EXPECT_FALSE(AblationArm('z', {}).ok());
  for (char arm : {'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'})
    EXPECT_TRUE(AblationArm(arm, {})->Validate().ok());
  auto d = *AblationArm('d', {}), i = *AblationArm('i', {}), j = *AblationArm('j', {});
  EXPECT_TRUE(d.cakd && d.cakd_stride == 4);
  EXPECT_TRUE(i.crosskd && i.cakd && i.cakd_stride == 8 && !i.adaptive);  // d, one-to-one at stride 8
  EXPECT_TRUE(j.crosskd && j.cakd && j.cakd_stride == 8 && j.adaptive);   // i + adaptive hard samples
  DistillOptions bad;
  bad.cakd_stride = 16;
  EXPECT_FALSE(bad.Validate().ok());
  // The CrossKD departures are arms on c: one switch each, both in h.
  auto f = *AblationArm('f', {}), g = *AblationArm('g', {}), h = *AblationArm('h', {});
  EXPECT_TRUE(f.crosskd && !f.cakd && f.crosskd_tap == "neck" && !f.crosskd_teacher_scale);
  EXPECT_TRUE(g.crosskd && !g.cakd && g.crosskd_tap == "tower" && g.crosskd_teacher_scale);
  EXPECT_TRUE(h.crosskd && !h.cakd && h.crosskd_tap == "neck" && h.crosskd_teacher_scale);
}

}  // namespace
}  // namespace kd::config
