// TrainStage: continual training rounds, one group at a time per trainer. A round samples the
// group's replay mix (fresh and hard past frames), trains training.round_iterations steps of the
// recipe's distillation from where the group's last round stopped (learner/round_trainer.h), turns
// the result into the candidate devices would run (the delta from the deployed version,
// reconstructed), gates it against the deployed model on the group's held-out frames
// (learner/gate.h) and hands a winner to the Publisher. It also publishes the factory model as
// version 1 of a new group, and reverts a halted rollout.
//
// Where rounds train: here (this thread's RoundTrainer), or, with [cluster] on, on `kdlearnd
// worker` processes: groups are placed on the live workers (sticky, balanced; each placement has
// a new epoch), a free worker gets a round job of one of its groups (the frames and teacher
// records, and the start weights when its token changed), and the result comes back here for the
// gate. A result of an older epoch, or of a worker declared dead, is dropped; a dead or departed
// worker's groups are placed again at once (cluster/membership.h). Which group a free trainer
// takes is learner/round_scheduler.h's decision.
//
// Threading: Run() is the stage's thread; the trainers, the scheduler and the placement are its
// own. Reads LoopState under its mu (copies), never trains or evaluates under it. ScheduleJson()
// may be called from any thread.
#ifndef KD_LEARNER_TRAINER_H_
#define KD_LEARNER_TRAINER_H_

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
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
#include "learner/round_job.h"
#include "learner/round_scheduler.h"
#include "learner/round_trainer.h"
#include "model/teacher.h"
#include "model/weights_file.h"
#include "storage/sample_store.h"

#include "cluster/membership.h"

namespace kd::learner {

// Frames and teacher records (device, seq) from the store as a DistillDataset, in order. Frames
// aged out by retention, undecodable images, bad records and rows of another size or class set
// than the first are skipped.
Result<DistillDataset> AssembleFromStore(const storage::SampleStore& store,
                                         const std::vector<std::pair<std::string, uint64_t>>& keys);
// The same from frames already in memory (a worker's round job: JPEG and teacher record blobs).
Result<DistillDataset> AssembleFromFrames(const std::vector<JobFrame>& frames);

class TrainStage {
 public:
  // After a failed round (LibTorch threw), the group waits this long before the next.
  static constexpr int64_t kRetryAfterFailureUs = 60 * 1'000'000LL;

  // `bootstrap`: the factory model (version 1 of each group), or null. `workers`: the cluster's
  // worker pool (rounds train there), or null (rounds train here). Borrows everything.
  TrainStage(LoopState& state, const storage::SampleStore& store, Catalogue& catalogue, Publisher& publisher,
             const model::CenterNetTeacher& teacher, torch::Device device, config::DistillOptions recipe,
             const model::LoadedStudent* bootstrap, const Clock& clock, cluster::WorkerPool* workers = nullptr);
  ~TrainStage();

  // Publishes the factory model as version 1 of groups that have devices and no version yet.
  void PublishFactoryModels();
  // One round for `group`, trained here; false when it had too few labelled frames (nothing done).
  bool Round(const std::string& group, const std::atomic<bool>& stopping);
  // Rounds for every group until `stopping`; reverts halted rollouts.
  void Run(const std::atomic<bool>& stopping);

  // The scheduler's ledger and decisions per group, and (with workers) the placement and each
  // worker's state: a JSON object for status. Thread-safe.
  std::string ScheduleJson() const;

 private:
  // What a round needs from LoopState, copied under its mu when the round starts.
  struct Prepared {
    std::string group;
    std::vector<std::pair<std::string, uint64_t>> train_keys, holdout_keys;
    std::shared_ptr<const model::StudentOptions> arch;
    std::shared_ptr<const DeployedModel> deployed;
    uint64_t latest = 0, reverts = 0;
  };
  struct Placement {
    uint64_t worker = 0, epoch = 0;
    uint64_t token_sent = 0;   // the start token the worker has (0 = none yet)
    uint64_t anchor_sent = 0;  // the deployed version whose weights the worker was last sent
  };
  struct InFlight {
    Prepared round;
    uint64_t epoch = 0, token = 0;
    int64_t sent_us = 0;
  };

  std::optional<Prepared> Prepare(const std::string& group);
  // The start of a group's trainer: the deployed model, else the factory model, else none.
  RoundStart StartOf(const Prepared& p, uint64_t token) const;
  // Gate, publish, record, and tell the scheduler. Returns whether a version was published.
  bool Finish(const Prepared& p, const TrainedRound& trained);
  // Adds what the round record needs besides the gate (time, versions, the group's traffic and label
  // backlog), counts the verdict and appends the record to the round log.
  void RecordRound(const std::string& group, nlohmann::json& round, uint64_t deployed_version);
  // Groups with enough labelled frames, no round in flight and no retry pause, with their signals.
  std::map<std::string, GroupSignals> ReadyGroups();
  void RevertHalted();
  // One pass of local training; returns whether a round ran.
  bool RunLocal(const std::atomic<bool>& stopping);
  // One pass of the cluster: place groups, collect results, dispatch jobs; whether anything happened.
  bool RunCluster(const std::atomic<bool>& stopping);
  void Place();
  Status Dispatch(uint64_t worker, const std::string& group);
  void Collect(uint64_t worker);
  void PublishSchedule();
  void RoundFailed(const std::string& group, const std::string& why);

  LoopState& state_;
  const storage::SampleStore& store_;
  Catalogue& catalogue_;
  Publisher& publisher_;
  const torch::Device device_;
  const config::DistillOptions recipe_;
  const model::LoadedStudent* bootstrap_;
  const Clock& clock_;
  cluster::WorkerPool* const workers_;
  RoundTrainer trainer_;
  RoundScheduler scheduler_;
  std::map<std::string, int64_t> retry_after_us_;  // group -> no round before (after a failed one)
  std::map<std::string, Placement> placement_;     // with workers: group -> its worker
  std::map<uint64_t, InFlight> in_flight_;         // with workers: worker -> its round job
  uint64_t next_epoch_ = 1;
  mutable std::mutex schedule_mu_;
  std::string schedule_json_ = "{}";
};

}  // namespace kd::learner

#endif  // KD_LEARNER_TRAINER_H_
