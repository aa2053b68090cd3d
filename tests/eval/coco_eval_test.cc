#include "eval/coco_eval.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kd::eval {
namespace {

// Precision is tp / (tp + fp + 2.2e-16) in pycocotools, so "1" is 1 - 2e-16: compare with a tolerance.
constexpr double kTol = 1e-12;

Detection Det(float x1, float y1, float x2, float y2, float score = 1.f, int label = 0) {
  return Detection{Box{x1, y1, x2, y2}, score, label};
}

FrameDetections Frame(int64_t index, std::vector<Detection> dets) { return FrameDetections{index, std::move(dets)}; }

CocoMetrics MustEvaluate(const std::vector<FrameDetections>& gt, const std::vector<FrameDetections>& dets,
                         const std::vector<int>& labels) {
  Result<CocoMetrics> r = EvaluateCoco(gt, dets, labels);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? r.value() : CocoMetrics{};
}

TEST(CocoEvalTest, PerfectDetectionsGiveApOne) {
  const std::vector<FrameDetections> gt = {
      Frame(0, {Det(0, 0, 10, 10, 1, 0), Det(20, 20, 50, 40, 1, 2), Det(5, 5, 8, 9, 1, 0)}),
      Frame(1, {Det(100, 100, 140, 180, 1, 2)}),
      Frame(2, {}),
  };
  const std::vector<FrameDetections> dets = {
      Frame(0, {Det(0, 0, 10, 10, 0.9f, 0), Det(20, 20, 50, 40, 0.3f, 2), Det(5, 5, 8, 9, 0.6f, 0)}),
      Frame(1, {Det(100, 100, 140, 180, 0.7f, 2)}),
  };
  const CocoMetrics m = MustEvaluate(gt, dets, {0, 2});
  EXPECT_NEAR(m.ap, 1.0, kTol);
  EXPECT_NEAR(m.ap50, 1.0, kTol);
  EXPECT_NEAR(m.ap75, 1.0, kTol);
  EXPECT_DOUBLE_EQ(m.ar100, 1.0);
  EXPECT_EQ(m.num_gt, 4);
  EXPECT_EQ(m.num_dets, 4);
  ASSERT_EQ(m.per_class.size(), 2u);
  EXPECT_NEAR(m.per_class.at(0).ap, 1.0, kTol);
  EXPECT_NEAR(m.per_class.at(2).ap, 1.0, kTol);
  EXPECT_EQ(m.per_class.at(0).num_gt, 2);
  EXPECT_EQ(m.per_class.at(2).num_dets, 2);
}

TEST(CocoEvalTest, FalsePositiveRankedAboveTheTruePositiveHalvesPrecision) {
  // One GT. Ranked detections: FP (0.9), TP (0.8). Cumulative tp = [0, 1], fp = [1, 1];
  // recall = [0, 1], precision = [0, 0.5] -> made monotone from the right: [0.5, 0.5].
  // searchsorted(recall, r, 'left'): r = 0 -> index 0, r > 0 -> index 1; every one of the 101 points reads 0.5.
  // The TP has IoU 1, so every threshold gives the same: AP = AP50 = AP75 = 0.5, AR = 1.
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10)})};
  const std::vector<FrameDetections> dets = {Frame(0, {Det(50, 50, 60, 60, 0.9f), Det(0, 0, 10, 10, 0.8f)})};
  const CocoMetrics m = MustEvaluate(gt, dets, {0});
  EXPECT_NEAR(m.ap50, 0.5, kTol);
  EXPECT_NEAR(m.ap75, 0.5, kTol);
  EXPECT_NEAR(m.ap, 0.5, kTol);
  EXPECT_DOUBLE_EQ(m.ar100, 1.0);
}

TEST(CocoEvalTest, FalsePositiveRankedBelowFullRecallCostsNothing) {
  // Ranked: TP (0.9), FP (0.8). recall = [1, 1], precision = [1, 0.5]; every recall point maps to index 0 -> 1.
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10)})};
  const std::vector<FrameDetections> dets = {Frame(0, {Det(0, 0, 10, 10, 0.9f), Det(50, 50, 60, 60, 0.8f)})};
  const CocoMetrics m = MustEvaluate(gt, dets, {0});
  EXPECT_NEAR(m.ap, 1.0, kTol);
  EXPECT_DOUBLE_EQ(m.ar100, 1.0);
}

