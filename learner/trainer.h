// TrainStage: continual training rounds, one group at a time. A round samples the group's replay
// mix (fresh and hard past frames), runs training.round_iterations steps of the recipe's
// distillation from where the last round stopped, turns the result into the candidate devices
// would run (the delta from the deployed version, reconstructed), gates it against the deployed
// model on the group's held-out frames (learner/gate.h) and hands a winner to the Publisher. It
// also publishes the factory model as version 1 of a new group, and reverts a halted rollout.
//
// Threading: Run() is the stage's thread; the per-group trainers (student, optimiser) are its own.
// Reads LoopState under its mu (copies), never trains or evaluates under it.
#ifndef KD_LEARNER_TRAINER_H_
#define KD_LEARNER_TRAINER_H_

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>
#include <torch/types.h>

#include "base/clock.h"
#include "config/distill_options.h"
#include "learner/catalogue.h"
#include "learner/dataset.h"
#include "learner/loop_state.h"
#include "learner/publisher.h"
#include "model/teacher.h"
#include "model/weights_file.h"
#include "storage/sample_store.h"

namespace kd::learner {

// Frames and teacher records (device, seq) from the store as a DistillDataset, in order. Frames
// aged out by retention, undecodable images, bad records and rows of another size or class set
// than the first are skipped.
Result<DistillDataset> AssembleFromStore(const storage::SampleStore& store,
                                         const std::vector<std::pair<std::string, uint64_t>>& keys);

class TrainStage {
 public:
  // After a failed round (LibTorch threw), the group waits this long before the next.
  static constexpr int64_t kRetryAfterFailureUs = 60 * 1'000'000LL;

  // `bootstrap`: the factory model (version 1 of each group), or null. Borrows everything.
  TrainStage(LoopState& state, const storage::SampleStore& store, Catalogue& catalogue, Publisher& publisher,
             const model::CenterNetTeacher& teacher, torch::Device device, config::DistillOptions recipe,
             const model::LoadedStudent* bootstrap, const Clock& clock);

  // Publishes the factory model as version 1 of groups that have devices and no version yet.
  void PublishFactoryModels();
  // One round for `group`; false when it had too few labelled frames (nothing done).
  bool Round(const std::string& group, const std::atomic<bool>& stopping);
  // Rounds for every group until `stopping`; reverts halted rollouts.
  void Run(const std::atomic<bool>& stopping);

 private:
  struct GroupTrainer;
  // Adds what the round record needs besides the gate (time, versions, the group's traffic and label
  // backlog), counts the verdict and appends the record to the round log.
  void RecordRound(const std::string& group, nlohmann::json& round, uint64_t deployed_version);

  LoopState& state_;
  const storage::SampleStore& store_;
  Catalogue& catalogue_;
  Publisher& publisher_;
  const model::CenterNetTeacher& teacher_;
  const torch::Device device_;
  const config::DistillOptions recipe_;
  const model::LoadedStudent* bootstrap_;
  const Clock& clock_;
  std::map<std::string, std::shared_ptr<GroupTrainer>> trainers_;
  std::map<std::string, int64_t> retry_after_us_;  // group -> no round before (after a failed one)
};

}  // namespace kd::learner

#endif  // KD_LEARNER_TRAINER_H_
