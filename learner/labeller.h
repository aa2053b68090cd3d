// LabelStage: the teacher over stored frames beyond each camera's label watermark, in batches of
// teacher.batch frames of one size. Each labelled frame gets a teacher record (dense targets, head
// moments, boxes; learner/teacher_record.h) and a difficulty (the deployed student's disagreement
// with the teacher), then joins its group's hold-out window or replay sampler. The watermark is
// stored after the records, so a kill -9 relabels at most one batch and loses none.
//
// Labels are refined as the recipe's [refine] says (learner/refine.h): the teacher pass fuses its
// extra input scales, and the stage smooths boxes along runs of consecutive frames (captured at
// most refine.max_gap_ms apart: the edge uploads bursts). A batch is extended to the end of the
// run it is in (at most kMaxRunExtension more frames), so a burst is labelled as one run; a burst
// still arriving when its first frames are labelled is smoothed as two shorter runs.
//
// Threading: Run() is the stage's thread (the only teacher user besides the trainer's CrossKD head,
// which is read-only). Shares LoopState under its mu, never across a forward or a store write.
#ifndef KD_LEARNER_LABELLER_H_
#define KD_LEARNER_LABELLER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/distill_options.h"
#include "learner/catalogue.h"
#include "learner/dataset.h"
#include "learner/loop_state.h"
#include "media/frame.h"
#include "storage/sample_store.h"

namespace kd::learner {

// The teacher pass the labeller runs: frames of one size -> their DistillDataset rows (teacher
// targets on the student grid of `options`). The seam that lets the stage run without the teacher,
// or on a label worker (learner/remote_teacher.h). `jpegs` are the bytes each frame was decoded
// from (what a remote pass sends; empty when unknown). `cancel` set: stops early with Unavailable
// (nothing labelled; the frames stay unlabelled).
class TeacherPass {
 public:
  virtual ~TeacherPass() = default;
  virtual Result<DistillDataset> Label(const std::vector<media::Frame>& frames,
                                       const std::vector<std::vector<uint8_t>>& jpegs, const DatasetOptions& options,
                                       const std::atomic<bool>& cancel) = 0;
};

// The real one: batched forwards of the CenterNet teacher (DatasetBuilder), `chunk_frames` frames
// per forward, `cancel` checked between them. A labeller batch grows to its run's end (up to
// teacher.batch + kMaxRunExtension frames, each at every refine scale: minutes on a busy CPU), and
// a stopping learner must not wait for all of it (systemd's stop timeout is 90 s). For the same
// reason `before_forward` (when set) runs before each forward, every refine scale's included: the
// learner's labeller waits there while ingest is flooded (learner/ingest_pressure.h).
class CenterNetTeacherPass final : public TeacherPass {
 public:
  CenterNetTeacherPass(const model::CenterNetTeacher& teacher, size_t chunk_frames,
                       std::function<void()> before_forward = {});
  Result<DistillDataset> Label(const std::vector<media::Frame>& frames, const std::vector<std::vector<uint8_t>>& jpegs,
                               const DatasetOptions& options, const std::atomic<bool>& cancel) override;

 private:
  const model::CenterNetTeacher& teacher_;
  const size_t chunk_frames_;
  const std::function<void()> before_forward_;
};

class LabelStage {
 public:
  // Frames a batch may grow beyond teacher.batch to end at a run boundary.
  static constexpr size_t kMaxRunExtension = 64;

  LabelStage(LoopState& state, storage::SampleStore& store, Catalogue& catalogue, TeacherPass& teacher,
             config::LabelRefineOptions refine);

  // Labels the next batch of `device_id`'s frames beyond its watermark. Sets *did_work when the
  // watermark moved (frames that are not decodable JPEGs are skipped and logged). `cancel` set
  // mid-batch: Unavailable, and the watermark stays (the batch is labelled after a restart).
  Status LabelNext(const std::string& device_id, bool* did_work, const std::atomic<bool>& cancel);
  Status LabelNext(const std::string& device_id, bool* did_work) { return LabelNext(device_id, did_work, kNever); }

  // Labels every camera's new frames until `stopping`, sleeping up to 500 ms when there is
  // nothing to do unless Wake() is called (the ingest stage does after storing frames).
  void Run(const std::atomic<bool>& stopping);
  void Wake();

 private:
  LoopState& state_;
  storage::SampleStore& store_;
  Catalogue& catalogue_;
  TeacherPass& teacher_;
  static const std::atomic<bool> kNever;
  const config::LabelRefineOptions refine_;
  std::mutex wake_mu_;
  std::condition_variable wake_;
};

}  // namespace kd::learner

#endif  // KD_LEARNER_LABELLER_H_
