// libFuzzer target: the sample store's value decoders (storage/record_codec.h): frame, teacher
// output, meta and format-marker values as RocksDB hands them back, with their key. The input is a
// (key, value) pair as fuzz_util.h's SplitKeyValue says. Each value is tried as it is and with its
// CRC32C recomputed (so that mutations reach the checks behind the checksum). Whatever decodes
// re-encodes to the same bytes.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/check.h"
#include "base/coding.h"
#include "base/crc32c.h"
#include "fuzz/fuzz_util.h"
#include "storage/record_codec.h"

namespace {

// `value` with its last 4 bytes replaced by the CRC32C of key ‖ the rest (FORMAT.md, "Values").
std::string WithValidCrc(std::string_view key, std::string_view value) {
  std::string out(value.substr(0, value.size() - 4));
  const uint32_t crc = kd::Crc32cExtend(kd::Crc32c(key), out.data(), out.size());
  kd::PutLe32(&out, crc);
  return out;
}

void DecodeAll(std::string_view key, std::string_view value) {
  using namespace kd::storage;  // NOLINT(google-build-using-namespace): a fuzz target's helper
  FrameRecord frame;
  if (DecodeFrameValue(key, value, &frame).ok()) {
    KD_CHECK(SampleKey(frame.device_id, frame.seq) == key);
    KD_CHECK_MSG(EncodeFrameValue(key, frame) == value, "a decoded frame value does not re-encode to its bytes");
  }
  KD_CHECK(DecodeFrameValue(key, value, nullptr).ok() == !frame.device_id.empty());
  TeacherRecord teacher;
  if (DecodeTeacherValue(key, value, &teacher).ok()) {
    KD_CHECK_MSG(EncodeTeacherValue(key, teacher.blob, teacher.difficulty, teacher.blob_schema) == value,
                 "a decoded teacher value does not re-encode to its bytes");
  }
  std::string meta;
  if (DecodeMetaValue(key, value, &meta).ok()) KD_CHECK(EncodeMetaValue(key, meta) == value);
  kd::Result<uint32_t> marker = DecodeFormatMarkerValue(value);
  if (marker.ok()) KD_CHECK(EncodeFormatMarkerValue(*marker) == value);
  ParsedKey parsed;
  if (ParseSampleKey(key, &parsed)) KD_CHECK(SampleKey(parsed.device_id, parsed.seq) == key);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto [key, value] = kd::fuzz::SplitKeyValue(std::span(data, size));
  DecodeAll(key, value);
  if (value.size() >= 4) DecodeAll(key, WithValidCrc(key, value));
  return 0;
}