TEST(CocoEvalTest, IouPointSixMatchesAtThresholdsPointFiveToPointSixOnly) {
  // GT 10x10, detection 10x6 inside it: IoU = 60 / (100 + 60 - 60) = 0.6, which is exactly the double of the
  // 0.60 threshold (numpy.linspace gives 0.6 there). It matches at 0.50, 0.55, 0.60 (AP_t = 1) and is a lone FP at
  // the 7 others (AP_t = 0): AP = 3/10, AP50 = 1, AP75 = 0, AR = 3/10.
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10)})};
  const std::vector<FrameDetections> dets = {Frame(0, {Det(0, 0, 10, 6, 0.9f)})};
  const CocoMetrics m = MustEvaluate(gt, dets, {0});
  EXPECT_NEAR(m.ap, 0.3, kTol);
  EXPECT_NEAR(m.ap50, 1.0, kTol);
  EXPECT_DOUBLE_EQ(m.ap75, 0.0);
  EXPECT_DOUBLE_EQ(m.ar100, 0.3);
}

TEST(CocoEvalTest, IouJustBelowHalfNeverMatches) {
  // IoU = 49 / 100 < 0.5: a false positive everywhere.
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10)})};
  const std::vector<FrameDetections> dets = {Frame(0, {Det(0, 0, 10, 4.9f, 0.9f)})};
  const CocoMetrics m = MustEvaluate(gt, dets, {0});
  EXPECT_DOUBLE_EQ(m.ap, 0.0);
  EXPECT_DOUBLE_EQ(m.ar100, 0.0);
}

TEST(CocoEvalTest, DuplicateOnOneGtIsAFalsePositive) {
  // GTs A and B. Ranked: A (0.9, TP), copy of A (0.8, FP: A is taken), B (0.7, TP).
  // tp = [1, 1, 2], fp = [0, 1, 1], recall = [.5, .5, 1], precision = [1, 1/2, 2/3] -> monotone [1, 2/3, 2/3].
  // Recall points 0.00..0.50 (51) -> index 0 -> 1; 0.51..1.00 (50) -> index 2 -> 2/3.
  // AP = (51 + 50 * 2/3) / 101 = 253/303 at every threshold (IoU 1).
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10), Det(20, 0, 30, 10)})};
  const std::vector<FrameDetections> dets = {
      Frame(0, {Det(0, 0, 10, 10, 0.9f), Det(0, 0, 10, 10, 0.8f), Det(20, 0, 30, 10, 0.7f)})};
  const CocoMetrics m = MustEvaluate(gt, dets, {0});
  EXPECT_NEAR(m.ap, 253.0 / 303.0, kTol);
  EXPECT_NEAR(m.ap50, 253.0 / 303.0, kTol);
  EXPECT_DOUBLE_EQ(m.ar100, 1.0);
}

TEST(CocoEvalTest, GreedyMatchFallsBackToTheNextUnmatchedGt) {
  // G1 = [0,0,10,10], G2 = [0,2,10,12]. d1 = G1 (0.9) takes G1 (IoU 1). d2 = [0,0.5,10,10.5] (0.8) has IoU
  // 95/105 = .905 with G1 (taken) and 85/115 = .739 with G2, so it takes G2 at thresholds .50-.70 (5 of them):
  // AP_t = 1. At .75-.95 d2 is a FP: recall = [.5, .5], precision = [1, .5]; points 0.00..0.50 -> 1, the rest
  // lie past the end -> 0: AP_t = 51/101.
  // AP = (5 + 5 * 51/101) / 10 = 76/101; AP50 = 1; AP75 = 51/101; AR = (5 * 1 + 5 * 0.5) / 10 = 0.75.
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10), Det(0, 2, 10, 12)})};
  const std::vector<FrameDetections> dets = {Frame(0, {Det(0, 0, 10, 10, 0.9f), Det(0, 0.5f, 10, 10.5f, 0.8f)})};
  const CocoMetrics m = MustEvaluate(gt, dets, {0});
  EXPECT_NEAR(m.ap, 76.0 / 101.0, kTol);
  EXPECT_NEAR(m.ap50, 1.0, kTol);
  EXPECT_NEAR(m.ap75, 51.0 / 101.0, kTol);
  EXPECT_DOUBLE_EQ(m.ar100, 0.75);
}

