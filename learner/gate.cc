#include "learner/gate.h"

#include <algorithm>
#include <iterator>

#include "learner/distiller.h"

namespace kd::learner {

const char* GateVerdictName(GateVerdict verdict) {
  // Indexed by GateVerdict (kWaiting, kPass, kFail): what status shows as the round's "gate".
  static constexpr const char* kNames[] = {"waiting for held-out frames", "pass", "fail"};
  const auto i = static_cast<size_t>(verdict);
  return i < std::size(kNames) ? kNames[i] : "?";
}

GateVerdict JudgeCandidate(size_t holdout_frames, double ap_candidate, double ap_deployed,
                           const config::LearnerGateOptions& gate) {
  if (holdout_frames < static_cast<size_t>(gate.min_holdout)) return GateVerdict::kWaiting;
  return ap_candidate >= ap_deployed + gate.margin ? GateVerdict::kPass : GateVerdict::kFail;
}

bool DeltaKeepsAccuracy(double ap_delta, double ap_full, const config::LearnerPublishOptions& publish) {
  return ap_delta >= ap_full - publish.delta_max_ap_loss;
}

const char* UpdateRungName(UpdateRung rung) {
  // Indexed by UpdateRung (kTopKDelta, kWideDelta, kFull).
  static constexpr const char* kNames[] = {"top-k delta", "wide delta", "full weights"};
  const auto i = static_cast<size_t>(rung);
  return i < std::size(kNames) ? kNames[i] : "?";
}

UpdateRung ClimbUpdateLadder(double ap_full, double ap_topk, const std::function<std::optional<double>()>& score_wide,
                             const config::LearnerPublishOptions& publish) {
  if (DeltaKeepsAccuracy(ap_topk, ap_full, publish)) return UpdateRung::kTopKDelta;
  if (publish.delta_wide_fraction > publish.delta_max_fraction) {
    const std::optional<double> ap_wide = score_wide();
    if (ap_wide && DeltaKeepsAccuracy(*ap_wide, ap_full, publish)) return UpdateRung::kWideDelta;
  }
  return UpdateRung::kFull;
}

Result<HoldoutScore> ScoreOnHoldout(const model::StudentOptions& arch, const update::TensorMap& weights,
                                    const DistillDataset& holdout, const config::LearnerGateOptions& gate) {
  model::Student s(arch);
  KD_RETURN_IF_ERROR(update::LoadState(*s, weights));
  s->eval();
  std::vector<size_t> rows(holdout.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  KD_ASSIGN_OR_RETURN(auto m, EvaluateStudent(*s, holdout, rows, static_cast<float>(gate.gt_min_score)));
  // -1 (no ground truth in the window) counts as 0: nothing to find, nothing found.
  return HoldoutScore{std::max(m.ap, 0.0), std::max(m.ap50, 0.0)};
}

}  // namespace kd::learner
