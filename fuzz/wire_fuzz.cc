// libFuzzer target: kd::wire::DecodeFrames (wire/message.h), the validator of every multipart
// ZeroMQ message a learner or an edge receives. The input is split into frames as
// fuzz/fuzz_util.h's SplitFrames says; default Limits (the daemons' own), no clock-skew check.
// Checks beyond "no crash, no sanitizer report": a failure always names an ErrorCode, and a
// message that decodes re-encodes to frames that decode to the same header and payload.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/check.h"
#include "fuzz/fuzz_util.h"
#include "wire/message.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kd::wire::ErrorCode;
  const std::vector<std::string> frames = kd::fuzz::SplitFrames(std::span(data, size));
  const kd::wire::Limits limits;
  ErrorCode code = ErrorCode::kInternal;
  kd::Result<kd::wire::Message> decoded = kd::wire::DecodeFrames(frames, limits, &code);
  if (!decoded.ok()) {
    KD_CHECK_MSG(code != ErrorCode::kNone, decoded.status().ToString());
    return 0;
  }
  KD_CHECK(code == ErrorCode::kNone);
  const kd::wire::Message& m = *decoded;
  kd::Result<kd::wire::Message> again = kd::wire::DecodeFrames(kd::wire::EncodeFrames(m), limits, &code);
  KD_CHECK_MSG(again.ok(), "a decoded message does not re-encode: " + again.status().ToString());
  KD_CHECK(again->header.type == m.header.type && again->header.device_id == m.header.device_id &&
           again->header.seq == m.header.seq && again->header.payload_crc32c == m.header.payload_crc32c &&
           again->payload == m.payload);
  return 0;
}
