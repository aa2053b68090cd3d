// Teacher records: what the learner stores per labelled frame (the teacher's dense targets on the
// student grid, its head-feature moments and its decoded boxes) and how stored frames + records are
// assembled back into a DistillDataset for a training round or an evaluation. The blob layout is
// specified in storage/FORMAT.md ("teacher blob schema 1"); it is opaque to the store.
// Functions are pure; DatasetAssembler is thread-compatible (one thread fills it).
#ifndef KD_LEARNER_TEACHER_RECORD_H_
#define KD_LEARNER_TEACHER_RECORD_H_

#include <cstdint>
#include <span>
#include <vector>

#include <torch/types.h>

#include "base/detection.h"
#include "base/status.h"
#include "learner/dataset.h"
#include "media/frame.h"
#include "model/student.h"

namespace kd::learner {

inline constexpr uint32_t kTeacherBlobSchema = 1;

// One row of a DistillDataset without its image (the image is the stored JPEG).
struct TeacherRow {
  int orig_width = 0, orig_height = 0;
  int student_width = 0, student_height = 0;
  int teacher_width = 0, teacher_height = 0;
  std::vector<int> labels;         // channel k <-> COCO label labels[k]
  torch::Tensor heat;              // [K,Hs/4,Ws/4] f16
  torch::Tensor box;               // [4,Hs/4,Ws/4] f16
  torch::Tensor feat_mean;         // [128] f32
  torch::Tensor feat_sqmean;       // [128] f32
  std::vector<Detection> pseudo;   // label = channel k, student-input pixels
  std::vector<Detection> teacher;  // COCO labels, original pixels
};

// Serialises row `row` of `data` (blob schema kTeacherBlobSchema, little-endian, CRC inside the store).
std::vector<uint8_t> EncodeTeacherRow(const DistillDataset& data, size_t row);
// Corruption on a blob that is truncated, has trailing bytes, or inconsistent sizes.
Result<TeacherRow> DecodeTeacherRow(std::span<const uint8_t> blob);

// Builds a DistillDataset from decoded frames and their teacher rows. Rows must agree on sizes and
// labels (the first row sets them; a mismatching row is InvalidArgument and is not added). Frame
// indices are the row numbers 0..n-1 (frames of several cameras may share a seq).
class DatasetAssembler {
 public:
  Status Add(const media::Frame& frame, TeacherRow row);
  size_t size() const { return rows_.size(); }
  Result<DistillDataset> Finish() &&;

 private:
  std::vector<TeacherRow> rows_;
  std::vector<torch::Tensor> images_;
};

// Per-frame disagreement between the student and the teacher, in [0, 1]: the L1 distance of their
// class maps weighted by max(student, teacher), i.e. measured where either sees something (a frame
// the student already gets right scores ~0; a missed or hallucinated object raises it). Drives
// hard-sample replay. `rows` index `data`. Reads the head the student runs at inference (the
// one-to-one branch of an NMS-free student); a student that cannot run scores 1 (unknown).
std::vector<float> StudentDisagreement(const model::FusedStudent& student, const DistillDataset& data,
                                       const std::vector<size_t>& rows);

}  // namespace kd::learner

#endif  // KD_LEARNER_TEACHER_RECORD_H_
