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

  config::DistillOptions recipe_;
  model::Student student_;
  const model::CenterNetTeacher& teacher_;
  torch::Device device_;
  torch::nn::Conv2d adapter_{nullptr};  // 1x1, student head channels -> 128 (CrossKD)
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::unique_ptr<WeightAverage> average_;  // continual mode with continual_ema_decay > 0 only
  std::vector<int64_t> label_index_;        // student channel k -> teacher channel
  std::vector<float> difficulty_;
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
