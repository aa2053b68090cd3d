// Distillation losses and label assignment, as tensor functions (no state, thread-safe).
// Shapes: N batch, K student classes, h,w the stride-4 grid. Boxes are x1,y1,x2,y2 in
// student-input pixels unless a name says "distances" (l,t,r,b). See docs/METHODS.md.
#ifndef KD_LEARNER_LOSSES_H_
#define KD_LEARNER_LOSSES_H_

#include <vector>

#include <torch/types.h>

#include "base/detection.h"

namespace kd::learner {

// Quality focal loss (GFL), elementwise: BCE(logits, target) * |sigmoid(logits) - target|^beta.
torch::Tensor QualityFocalLoss(const torch::Tensor& logits, const torch::Tensor& target, double beta = 2.0);

// 1 - GIoU for matching rows of [M,4] boxes; degenerate boxes are repaired (x2 >= x1) so the
// loss stays finite. Returns [M].
torch::Tensor GiouLoss(const torch::Tensor& pred, const torch::Tensor& target);
// IoU of matching rows of [M,4] boxes, [M].
torch::Tensor PairwiseIou(const torch::Tensor& a, const torch::Tensor& b);

// CrossKD align_scale: per-channel standardise `student` [N,C,h,w] with its own batch
// statistics over (N,h,w) and re-scale to the teacher's per-channel mean/std [C].
torch::Tensor AlignScale(const torch::Tensor& student, const torch::Tensor& teacher_mean,
                         const torch::Tensor& teacher_std);

// Adaptive hard-sample weights for the KD losses (seeds 002/004; our formulation, see
// docs/METHODS.md). All inputs detached: the weights scale losses, they get no gradient.
//   student_prob, teacher_prob: [N,K,h,w]; box_iou: [N,h,w] IoU of student and teacher boxes.
// cls weight = (1 + lambda |p_S - p_T|) * damp, box weight = c_T (1 + lambda (1 - IoU)) * damp,
// with c_T = max_k p_T and damp = 0.5 where the teacher is unsure (ignore < c_T < unsure_high).
struct KdWeights {
  torch::Tensor cls;  // [N,K,h,w]
  torch::Tensor box;  // [N,h,w]
};
KdWeights AdaptiveKdWeights(const torch::Tensor& student_prob, const torch::Tensor& teacher_prob,
                            const torch::Tensor& box_iou, double lambda, double ignore_threshold,
                            double unsure_high = 0.6);

// Dense detection targets from pseudo-boxes (one-to-many).
struct DetTargets {
  torch::Tensor cls;         // [N,K,h,w] soft targets in [0,1]
  torch::Tensor cls_weight;  // [N,K,h,w] 0 = ignored (teacher-uncertain), else 1
  torch::Tensor box;         // [N,4,h,w] assigned box (x1,y1,x2,y2)
  torch::Tensor box_weight;  // [N,h,w] >= 0 (0 = not a positive)
  int num_objects = 0;
};

struct AssignOptions {
  float pseudo_threshold = 0.3f;   // teacher boxes at or above become objects
  float ignore_threshold = 0.15f;  // teacher score in [ignore, pseudo) and not an object: ignored
  bool from_teacher = false;       // LAD: positives chosen by the teacher's own predictions
  int lad_topk = 9;
};

// pseudo[n]: teacher detections (label = channel k, student pixels). teacher_heat/box: the
// teacher's dense outputs on the student grid ([N,K,h,w] probs, [N,4,h,w] distances).
DetTargets AssignOneToMany(const std::vector<std::vector<Detection>>& pseudo, const torch::Tensor& teacher_heat,
                           const torch::Tensor& teacher_box, int stride, const AssignOptions& options);

// CAKD assignment on cross-head predictions. Candidates of an object (score >= pseudo_threshold):
// the locations inside its box within 2.5 cells of its centre, ranked by the task-aligned metric
// t = s^alpha * IoU^beta (s: the predicted probability of its class there, IoU: of the predicted
// box with it).
//   one-to-one: greedy in descending t over all objects, each object one location, each location
//     used once;
//   one-to-many (only with `consistent`, YOLOv10's consistent dual assignment): each object's top
//     `topk` candidates by the same t, a location shared by objects going to the larger t; the
//     one-to-one match of an object is the top 1 of the ranking its one-to-many positives come
//     from. Ignored band as AssignOneToMany's (teacher_heat in [ignore, pseudo), no positive).
// Class targets are 1, or with `iou_targets` IoU-aware: the matched IoU (one-to-one) and
// t / max t of the object * its largest IoU among its positives (one-to-many, TOOD's
// normalisation). Box weights: 1 at one-to-one matches; the class target (floor 0.05) at
// one-to-many positives (the box loss divides by their sum).
struct OneToOneTargets {
  torch::Tensor cls;         // [N,K,h,w] target at matched (class, location), else 0
  torch::Tensor box;         // [N,4,h,w]
  torch::Tensor box_weight;  // [N,h,w] 1 at matched locations
  int num_objects = 0;
};
struct TaskAlignedOptions {
  float pseudo_threshold = 0.3f;
  float ignore_threshold = 0.15f;
  double alpha = 0.5, beta = 6.0;
  bool consistent = true;
  int topk = 10;
  bool iou_targets = true;
};
struct DualTargets {
  OneToOneTargets one_to_one;
  DetTargets one_to_many;  // undefined tensors unless `consistent`
};
// cross_prob: [N,K,h,w] probabilities, cross_boxes: [N,4,h,w] x1,y1,x2,y2, teacher_heat:
// [N,K,h,w] (for the ignored band); all on the student grid.
DualTargets AssignTaskAligned(const std::vector<std::vector<Detection>>& pseudo, const torch::Tensor& cross_prob,
                              const torch::Tensor& cross_boxes, const torch::Tensor& teacher_heat, int stride,
                              const TaskAlignedOptions& options);

}  // namespace kd::learner

#endif  // KD_LEARNER_LOSSES_H_
