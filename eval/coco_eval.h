// COCO box evaluation (AP@[.50:.95], AP50, AP75, AR@100) with the semantics of pycocotools COCOeval
// (iouType "bbox", area range "all", maxDets 100), including its sort, tie and crowd rules.
// Pure functions on plain values: inputs are only read, results are owned by the caller; no shared state,
// so concurrent calls are safe.
#ifndef KD_EVAL_COCO_EVAL_H_
#define KD_EVAL_COCO_EVAL_H_

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/detection.h"
#include "base/status.h"

namespace kd::eval {

// IoU thresholds of COCOeval: numpy.linspace(.5, .95, 10), bit for bit (note 0.8999999999999999).
inline constexpr std::array<double, 10> kCocoIouThresholds = {
    0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.8999999999999999, 0.95};
// Recall thresholds 0:0.01:1 (101 points) for interpolated precision.
inline constexpr int kCocoNumRecallThresholds = 101;
// Detections kept per image and class, highest scores first (pycocotools applies maxDets per image and category).
inline constexpr int kCocoMaxDets = 100;

// A ground-truth box. A crowd box is a COCO "ignore" region: it is not counted as a GT, it may absorb any
// number of detections (IoU = intersection / detection area), and a detection matched to it is neither a true
// nor a false positive.
struct GroundTruthBox {
  Box box;
  int label = 0;
  bool iscrowd = false;
};

struct GroundTruthFrame {
  int64_t frame_index = 0;
  std::vector<GroundTruthBox> boxes;
};

// Metrics of one class. All four are -1 when the class has no (non-crowd) ground truth, as in pycocotools.
struct ClassMetrics {
  double ap = -1;     // mean precision over 10 IoU thresholds x 101 recall points
  double ap50 = -1;   // IoU 0.50
  double ap75 = -1;   // IoU 0.75
  double ar100 = -1;  // recall with at most 100 detections per image and class, mean over the 10 thresholds
  int num_gt = 0;     // non-crowd ground-truth boxes
  int num_dets = 0;   // detections of the class, before the 100-per-image cap
};

// Means over the classes that have ground truth (the others are -1 in per_class and left out); -1 when none has.
struct CocoMetrics {
  double ap = -1;
  double ap50 = -1;
  double ap75 = -1;
  double ar100 = -1;
  std::map<int, ClassMetrics> per_class;  // one entry per evaluated label
  int num_gt = 0;                         // over the evaluated labels
  int num_dets = 0;                       // over the evaluated labels, before the cap
};

// Evaluates `detections` against `ground_truth` for the contiguous COCO labels in `labels` (duplicates are
// ignored; boxes with other labels are skipped). The image set is the ground-truth frames: a frame without boxes
// is an image without objects, where every detection is a false positive. Detections may be split over several
// entries of the same frame_index; the ground truth may not. Ground-truth scores are ignored.
// InvalidArgument: empty or out-of-range labels, a duplicate ground-truth frame, detections on a frame that is
// not in the ground truth, or a non-finite box or score.
Result<CocoMetrics> EvaluateCoco(const std::vector<FrameDetections>& ground_truth,
                                 const std::vector<FrameDetections>& detections, const std::vector<int>& labels);

// As EvaluateCoco, with crowd ("iscrowd") ground-truth boxes.
Result<CocoMetrics> EvaluateCocoWithCrowd(const std::vector<GroundTruthFrame>& ground_truth,
                                          const std::vector<FrameDetections>& detections,
                                          const std::vector<int>& labels);

// Ground truth as GroundTruthFrame values without crowd boxes.
std::vector<GroundTruthFrame> ToGroundTruthFrames(const std::vector<FrameDetections>& frames);

// A readable table: one row per class (label, name, GT count, detections, AP, AP50, AP75, AR100; "-" for a class
// without ground truth), then the overall row.
std::string FormatMetricsTable(const CocoMetrics& metrics);

}  // namespace kd::eval

#endif  // KD_EVAL_COCO_EVAL_H_