TEST(CocoEvalTest, EqualIouTieGoesToTheLaterGtAsInPycocotools) {
  // G1 = [0,0,10,10], G2 = [2,0,12,10]; d1 = [1,0,11,10] (0.9) has IoU 90/110 = .818 with both; d2 = G1 (0.8)
  // has IoU 1 with G1 and 80/120 = .667 with G2. COCOeval keeps the later GT on equal IoU (">=").
  const Detection g1 = Det(0, 0, 10, 10), g2 = Det(2, 0, 12, 10);
  const std::vector<FrameDetections> dets = {Frame(0, {Det(1, 0, 11, 10, 0.9f), Det(0, 0, 10, 10, 0.8f)})};
  {
    // GT order [G1, G2]: d1 takes G2 at .50-.80 (7 thresholds), d2 takes G1 everywhere: AP_t = 1.
    // At .85-.95 d1 matches nothing: ranked FP, TP -> recall [0, .5], precision [0, .5] -> monotone [.5, .5];
    // points 0.00..0.50 (51) read .5, the rest 0: AP_t = 25.5/101.
    // AP = (7 + 3 * 25.5/101) / 10 = 1567/2020.
    const CocoMetrics m = MustEvaluate({Frame(0, {g1, g2})}, dets, {0});
    EXPECT_NEAR(m.ap, 1567.0 / 2020.0, kTol);
    EXPECT_NEAR(m.ap75, 1.0, kTol);
    EXPECT_DOUBLE_EQ(m.ar100, (7 * 1.0 + 3 * 0.5) / 10);
  }
  {
    // GT order [G2, G1]: d1 takes G1, so d2 can only take G2 (IoU .667): thresholds .50-.65 (4): AP_t = 1;
    // .70-.80 (3): TP, FP -> 51/101; .85-.95 (3): FP, TP(G1) -> 25.5/101.
    // AP = (4 + 3 * 51/101 + 3 * 25.5/101) / 10 = 1267/2020.
    const CocoMetrics m = MustEvaluate({Frame(0, {g2, g1})}, dets, {0});
    EXPECT_NEAR(m.ap, 1267.0 / 2020.0, kTol);
    EXPECT_NEAR(m.ap75, 51.0 / 101.0, kTol);
  }
}

TEST(CocoEvalTest, ClassWithoutGroundTruthIsLeftOutOfTheMeans) {
  // Class 0 is perfect; class 2 has only a detection and no GT; class 5 has nothing. Both are -1 (pycocotools)
  // and the means are class 0's alone.
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10, 1, 0)})};
  const std::vector<FrameDetections> dets = {Frame(0, {Det(0, 0, 10, 10, 0.9f, 0), Det(30, 30, 40, 40, 0.95f, 2)})};
  const CocoMetrics m = MustEvaluate(gt, dets, {5, 0, 2, 2});
  ASSERT_EQ(m.per_class.size(), 3u);
  EXPECT_DOUBLE_EQ(m.per_class.at(2).ap, -1);
  EXPECT_DOUBLE_EQ(m.per_class.at(2).ar100, -1);
  EXPECT_EQ(m.per_class.at(2).num_dets, 1);
  EXPECT_DOUBLE_EQ(m.per_class.at(5).ap, -1);
  EXPECT_NEAR(m.ap, 1.0, kTol);
  EXPECT_DOUBLE_EQ(m.ar100, 1.0);
  EXPECT_EQ(m.num_dets, 2);

  // No class with GT at all: every mean is -1.
  const CocoMetrics none = MustEvaluate({Frame(0, {})}, dets, {2});
  EXPECT_DOUBLE_EQ(none.ap, -1);
  EXPECT_DOUBLE_EQ(none.ar100, -1);
}

TEST(CocoEvalTest, LabelsOutsideTheEvaluatedSetAreSkipped) {
  // A class-7 FP ranked first would halve class 0's AP, but only class 0 is evaluated.
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10, 1, 0), Det(0, 0, 10, 10, 1, 7)})};
  const std::vector<FrameDetections> dets = {Frame(0, {Det(0, 0, 10, 10, 0.9f, 7), Det(0, 0, 10, 10, 0.5f, 0)})};
  const CocoMetrics m = MustEvaluate(gt, dets, {0});
  EXPECT_NEAR(m.ap, 1.0, kTol);
  EXPECT_EQ(m.num_gt, 1);
  EXPECT_EQ(m.num_dets, 1);
}

