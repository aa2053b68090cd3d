// LabelStage: the teacher over stored frames beyond each camera's label watermark, in batches of
// teacher.batch frames of one size. Each labelled frame gets a teacher record (dense targets, head
// moments, boxes; learner/teacher_record.h) and a difficulty (the deployed student's disagreement
// with the teacher), then joins its group's hold-out window or replay sampler. The watermark is
// stored after the records, so a kill -9 relabels at most one batch and loses none.
//
// Threading: Run() is the stage's thread (the only teacher user besides the trainer's CrossKD head,
// which is read-only). Shares LoopState under its mu, never across a forward or a store write.
#ifndef KD_LEARNER_LABELLER_H_
#define KD_LEARNER_LABELLER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "learner/catalogue.h"
#include "learner/dataset.h"
#include "learner/loop_state.h"
#include "media/frame.h"
#include "storage/sample_store.h"

namespace kd::learner {

// The teacher pass the labeller runs: frames of one size -> their DistillDataset rows (teacher
// targets on the student grid of `options`). The seam that lets the stage run without the teacher.
class TeacherPass {
 public:
  virtual ~TeacherPass() = default;
  virtual Result<DistillDataset> Label(const std::vector<media::Frame>& frames, const DatasetOptions& options) = 0;
};

// The real one: a batched forward of the CenterNet teacher (DatasetBuilder).
class CenterNetTeacherPass final : public TeacherPass {
 public:
  explicit CenterNetTeacherPass(const model::CenterNetTeacher& teacher) : teacher_(teacher) {}
  Result<DistillDataset> Label(const std::vector<media::Frame>& frames, const DatasetOptions& options) override;

 private:
  const model::CenterNetTeacher& teacher_;
};

class LabelStage {
 public:
  LabelStage(LoopState& state, storage::SampleStore& store, Catalogue& catalogue, TeacherPass& teacher);

  // Labels the next batch of `device_id`'s frames beyond its watermark. Sets *did_work when the
  // watermark moved (frames that are not decodable JPEGs are skipped and logged).
  Status LabelNext(const std::string& device_id, bool* did_work);

  // Labels every camera's new frames until `stopping`, sleeping up to 500 ms when there is
  // nothing to do unless Wake() is called (the ingest stage does after storing frames).
  void Run(const std::atomic<bool>& stopping);
  void Wake();

 private:
  LoopState& state_;
  storage::SampleStore& store_;
  Catalogue& catalogue_;
  TeacherPass& teacher_;
  std::mutex wake_mu_;
  std::condition_variable wake_;
};

}  // namespace kd::learner

#endif  // KD_LEARNER_LABELLER_H_
