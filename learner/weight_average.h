// WeightAverage: an exponential moving average of a student's weights (model EMA), kept beside the
// weights an optimiser trains. The Distiller updates it after every optimiser step and hands it
// out as the trained student; training continues on the raw weights (Mean Teacher, YOLOX).
//
// Every float tensor of the state (parameters and BN running statistics) is averaged; integer
// buffers (BN's num_batches_tracked) take the latest value. The decay after n updates is
// min(decay, (1 + n) / (10 + n)): early on the average covers about the last n / 9 steps, later
// the last 1 / (1 - decay). Names and layout are those of update::StateOf.
//
// Ownership: owns its tensors, on the student's device. Not thread-safe: the training thread that
// steps the student drives it.
#ifndef KD_LEARNER_WEIGHT_AVERAGE_H_
#define KD_LEARNER_WEIGHT_AVERAGE_H_

#include <cstdint>

#include "model/student.h"
#include "update/state.h"

namespace kd::learner {

class WeightAverage {
 public:
  // Starts at the student's current weights. REQUIRES: 0 < decay < 1.
  WeightAverage(const model::StudentImpl& student, double decay);

  // Folds the student's current weights in (call after each optimiser step that changed them).
  void Update(const model::StudentImpl& student);
  // The decay the next Update will use.
  double NextDecay() const;
  // The averaged weights, as update::StateOf would return them (fresh CPU tensors).
  update::TensorMap State() const;
  // Writes the averaged weights into `student` (same architecture).
  void CopyTo(model::StudentImpl& student) const;
  uint64_t updates() const { return updates_; }

 private:
  double decay_;
  uint64_t updates_ = 0;
  update::TensorMap average_;  // name -> tensor on the student's device, detached
};

}  // namespace kd::learner

#endif  // KD_LEARNER_WEIGHT_AVERAGE_H_
