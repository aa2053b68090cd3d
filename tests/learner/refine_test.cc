#include "learner/refine.h"

#include <gtest/gtest.h>

namespace kd::learner {
namespace {

Detection Det(float x1, float y1, float x2, float y2, float score, int label = 0) {
  return {{x1, y1, x2, y2}, score, label};
}

TEST(FuseBoxesTest, OnePassComesBackSortedAndUnchanged) {
  auto out = FuseBoxes({{Det(0, 0, 10, 10, 0.4f), Det(50, 50, 60, 60, 0.9f)}}, 0.55f);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_FLOAT_EQ(out[0].score, 0.9f);
  EXPECT_FLOAT_EQ(out[1].box.x2, 10.f);
}

TEST(FuseBoxesTest, ClustersAreScoreWeightedMeansAndObjectsSeenOnceAreDiscounted) {
  // Pass 1 and 2 see the same person slightly apart; only pass 2 sees a car; pass 1 sees a
  // second class at the person's place (never fused across labels).
  const std::vector<std::vector<Detection>> passes = {
      {Det(100, 100, 140, 200, 0.8f), Det(100, 100, 140, 200, 0.5f, 2)},
      {Det(104, 100, 144, 204, 0.4f), Det(300, 300, 400, 350, 0.6f, 2)},
  };
  auto out = FuseBoxes(passes, 0.55f);
  ASSERT_EQ(out.size(), 3u);
  const Detection& person = out[0];
  EXPECT_EQ(person.label, 0);
  // Weights 0.8 and 0.4: x1 = (0.8*100 + 0.4*104) / 1.2.
  EXPECT_NEAR(person.box.x1, (0.8 * 100 + 0.4 * 104) / 1.2, 1e-4);
  EXPECT_NEAR(person.box.y2, (0.8 * 200 + 0.4 * 204) / 1.2, 1e-4);
  EXPECT_NEAR(person.score, 0.6, 1e-6);  // mean 0.6, seen by 2 of 2 passes
  // The car seen by one pass of two keeps half its score; so does the label-2 box at the person.
  EXPECT_NEAR(out[1].score, 0.3, 1e-6);
  EXPECT_EQ(out[1].label, 2);
  EXPECT_NEAR(out[2].score, 0.25, 1e-6);
}

TEST(FuseBoxesTest, DistantBoxesStaySeparate) {
  auto out = FuseBoxes({{Det(0, 0, 10, 10, 0.9f)}, {Det(20, 0, 30, 10, 0.9f)}}, 0.55f);
  EXPECT_EQ(out.size(), 2u);
}

config::LabelRefineOptions Smoothing(int radius = 4, int min_track = 3) {
  config::LabelRefineOptions o;
  o.smooth_radius = radius;
  o.min_track_length = min_track;
  return o;
}

// A person walking right 2 px a frame whose box edges jitter by +-3 px (alternating): the mean over
// a symmetric window removes the jitter, the walk stays.
std::vector<FrameDetections> Walk(int frames, int64_t first_index = 0) {
  std::vector<FrameDetections> out;
  for (int i = 0; i < frames; ++i) {
    const float x = 100.f + 2.f * static_cast<float>(i);
    const float j = (i % 2 == 0) ? 3.f : -3.f;
    out.push_back({first_index + i, {Det(x + j, 50, x + 40 - j, 150, 0.8f)}});
  }
  return out;
}

TEST(SmoothAlongTracksTest, AveragesEachBoxOverTheLargestSymmetricWindowOfItsTrack) {
  auto frames = Walk(9);
  SmoothAlongTracks(&frames, Smoothing());
  ASSERT_EQ(frames.size(), 9u);
  for (const auto& f : frames) ASSERT_EQ(f.detections.size(), 1u);
  // Frame 4 is the middle of 9: window 0..8, jitter mean = 3*(5-4)/9.
  EXPECT_NEAR(frames[4].detections[0].box.x1, 108.f + 3.f / 9.f, 1e-4);
  // Frame 1: window 0..2 (j = 1): jitter (3 - 3 + 3)/3 = 1 around x = 102.
  EXPECT_NEAR(frames[1].detections[0].box.x1, 103.f, 1e-4);
  // Frame 0 is the end of its track: j = 0, the box stays.
  EXPECT_NEAR(frames[0].detections[0].box.x1, 103.f, 1e-4);
  // Scores: the track covers every frame of each window, so the mean score is kept.
  EXPECT_NEAR(frames[4].detections[0].score, 0.8f, 1e-6);
}

TEST(SmoothAlongTracksTest, ShortTracksAreDroppedAndWeakOnesFade) {
  auto frames = Walk(9);
  // A one-frame false positive far away, and a two-frame one.
  frames[4].detections.push_back(Det(500, 500, 520, 540, 0.9f));
  frames[6].detections.push_back(Det(600, 500, 620, 540, 0.9f));
  frames[7].detections.push_back(Det(601, 500, 621, 540, 0.9f));
  SmoothAlongTracks(&frames, Smoothing(4, 3));
  EXPECT_EQ(frames[4].detections.size(), 1u);
  EXPECT_EQ(frames[6].detections.size(), 1u);
  EXPECT_EQ(frames[7].detections.size(), 1u);
  // With min_track_length 1 the blip stays but its score is spread over its window of 9 frames.
  auto again = Walk(9);
  again[4].detections.push_back(Det(500, 500, 520, 540, 0.9f));
  SmoothAlongTracks(&again, Smoothing(4, 1));
  ASSERT_EQ(again[4].detections.size(), 2u);
  EXPECT_NEAR(again[4].detections[1].score, 0.1f, 1e-6);
}

TEST(SmoothAlongTracksTest, RunsNeverCrossAGapAndIsolatedFramesStayAsTheyAre) {
  auto frames = Walk(3, 10);  // indices 10, 11, 12
  auto later = Walk(1, 20);   // index 20: alone
  frames.push_back(later[0]);
  std::swap(frames[0], frames[3]);  // any order
  const auto before = frames;
  SmoothAlongTracks(&frames, Smoothing());
  // The isolated frame (now at position 0) is unchanged even though its track is 1 frame long.
  ASSERT_EQ(frames[0].detections.size(), 1u);
  EXPECT_FLOAT_EQ(frames[0].detections[0].box.x1, before[0].detections[0].box.x1);
  EXPECT_FLOAT_EQ(frames[0].detections[0].score, before[0].detections[0].score);
  // The middle of the 3-run (index 11) is the mean of three boxes.
  for (const auto& f : frames) {
    if (f.frame_index == 11) {
      EXPECT_NEAR(f.detections[0].box.x1, 102.f + 1.f, 1e-4);
    }
  }
}

TEST(SmoothAlongTracksTest, LabelsDoNotLinkAndLowScoresPassThrough) {
  std::vector<FrameDetections> frames;
  for (int i = 0; i < 3; ++i) {
    frames.push_back({i, {Det(0, 0, 10, 10, 0.8f, i == 1 ? 2 : 0), Det(50, 50, 60, 60, 0.01f)}});
  }
  SmoothAlongTracks(&frames, Smoothing(4, 3));
  // Label 0 at frames 0 and 2 and label 2 at frame 1: no track reaches 3 frames.
  for (const auto& f : frames) {
    ASSERT_EQ(f.detections.size(), 1u);
    EXPECT_FLOAT_EQ(f.detections[0].score, 0.01f);  // below track_min_score: untouched
  }
}

TEST(SmoothDatasetLabelsTest, RewritesThePseudoLabelsInStudentPixels) {
  DistillDataset d;
  d.labels = {0, 2};
  d.orig_width = 768, d.orig_height = 576, d.student_width = 384, d.student_height = 288;
  auto walk = Walk(5);
  for (auto& f : walk) {
    f.detections.push_back(Det(300, 300, 340, 340, 0.7f, 2));
    d.frame_indices.push_back(f.frame_index);
    d.teacher_dets.push_back(f);
    d.pseudo.emplace_back();
  }
  SmoothDatasetLabels(&d, Smoothing());
  ASSERT_EQ(d.pseudo[2].size(), 2u);
  // The person (COCO 0 -> channel 0) at frame 2: mean of frames 0..4 in half-size pixels.
  EXPECT_EQ(d.pseudo[2][0].label, 0);
  EXPECT_NEAR(d.pseudo[2][0].box.x1, d.teacher_dets[2].detections[0].box.x1 / 2, 1e-4);
  EXPECT_NEAR(d.teacher_dets[2].detections[0].box.x1, 104.f + 3.f / 5.f, 1e-4);
  EXPECT_EQ(d.pseudo[2][1].label, 1);  // COCO 2 (car) is channel 1
  EXPECT_NEAR(d.pseudo[2][1].box.x2, 170.f, 1e-4);
  // A timeline that breaks the rows apart: nothing is linked, boxes stay.
  auto copy = d;
  std::vector<int64_t> apart = {0, 10, 20, 30, 40};
  copy.teacher_dets[1].detections[0].box.x1 = 7;
  SmoothDatasetLabels(&copy, Smoothing(), &apart);
  EXPECT_FLOAT_EQ(copy.teacher_dets[1].detections[0].box.x1, 7.f);
  EXPECT_FLOAT_EQ(copy.pseudo[1][0].box.x1, 3.5f);
}

}  // namespace
}  // namespace kd::learner
