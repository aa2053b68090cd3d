// The gate: whether a trained candidate replaces a group's deployed model. Both are judged on the
// same recent held-out frames of the group's cameras (never trained on), the candidate as devices
// will run it (the delta reconstruction), by COCO AP (.50:.95) against the held-out frames' labels
// (the teacher's boxes at gate.gt_min_score, refined as the recipe says). AP, not AP50: the
// teacher's boxes are loose, and a student loose around them passes AP50 while missing the
// person at IoU .75; AP sees it. AP50 is reported beside it.
// Pure functions; thread-safe.
#ifndef KD_LEARNER_GATE_H_
#define KD_LEARNER_GATE_H_

#include <cstddef>
#include <functional>
#include <optional>

#include "base/status.h"
#include "config/daemon_options.h"
#include "learner/dataset.h"
#include "model/student.h"
#include "update/state.h"

namespace kd::learner {

enum class GateVerdict {
  kWaiting,  // fewer than gate.min_holdout held-out frames: no decision yet
  kPass,     // the candidate wins by at least gate.margin: publish it
  kFail,     // keep the deployed model
};
const char* GateVerdictName(GateVerdict verdict);  // "waiting for held-out frames", "pass", "fail"

// What the gate measures of one model on the held-out frames.
struct HoldoutScore {
  double ap = 0;    // COCO AP .50:.95: what the gate decides on
  double ap50 = 0;  // reported beside it
};

// `ap_deployed` is 0 when the group has no deployed model yet.
GateVerdict JudgeCandidate(size_t holdout_frames, double ap_candidate, double ap_deployed,
                           const config::LearnerGateOptions& gate);

// Whether a delta ships: its reconstruction may score at most publish.delta_max_ap_loss below the
// full fp16 weights in held-out AP; otherwise the version ships as full weights.
bool DeltaKeepsAccuracy(double ap_delta, double ap_full, const config::LearnerPublishOptions& publish);

// The update ladder: what a version that passed the gate ships as, cheapest first.
enum class UpdateRung {
  kTopKDelta,  // the top-k delta (publish.delta_max_fraction): it keeps the full weights' accuracy
  kWideDelta,  // the wide delta (publish.delta_wide_fraction): the top-k lost, this one keeps it
  kFull,       // full fp16 weights: no delta kept the accuracy (or none was tried)
};
const char* UpdateRungName(UpdateRung rung);  // "top-k delta", "wide delta", "full weights"

// Climbs the ladder for one candidate: `ap_full` and `ap_topk` are the held-out AP of the full fp16
// weights and of the top-k delta's reconstruction. `score_wide` makes and scores the wide delta; it
// is called only when the top-k delta falls short and publish.delta_wide_fraction exceeds
// publish.delta_max_fraction, and returns nullopt when the delta could not be made or scored.
UpdateRung ClimbUpdateLadder(double ap_full, double ap_topk, const std::function<std::optional<double>()>& score_wide,
                             const config::LearnerPublishOptions& publish);

// AP and AP50 of `weights` (architecture `arch`) on every row of `holdout`.
Result<HoldoutScore> ScoreOnHoldout(const model::StudentOptions& arch, const update::TensorMap& weights,
                                    const DistillDataset& holdout, const config::LearnerGateOptions& gate);

}  // namespace kd::learner

#endif  // KD_LEARNER_GATE_H_
