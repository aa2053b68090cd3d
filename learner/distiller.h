// Distiller: trains a student from a teacher on a DistillDataset with the recipe's losses
// (pseudo-labels, prediction mimicking, CrossKD, CAKD one-to-one, LAD, adaptive hard samples).
// Owns the student, the CrossKD adapter and the optimiser; borrows the teacher (must outlive it).
// The teacher is never registered as a submodule: it is in no optimiser and no checkpoint.
// Not thread-safe: one training thread drives a Distiller.
#ifndef KD_LEARNER_DISTILLER_H_
#define KD_LEARNER_DISTILLER_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/modules/conv.h>
#include <torch/optim/adamw.h>
#include <torch/types.h>

#include "config/distill_options.h"
#include "eval/coco_eval.h"
#include "learner/dataset.h"
#include "learner/weight_average.h"
#include "model/decode.h"
#include "model/student.h"
#include "model/teacher.h"

namespace kd::learner {

struct StepStats {
  std::map<std::string, double> losses;  // named terms (weighted), plus "total"
  bool skipped = false;                  // non-finite loss: no update was applied
  double grad_norm = 0;
};

struct TrainProgress {
  int iteration = 0, iterations = 0;
  StepStats stats;
  double frames_per_second = 0, eta_seconds = 0;
};

struct TrainReport {
  int iterations = 0, skipped_steps = 0;
  double seconds = 0;
  std::map<std::string, double> final_losses;  // mean over the last 50 steps
  std::vector<float> difficulty;               // per dataset row (EMA), for replay prioritisation
};

// Student options matching a recipe and a dataset (classes, input size, one-to-one branch).
Result<model::StudentOptions> StudentOptionsFor(const config::DistillOptions& recipe, const DistillDataset& data);

class Distiller {
 public:
  Distiller(config::DistillOptions recipe, model::Student student, const model::CenterNetTeacher& teacher,
            torch::Device device);

  // One optimiser step on the given dataset rows.
  StepStats Step(const DistillDataset& data, const std::vector<size_t>& rows);
  // `iterations` steps over `rows` in a seeded order (reshuffled per epoch). In continual mode with
  // an average (see SetContinual) the student is left holding the averaged weights at the end.
  Result<TrainReport> Train(const DistillDataset& data, const std::vector<size_t>& rows,
                            const std::function<void(const TrainProgress&)>& progress = {});

  // The student's KD-loss-only gradients for a batch (no optimiser step); used by tests to check
  // which parameters the KD losses reach.
  std::map<std::string, torch::Tensor> KdGradients(const DistillDataset& data, const std::vector<size_t>& rows);

  // Continual mode: after the warm-up the learning rate stays at lr * scale for ever instead of
  // decaying over recipe.iterations (the stream has no last step), and with
  // recipe.continual_ema_decay > 0 a WeightAverage of the weights starts here. scale in (0, 1].
  void SetContinual(double lr_scale);
  // Sparse continual training (after AMS, Khani et al., ICCV 2021): only
  // update::DeltaTopK(fraction, numel) coordinates of each student parameter tensor may move away
  // from the student's current weights (the anchor: the version devices run), so a top-k delta of
  // `fraction` from the anchor carries everything training changed, up to its q8 rounding. The
  // first `probe_steps` steps train every coordinate; then the coordinates that moved farthest
  // from the anchor are kept and the others put back. Adam normalises each coordinate's step, so
  // how far a coordinate travelled in a few steps says how consistently the loss pulls it, which
  // one batch's gradient does not (choosing by the first step's gradient magnitude was measured
  // and dropped: docs/METHODS.md, "Sparse rounds"). From then on the other coordinates are held
  // at the anchor (AdamW's decay and its momentum included) and the moving average restarts from
  // the kept weights. Call again at each new anchor; fraction >= 1 turns it off. Batch-norm
  // statistics and the CrossKD adapter are not masked (the former ship whole in every delta; the
  // latter never ships).
  // REQUIRES: 0 < fraction; probe_steps >= 1 when fraction < 1.
  void AnchorSparse(double fraction, int probe_steps);
  // Coordinates allowed to move per parameter (name -> bool mask), empty before the first step of
  // an anchor or when sparse training is off.
  std::map<std::string, torch::Tensor> UpdateMasks() const;
  int steps() const { return step_; }
  // The weights training has produced so far, as update::StateOf lists them: the moving average
  // in continual mode with recipe.continual_ema_decay > 0, else the student's own. The student
  // itself is not changed.
  update::TensorMap TrainedState() const;

  model::Student student() const { return student_; }
  const std::vector<float>& difficulty() const { return difficulty_; }

 private:
  struct Losses;
  Losses ComputeLosses(const DistillDataset& data, const std::vector<size_t>& rows);
  // The update masks: top-k per tensor by the distance travelled from the anchor.
  void ChooseUpdateMasks();
  void RestoreFrozen(const std::vector<torch::Tensor>& params);  // frozen coordinates := anchor

  config::DistillOptions recipe_;
  model::Student student_;
  const model::CenterNetTeacher& teacher_;
  torch::Device device_;
  torch::nn::Conv2d adapter_{nullptr};  // 1x1, student head channels -> 128 (CrossKD)
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<WeightAverage> average_;  // continual mode with continual_ema_decay > 0 only
  std::vector<int64_t> label_index_;        // student channel k -> teacher channel
  std::vector<float> difficulty_;
  // Sparse training (AnchorSparse): per student parameter, in student_->parameters() order, the
  // anchor's values and the mask of coordinates that may move (empty until the first step chooses).
  double sparse_fraction_ = 1.0;
  int probe_steps_ = 0, probe_done_ = 0;
  std::vector<torch::Tensor> anchor_, update_mask_;
  int step_ = 0;
  bool continual_ = false;
  double continual_lr_scale_ = 1.0;
};

// Student AP against the teacher's pseudo ground truth (teacher boxes >= gt_min_score after NMS)
// on the given rows, with the student's own inference path (NMS-free if one-to-one) decoded with
// `decode`.
Result<eval::CocoMetrics> EvaluateStudent(model::StudentImpl& student, const DistillDataset& data,
                                          const std::vector<size_t>& rows, float gt_min_score = 0.3f,
                                          std::vector<FrameDetections>* detections = nullptr,
                                          const model::DecodeOptions& decode = {});

}  // namespace kd::learner

#endif  // KD_LEARNER_DISTILLER_H_
