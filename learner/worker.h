// LearnerWorker: the engine of `kdlearnd worker`, one process per GPU (or per CPU box), on the
// coordinator's machine or another. It joins the coordinator's world (cluster/membership.h), then,
// as a train worker (the default), trains the round jobs it is sent (learner/round_job.h) with a
// RoundTrainer of its own and returns the trained weights, or, as a label worker (`--role label`),
// runs the teacher on the label jobs it is sent (learner/label_job.h) and returns the teacher rows;
// the coordinator keeps the store, the gate, publishing and everything devices see. It loads the teacher (CrossKD runs
// the teacher's head on the student's features) and the recipe from the same config file as the coordinator ([teacher],
// [training], [cluster]).
//
// A worker declared dead (it was silent too long) or cut off from the store joins again as a new
// member; a refused join (wrong secret or generation) ends it with that error. Stopping (the stop
// flag) finishes the optimiser step in progress, says goodbye (the coordinator moves the worker's
// groups at once) and returns.
//
// Threading: RunWorker blocks its caller; the heartbeat thread is the membership link's.
#ifndef KD_LEARNER_WORKER_H_
#define KD_LEARNER_WORKER_H_

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>

#include "base/status.h"
#include "config/daemon_options.h"

#include "cluster/membership.h"

namespace kd::learner {

struct WorkerRunOptions {
  std::string coordinator;             // host:port of the coordinator's store (its cluster.listen)
  std::optional<uint64_t> generation;  // join only this world (nullopt: the current one)
  std::string name;                    // shown in the coordinator's status ("" = host:pid)
  double reconnect_s = 2;              // wait before joining again after losing the coordinator
  cluster::WorkerRole role = cluster::WorkerRole::kTrain;
};

// Runs until `stop` (OK) or a refused join / a config error (that error). Loads the teacher first.
Status RunWorker(const config::LearnerOptions& options, const WorkerRunOptions& run, const std::atomic<bool>& stop);

}  // namespace kd::learner

#endif  // KD_LEARNER_WORKER_H_
