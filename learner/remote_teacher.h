// Teacher labelling on label workers (`kdlearnd worker --role label`, cluster/PROTOCOL.md).
//
// RemoteTeacherPass is the coordinator's labeller's teacher when [cluster] is on: each batch goes to
// an alive label worker that has no job in flight, as a label job (learner/label_job.h: the JPEGs
// as stored and the labeller's DatasetOptions), and the worker's teacher rows come back. With no
// such worker, or when the worker fails, dies, is cut off or takes longer than the timeout, the
// batch is labelled by the coordinator's own teacher: labelling never stops for a worker. The
// rows are the same either way (the worker decodes the same JPEGs and runs the same teacher with
// the same options), so what the store keeps does not depend on where a frame was labelled.
// AnswerLabelJob is the worker's side.
//
// Threading: RemoteTeacherPass::Label runs on the labeller's thread only (one label job in
// flight at a time; a second label worker is a standby, not more throughput: see PROTOCOL.md,
// "Limits"). It shares the WorkerPool (thread-safe) with the trainer stage, which never sends
// jobs to label workers.
#ifndef KD_LEARNER_REMOTE_TEACHER_H_
#define KD_LEARNER_REMOTE_TEACHER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <set>

#include "learner/label_job.h"
#include "learner/labeller.h"

#include "cluster/membership.h"

namespace kd::learner {

class RemoteTeacherPass final : public TeacherPass {
 public:
  // A label job that has not answered in this long is given up and labelled here. Generous: a
  // labeller batch is up to teacher.batch + 64 frames at every refine scale, minutes on a CPU.
  static constexpr std::chrono::seconds kDefaultTimeout{600};
  // A worker whose label job failed (an error, a malformed result, the timeout) gets no batch for
  // this long: a worker that keeps failing costs one round trip a minute, not one per batch.
  static constexpr std::chrono::seconds kRetryAfterFailure{60};

  // Borrows both; `local` is the coordinator's own teacher pass.
  RemoteTeacherPass(cluster::WorkerPool& workers, TeacherPass& local,
                    std::chrono::milliseconds timeout = kDefaultTimeout,
                    std::chrono::milliseconds retry_after_failure = kRetryAfterFailure);

  Result<DistillDataset> Label(const std::vector<media::Frame>& frames, const std::vector<std::vector<uint8_t>>& jpegs,
                               const DatasetOptions& options, const std::atomic<bool>& cancel) override;

  // Frames labelled by workers and here (the labeller's thread writes; any thread may read).
  uint64_t frames_remote() const { return frames_remote_; }
  uint64_t frames_local() const { return frames_local_; }

 private:
  // The rows of a worker, or an error (then the caller labels here).
  Result<DistillDataset> LabelOn(uint64_t worker, const std::vector<media::Frame>& frames,
                                 const std::vector<std::vector<uint8_t>>& jpegs, const DatasetOptions& options,
                                 const std::atomic<bool>& cancel);
  // Takes and drops the late results of jobs given up earlier, so those workers become free again.
  void DrainAbandoned();

  cluster::WorkerPool& workers_;
  TeacherPass& local_;
  const std::chrono::milliseconds timeout_, retry_after_failure_;
  std::set<uint64_t> abandoned_;                                            // workers whose job in flight was given up
  std::map<uint64_t, std::chrono::steady_clock::time_point> failed_until_;  // retry_after_failure_
  std::atomic<uint64_t> frames_remote_{0}, frames_local_{0};
};

// The label worker's side: decodes the job's JPEGs and labels them with `teacher` (the worker's
// CenterNetTeacherPass) under the job's options. Errors come back in the result, never thrown.
LabelResult AnswerLabelJob(const LabelJob& job, TeacherPass& teacher, const std::atomic<bool>& cancel);

}  // namespace kd::learner

#endif  // KD_LEARNER_REMOTE_TEACHER_H_
