// The label job a coordinating learner sends a `kdlearnd worker --role label`, and the labels it
// gets back: the payloads of cluster/PROTOCOL.md's job and result values for label workers
// (authenticated there; decoded here as untrusted bytes all the same). Spec, little-endian:
//
//   job    = "KDLJ" u32 version(1) lp(json header) u32 n  n x lp(JPEG)
//   result = "KDLR" u32 version(1) lp(json header) u32 n  n x lp(teacher row blob)
//
// lp(x) = u32 length, then the bytes. Job header: {"student_long_side", "teacher_long_side",
// "teacher_min_score", "labels", "refine": {"enabled", "extra_long_sides", "wbf_iou"}}: the
// DatasetOptions of the coordinator's labeller for this batch (learner/dataset.h), so a worker
// labels exactly as the coordinator would whatever its own recipe says. The frames are the JPEGs
// as the edge sent them (the worker decodes the same pixels). Result header: {"error" ("" = ok),
// "seconds"}; the rows are teacher blobs (schema 1, storage/FORMAT.md), one per frame in job
// order. Temporal smoothing and the student's disagreement stay on the coordinator: they need the
// neighbouring frames and the deployed student.
// Pure functions; thread-safe.
#ifndef KD_LEARNER_LABEL_JOB_H_
#define KD_LEARNER_LABEL_JOB_H_

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "config/distill_options.h"

namespace kd::learner {

struct LabelJob {
  int student_long_side = 0;          // px. REQUIRES: 32..4096
  int teacher_long_side = 0;          // px, a multiple of 32 in 64..2048
  float teacher_min_score = 0;        // in [0, 1]
  std::vector<int> labels;            // COCO labels the student learns: 1..80 of them, each 0..79
  config::LabelRefineOptions refine;  // only enabled, extra_long_sides and wbf_iou travel
  std::vector<std::string> jpegs;     // the frames, one batch of one size
};

struct LabelResult {
  std::string error;  // "" = labelled
  double seconds = 0;
  std::vector<std::string> rows;  // teacher blobs, one per job frame
};

// Refused above these (bytes): a labeller batch is at most teacher.batch + 64 frames of ~80 KB.
inline constexpr size_t kMaxLabelJobBytes = size_t{1} << 30;
inline constexpr size_t kMaxLabelFrameBytes = size_t{64} << 20;

std::string EncodeLabelJob(const LabelJob& job);
// Corruption on any format error or an option outside its range (a decoded job is safe to run).
Result<LabelJob> DecodeLabelJob(std::string_view bytes);
std::string EncodeLabelResult(const LabelResult& result);
Result<LabelResult> DecodeLabelResult(std::string_view bytes);

}  // namespace kd::learner

#endif  // KD_LEARNER_LABEL_JOB_H_