TEST(CocoEvalTest, MaxDetsKeepsTheTop100PerImageAndClass) {
  const Detection gt_box = Det(0, 0, 10, 10);
  std::vector<Detection> fps;
  for (int i = 0; i < 100; ++i) {
    const float x = 100.f + 20.f * static_cast<float>(i);
    fps.push_back(Det(x, 100, x + 10, 110, 0.5f + 0.001f * static_cast<float>(i)));
  }
  {
    // 100 FPs outrank the TP, which is 101st and cut: AP = 0, AR = 0.
    std::vector<Detection> d = fps;
    d.push_back(Det(0, 0, 10, 10, 0.1f));
    const CocoMetrics m = MustEvaluate({Frame(0, {gt_box})}, {Frame(0, d)}, {0});
    EXPECT_DOUBLE_EQ(m.ap, 0.0);
    EXPECT_DOUBLE_EQ(m.ar100, 0.0);
    EXPECT_EQ(m.num_dets, 101);  // counted before the cap
  }
  {
    // 99 FPs, the TP is 100th and kept: precision = [0 x 99, 1/100] -> monotone 1/100 everywhere, and every
    // recall point maps into the list: AP = 0.01, AR = 1.
    std::vector<Detection> d(fps.begin() + 1, fps.end());
    d.push_back(Det(0, 0, 10, 10, 0.1f));
    const CocoMetrics m = MustEvaluate({Frame(0, {gt_box})}, {Frame(0, d)}, {0});
    EXPECT_NEAR(m.ap, 0.01, kTol);
    EXPECT_DOUBLE_EQ(m.ar100, 1.0);
  }
  {
    // The cap is per class: 100 class-2 detections do not push out the class-0 TP in the same image.
    std::vector<Detection> d = fps;
    for (Detection& x : d) x.label = 2;
    d.push_back(Det(0, 0, 10, 10, 0.1f, 0));
    const CocoMetrics m = MustEvaluate({Frame(0, {gt_box})}, {Frame(0, d)}, {0, 2});
    EXPECT_NEAR(m.per_class.at(0).ap, 1.0, kTol);
    EXPECT_DOUBLE_EQ(m.per_class.at(2).ap, -1);
  }
  {
    // And per image: a second image's detections do not count toward the first image's 100.
    std::vector<FrameDetections> gt = {Frame(0, {gt_box}), Frame(1, {})};
    std::vector<FrameDetections> dets = {Frame(0, {Det(0, 0, 10, 10, 0.1f)}), Frame(1, fps)};
    const CocoMetrics m = MustEvaluate(gt, dets, {0});
    EXPECT_DOUBLE_EQ(m.ar100, 1.0);
    EXPECT_NEAR(m.ap, 1.0 / 101.0, kTol);  // 100 FPs then the TP: precision 1/101 at recall 1
  }
}

TEST(CocoEvalTest, Ar100AndApWithAMissedObject) {
  // Two GTs, one found: recall = [.5], precision = [1]; points 0.00..0.50 (51) -> 1, the rest -> 0.
  // AP = 51/101, AR = 0.5.
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10)}), Frame(1, {Det(0, 0, 10, 10)})};
  const std::vector<FrameDetections> dets = {Frame(1, {Det(0, 0, 10, 10, 0.9f)})};
  const CocoMetrics m = MustEvaluate(gt, dets, {0});
  EXPECT_NEAR(m.ap, 51.0 / 101.0, kTol);
  EXPECT_DOUBLE_EQ(m.ar100, 0.5);
  EXPECT_EQ(m.num_gt, 2);
}

TEST(CocoEvalTest, ScoreTiesAcrossImagesFollowFrameIndexOrder) {
  // One GT per image; frame 3 has a FP, frame 8 a TP, both at score 0.5. COCOeval concatenates images in id
  // order and sorts stably, so the FP ranks first whatever the order of the input vector:
  // recall [0, .5], precision [0, .5] -> monotone [.5, .5]; 51 points read .5: AP = 25.5/101.
  const std::vector<FrameDetections> gt = {Frame(8, {Det(0, 0, 10, 10)}), Frame(3, {Det(0, 0, 10, 10)})};
  const std::vector<FrameDetections> dets = {Frame(8, {Det(0, 0, 10, 10, 0.5f)}),
                                             Frame(3, {Det(40, 40, 50, 50, 0.5f)})};
  const CocoMetrics m = MustEvaluate(gt, dets, {0});
  EXPECT_NEAR(m.ap, 25.5 / 101.0, kTol);
}

