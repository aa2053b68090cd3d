// libFuzzer target: kd::learner::DecodeTeacherRow (learner/teacher_record.h), the decoder of the
// teacher blobs the learner reads back from its store (blob schema 1, storage/FORMAT.md). The
// store's CRC covers the blob, so this is defence in depth against a damaged or foreign store.
// A decoded row must be self-consistent: tensor shapes follow its sizes and label count.
#include <cstddef>
#include <cstdint>
#include <span>

#include "base/check.h"
#include "learner/teacher_record.h"
#include "model/threads.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  kd::model::SetComputeThreads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kd::Result<kd::learner::TeacherRow> row = kd::learner::DecodeTeacherRow(std::span(data, size));
  if (!row.ok()) return 0;
  const int64_t k = static_cast<int64_t>(row->labels.size());
  const int64_t gh = row->student_height / 4, gw = row->student_width / 4;
  KD_CHECK(row->heat.sizes() == (std::vector<int64_t>{k, gh, gw}));
  KD_CHECK(row->box.sizes() == (std::vector<int64_t>{4, gh, gw}));
  KD_CHECK(row->feat_mean.numel() == 128 && row->feat_sqmean.numel() == 128);
  return 0;
}
