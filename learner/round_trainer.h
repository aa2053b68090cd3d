// RoundTrainer: the training half of a continual round, wherever it runs (the learner's trainer
// thread, or a `kdlearnd worker` process for its coordinator): one student and one optimiser per
// group, kept between rounds, trained for a round's iterations on the round's dataset. The other
// half (the gate, publishing) stays with the learner that owns the store (learner/trainer.h).
//
// A group's trainer starts from the round's `start` (the deployed model, else the factory model,
// else a fresh student sized for the data) and is rebuilt whenever `start.token` changes (a revert,
// or the group moving to this worker), so rounds continue from where the last one stopped.
//
// Sparse rounds (RoundSettings::update_fraction < 1): the trainer anchors at the deployed version
// (RoundStart::anchor) and trains only that fraction of each parameter tensor away from it
// (Distiller::AnchorSparse), so the learner's top-k delta of the same fraction ships the round
// whole. A new anchor (a version was published) reloads the deployed weights, keeps the optimiser.
//
// Threading: one thread at a time (the owner's).
#ifndef KD_LEARNER_ROUND_TRAINER_H_
#define KD_LEARNER_ROUND_TRAINER_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include <torch/types.h>

#include "base/status.h"
#include "config/distill_options.h"
#include "learner/dataset.h"
#include "model/student.h"
#include "model/teacher.h"
#include "update/state.h"

namespace kd::learner {

// "auto" (CUDA when LibTorch sees a GPU, else CPU), "cpu", "cuda" or "cuda:N": training.device.
torch::Device PickTrainingDevice(const std::string& name);

// Where a group's student starts when its trainer is (re)built.
struct RoundStart {
  uint64_t token = 0;                           // a change rebuilds the trainer from this start
  const model::StudentOptions* arch = nullptr;  // with `state`: start from these weights
  const update::TensorMap* state = nullptr;     // null: a fresh student (StudentOptionsFor the data)
  // The deployed version `state` holds (0 = none: bootstrap or fresh). Sparse rounds re-anchor on
  // `state` whenever this changes.
  uint64_t anchor = 0;
};

struct RoundSettings {
  int iterations = 100;  // optimiser steps
  uint64_t seed = 0;     // the round's batches: seed + the group's round number
  // Fraction of each parameter tensor a round may move away from the anchor (1 = all: dense
  // rounds). The learner passes publish.delta_max_fraction when training.sparse_rounds is on.
  double update_fraction = 1.0;
};

struct TrainedRound {
  update::TensorMap state;                // the student after the round (CPU, f32)
  std::set<std::string> parameter_names;  // which tensors are parameters (shipped as fp16)
  model::StudentOptions arch;
  uint64_t round = 0;  // the group's round number on this trainer (1, 2, ...)
  size_t frames = 0;
  int steps = 0;
  double loss = 0;       // mean total loss over the steps that were not skipped
  double seconds = 0;    // wall time of the steps (the scheduler's ledger)
  bool stopped = false;  // the stop flag ended the round early: its state is not a candidate
};

class RoundTrainer {
 public:
  // Borrows the teacher (CrossKD runs its head on student features); `device` for the tensors.
  RoundTrainer(const model::CenterNetTeacher& teacher, torch::Device device, config::DistillOptions recipe);
  ~RoundTrainer();

  // One round of `group` on `data`. `on_step(seconds)` after each optimiser step (heartbeats,
  // counters). FailedPrecondition when the frames do not fit the group's student (another size).
  Result<TrainedRound> Train(const std::string& group, const DistillDataset& data, const RoundStart& start,
                             const RoundSettings& settings, const std::function<void(double)>& on_step,
                             const std::atomic<bool>& stopping);
  // Drops a group's trainer (the next round starts from its RoundStart).
  void Forget(const std::string& group);

 private:
  struct GroupTrainer;
  const model::CenterNetTeacher& teacher_;
  const torch::Device device_;
  const config::DistillOptions recipe_;
  std::map<std::string, std::shared_ptr<GroupTrainer>> trainers_;
};

}  // namespace kd::learner

#endif  // KD_LEARNER_ROUND_TRAINER_H_