TEST(CocoEvalTest, CrowdRegionAbsorbsDetectionsWithoutPenalty) {
  // A crowd region takes any number of detections (IoU = intersection / detection area = 1 here), and those are
  // neither TP nor FP: only the regular GT counts, AP = 1.
  GroundTruthFrame frame{0, {{Box{0, 0, 10, 10}, 0, false}, {Box{100, 100, 200, 200}, 0, true}}};
  const std::vector<FrameDetections> dets = {
      Frame(0, {Det(110, 110, 130, 130, 0.95f), Det(150, 150, 170, 170, 0.94f), Det(0, 0, 10, 10, 0.5f)})};
  Result<CocoMetrics> r = EvaluateCocoWithCrowd({frame}, dets, {0});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_NEAR(r->ap, 1.0, kTol);
  EXPECT_EQ(r->num_gt, 1);
  // Without the crowd region the two become FPs ranked first: precision [0, 0, 1/3] -> 1/3 everywhere.
  const CocoMetrics m = MustEvaluate({Frame(0, {Det(0, 0, 10, 10)})}, dets, {0});
  EXPECT_NEAR(m.ap, 1.0 / 3.0, kTol);
}

TEST(CocoEvalTest, DetectionsOfOneFrameMaySpanSeveralEntries) {
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10), Det(20, 0, 30, 10)})};
  const std::vector<FrameDetections> dets = {Frame(0, {Det(0, 0, 10, 10, 0.9f)}), Frame(0, {Det(20, 0, 30, 10, 0.8f)})};
  const CocoMetrics m = MustEvaluate(gt, dets, {0});
  EXPECT_NEAR(m.ap, 1.0, kTol);
}

TEST(CocoEvalTest, InvalidInputsAreStatusValues) {
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10)})};
  const std::vector<FrameDetections> dets = {Frame(0, {Det(0, 0, 10, 10, 0.9f)})};
  EXPECT_TRUE(EvaluateCoco(gt, dets, {}).status().IsInvalidArgument());
  EXPECT_TRUE(EvaluateCoco(gt, dets, {80}).status().IsInvalidArgument());
  EXPECT_TRUE(EvaluateCoco(gt, dets, {-1}).status().IsInvalidArgument());
  EXPECT_TRUE(EvaluateCoco({Frame(0, {}), Frame(0, {})}, dets, {0}).status().IsInvalidArgument());
  const Result<CocoMetrics> unknown_frame = EvaluateCoco(gt, {Frame(4, {Det(0, 0, 1, 1, 0.5f)})}, {0});
  EXPECT_TRUE(unknown_frame.status().IsInvalidArgument());
  EXPECT_NE(unknown_frame.status().message().find("frame 4"), std::string::npos);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(EvaluateCoco(gt, {Frame(0, {Det(0, 0, 10, 10, nan)})}, {0}).status().IsInvalidArgument());
  // An empty entry for a frame outside the ground truth is harmless.
  EXPECT_TRUE(EvaluateCoco(gt, {Frame(9, {})}, {0}).ok());
}

TEST(CocoEvalTest, FormatMetricsTableNamesTheClasses) {
  const std::vector<FrameDetections> gt = {Frame(0, {Det(0, 0, 10, 10, 1, 0)})};
  const std::vector<FrameDetections> dets = {Frame(0, {Det(0, 0, 10, 10, 0.9f, 0)})};
  const std::string table = FormatMetricsTable(MustEvaluate(gt, dets, {0, 7}));
  EXPECT_NE(table.find("person"), std::string::npos) << table;
  EXPECT_NE(table.find("truck"), std::string::npos) << table;
  EXPECT_NE(table.find("1.000"), std::string::npos) << table;
  EXPECT_NE(table.find("all"), std::string::npos) << table;
  EXPECT_NE(table.find("AP50"), std::string::npos) << table;
  // truck has no GT: dashes, not -1.
  EXPECT_EQ(table.find("-1"), std::string::npos) << table;
}

}  // namespace
}  // namespace kd::eval
