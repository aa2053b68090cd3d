// libFuzzer target: kd::learner::DecodeRoundJob and DecodeRoundResult (learner/round_job.h), and
// DecodeLabelJob and DecodeLabelResult (learner/label_job.h): the decoders of what a coordinating
// learner and its train and label workers exchange over the c10d store
// (cluster/PROTOCOL.md). The values are authenticated there; this is defence in depth against a
// peer with the secret and a bug. A decoded job or result must encode back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/check.h"
#include "learner/label_job.h"
#include "learner/round_job.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto job = kd::learner::DecodeRoundJob(bytes); job.ok()) {
    KD_CHECK(!job->group.empty() && job->iterations >= 1);
    auto again = kd::learner::DecodeRoundJob(kd::learner::EncodeRoundJob(*job));
    KD_CHECK(job->update_fraction > 0 && job->update_fraction <= 1);
    KD_CHECK(again.ok() && again->frames.size() == job->frames.size() && again->start_kdw == job->start_kdw &&
             again->anchor == job->anchor && again->update_fraction == job->update_fraction);
  }
  if (auto result = kd::learner::DecodeRoundResult(bytes); result.ok()) {
    auto again = kd::learner::DecodeRoundResult(kd::learner::EncodeRoundResult(*result));
    KD_CHECK(again.ok() && again->trained_kdw == result->trained_kdw && again->group == result->group);
  }
  if (auto job = kd::learner::DecodeLabelJob(bytes); job.ok()) {
    // The decoder's ranges hold (a worker runs what it decodes) and it encodes back the same.
    KD_CHECK(!job->labels.empty() && job->labels.size() <= 80 && job->teacher_long_side % 32 == 0);
    auto again = kd::learner::DecodeLabelJob(kd::learner::EncodeLabelJob(*job));
    KD_CHECK(again.ok() && again->jpegs == job->jpegs && again->labels == job->labels &&
             again->refine.extra_long_sides == job->refine.extra_long_sides);
  }
  if (auto result = kd::learner::DecodeLabelResult(bytes); result.ok()) {
    auto again = kd::learner::DecodeLabelResult(kd::learner::EncodeLabelResult(*result));
    KD_CHECK(again.ok() && again->rows == result->rows && again->error == result->error);
  }
  return 0;
}
