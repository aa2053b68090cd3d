// DeployedModel: a group's deployed weights (its latest version) in the forms the learner's stages
// use. Built once by the Publisher (or the Catalogue at start-up) and shared read-only through
// LoopState, so a stage can keep using it while a newer version replaces it.
#ifndef KD_LEARNER_DEPLOYED_MODEL_H_
#define KD_LEARNER_DEPLOYED_MODEL_H_

#include <utility>

#include "model/student.h"
#include "update/state.h"

namespace kd::learner {

struct DeployedModel {
  DeployedModel(update::TensorMap weights, const model::StudentImpl& student)
      : state(std::move(weights)), fused(student) {}

  update::TensorMap state;    // what the trainer starts from and the gate compares with (as devices run it)
  model::FusedStudent fused;  // BN folded, eval: the labeller's student/teacher disagreement
};

}  // namespace kd::learner

#endif  // KD_LEARNER_DEPLOYED_MODEL_H_
