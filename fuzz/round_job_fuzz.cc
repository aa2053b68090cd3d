// libFuzzer target: kd::learner::DecodeRoundJob and DecodeRoundResult (learner/round_job.h), the
// decoders of what a coordinating learner and its workers exchange over the c10d store
// (cluster/PROTOCOL.md). The values are authenticated there; this is defence in depth against a
// peer with the secret and a bug. A decoded job or result must encode back to the same bytes.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/check.h"
#include "learner/round_job.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto job = kd::learner::DecodeRoundJob(bytes); job.ok()) {
    KD_CHECK(!job->group.empty() && job->iterations >= 1);
    auto again = kd::learner::DecodeRoundJob(kd::learner::EncodeRoundJob(*job));
    KD_CHECK(again.ok() && again->frames.size() == job->frames.size() && again->start_kdw == job->start_kdw);
  }
  if (auto result = kd::learner::DecodeRoundResult(bytes); result.ok()) {
    auto again = kd::learner::DecodeRoundResult(kd::learner::EncodeRoundResult(*result));
    KD_CHECK(again.ok() && again->trained_kdw == result->trained_kdw && again->group == result->group);
  }
  return 0;
}
