// DistillDataset: frames of one camera at the student's input size plus the teacher's outputs
// for them, computed once (teacher forward per frame) and kept for every epoch and every arm.
// Teacher maps are resampled onto the student's stride-4 grid (legacy-bilinear, cell i <->
// pixel 4i on both grids, so 512x384 -> 384x288 aligns exactly) and box distances are rescaled
// to student-input pixels. Built single-threaded; read-only afterwards (safe to share).
#ifndef KD_LEARNER_DATASET_H_
#define KD_LEARNER_DATASET_H_

#include <functional>
#include <string>
#include <vector>

#include <torch/types.h>

#include "base/detection.h"
#include "base/status.h"
#include "config/distill_options.h"
#include "media/frame.h"
#include "model/teacher.h"

namespace kd::learner {

struct DatasetOptions {
  int student_long_side = 384;  // student input long side; the camera aspect is kept
  int teacher_long_side = 512;  // teacher input long side
  // Exact teacher input size (multiples of 32), overriding teacher_long_side; 0 = keep the
  // camera aspect. A size of another aspect squashes the frame (boxes come out distorted).
  int teacher_width = 0, teacher_height = 0;
  std::vector<int> labels = {0, 1, 2, 3, 5, 7};  // COCO labels the student learns
  float teacher_min_score = 0.05f;               // teacher detections kept (pseudo-labels use a higher bar)
  float teacher_nms_iou = 0.5f;
  // Label refinement (learner/refine.h). The builder fuses the extra input scales per frame; the
  // temporal smoothing needs neighbours, so it runs over a whole dataset (SmoothDatasetLabels).
  // Off unless the caller passes the recipe's.
  config::LabelRefineOptions refine{.enabled = false};
};

struct DistillDataset {
  std::vector<int> labels;  // channel k <-> COCO label labels[k]
  int orig_width = 0, orig_height = 0;
  int student_width = 0, student_height = 0;
  int teacher_width = 0, teacher_height = 0;
  std::vector<int64_t> frame_indices;  // 0-based indices in the source
  torch::Tensor images;                // [F,3,Hs,Ws] uint8 RGB at the student size
  torch::Tensor teacher_heat;          // [F,K,Hs/4,Ws/4] f16 teacher probabilities of the student's classes
  torch::Tensor teacher_box;           // [F,4,Hs/4,Ws/4] f16 l,t,r,b in student-input pixels
  torch::Tensor feat_mean;             // [F,128] f32 per-channel mean of the teacher's head feature
  torch::Tensor feat_sqmean;           // [F,128] f32 per-channel mean of its square
  // Teacher detections per frame after peak extraction + NMS, score >= teacher_min_score, refined
  // when the options say so (fused over scales; smoothed over time by SmoothDatasetLabels). The
  // same boxes twice: `pseudo` is what the student learns from, `teacher_dets` what it is judged on.
  std::vector<std::vector<Detection>> pseudo;  // label = channel k, boxes in student-input pixels
  std::vector<FrameDetections> teacher_dets;   // COCO labels, original pixels
  size_t size() const { return frame_indices.size(); }
};

using ProgressFn = std::function<void(size_t done, size_t total)>;

// Builds a dataset frame by frame (teacher forward per Add). All frames must share a size.
class DatasetBuilder {
 public:
  // `before_forward`, when set, runs before every teacher forward (each refine scale's too): where
  // the learner's labeller waits while ingest is flooded (learner/ingest_pressure.h).
  DatasetBuilder(const model::CenterNetTeacher& teacher, DatasetOptions options,
                 std::function<void()> before_forward = {});
  Status Add(const media::Frame& frame);
  // As Add for several frames with one batched teacher forward ([B,3,H,W]).
  Status AddBatch(const std::vector<media::Frame>& frames);
  Result<DistillDataset> Finish() &&;

 private:
  const model::CenterNetTeacher& teacher_;
  DatasetOptions options_;
  std::function<void()> before_forward_;
  DistillDataset data_;
  std::vector<torch::Tensor> images_, heats_, boxes_, means_, sqmeans_;
};

// Replaces row `row`'s pseudo-labels by its teacher_dets in student pixels and channel labels.
void PseudoFromTeacherDets(DistillDataset* data, size_t row);

// Reads frames [begin,end) of `video` and runs the teacher once on each (once per scale when
// refining), then smooths the labels along time when options.refine says so.
Result<DistillDataset> BuildDataset(const std::string& video, int64_t begin, int64_t end,
                                    const model::CenterNetTeacher& teacher, const DatasetOptions& options,
                                    const ProgressFn& progress = {});

// Teacher detections (score >= min_score) of the given dataset rows, as COCO ground truth.
std::vector<FrameDetections> TeacherGroundTruth(const DistillDataset& data, const std::vector<size_t>& rows,
                                                float min_score);

}  // namespace kd::learner

#endif  // KD_LEARNER_DATASET_H_
