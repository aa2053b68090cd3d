// The sample store's on-disk record format (storage/FORMAT.md, "Keys" and "Values"): the key layout
// of frames and teacher outputs, the versioned, CRC32C-protected values of every column family and
// the store's format marker, with encoders and the validating decoders of stored (untrusted) bytes.
// SampleStore is the only writer; this file is the format, kept apart from RocksDB so that it can
// be unit-tested and fuzzed on its own. Change it together with FORMAT.md.
// Ownership: plain values; decoders copy what they return out of their input.
// Threading: pure functions (no shared mutable state), safe to call concurrently.
#ifndef KD_STORAGE_RECORD_CODEC_H_
#define KD_STORAGE_RECORD_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "storage/sample_store.h"

namespace kd::storage {

// Value format version written by this build (byte 0 of every value).
inline constexpr uint8_t kValueFormatVersion = 1;
// Whole-store format, kept under kFormatMarkerKey in the default column family (2: frames have a
// journal, FORMAT.md "Frame journal"; 1 is read and upgraded).
inline constexpr uint32_t kStoreFormatVersion = 2;
inline constexpr std::string_view kFormatMarkerKey = "kd.storage.format";

// ---- Keys of `frames` and `teacher`: u8 length, device_id, u64 big-endian seq ------------------

// The key prefix shared by every sample of `device_id` (1..255 bytes; longer ids are the caller's
// bug: see CheckDeviceId in sample_store.cc).
std::string DevicePrefix(std::string_view device_id);
std::string SampleKey(std::string_view device_id, uint64_t seq);

struct ParsedKey {
  std::string_view device_id;  // a view into the parsed key
  uint64_t seq = 0;
};
// False for a key that is not exactly 1 + L + 8 bytes with 1 <= L.
bool ParseSampleKey(std::string_view key, ParsedKey* out);

// For messages: `bytes` with non-printable bytes (and '\') as \xNN; "<kind> '<device>'/<seq>";
// the same from a key, or "<kind> key '<printable key>'" for a malformed one.
std::string Printable(std::string_view bytes);
std::string DescribeSample(std::string_view kind, std::string_view device_id, uint64_t seq);
std::string DescribeKey(std::string_view kind, std::string_view key);

// ---- Values: version byte first, CRC32C of key + value last ------------------------------------

// The stored value of `frame` under `key` (the frame's device_id and seq are taken from the key,
// not written). REQUIRES: frame.jpeg.size() < 2^32.
std::string EncodeFrameValue(std::string_view key, const FrameRecord& frame);
// The same value in three parts, so a write can take the JPEG bytes where they are (one copy into
// the write batch instead of two): head + frame.jpeg + tail == EncodeFrameValue(key, frame).
struct FrameValueParts {
  std::string head;  // format version, timestamps, JPEG length
  std::string tail;  // CRC32C of key + head + JPEG
};
FrameValueParts EncodeFrameValueParts(std::string_view key, const FrameRef& frame);
// REQUIRES: blob.size() < 2^32.
std::string EncodeTeacherValue(std::string_view key, std::span<const uint8_t> blob, float difficulty,
                               uint32_t blob_schema);
std::string EncodeMetaValue(std::string_view key, std::string_view bytes);

// The decoders apply FORMAT.md's reading rules in order (Corruption: malformed key, too short, CRC
// mismatch, version 0, short header, size field; Unimplemented: a newer version); messages name the
// record ("frame 'cam-1'/42"). `out` may be null (check only); it is written only on success.
Status DecodeFrameValue(std::string_view key, std::string_view value, FrameRecord* out);
Status DecodeTeacherValue(std::string_view key, std::string_view value, TeacherRecord* out);
Status DecodeMetaValue(std::string_view key, std::string_view value, std::string* out);

// The format marker: a meta value under kFormatMarkerKey whose payload is a u32 store format
// version. Decode returns the version as stored (the caller compares it with kStoreFormatVersion);
// Corruption for a damaged value or a payload that is not 4 bytes.
std::string EncodeFormatMarkerValue(uint32_t store_format = kStoreFormatVersion);
Result<uint32_t> DecodeFormatMarkerValue(std::string_view value);

}  // namespace kd::storage

#endif  // KD_STORAGE_RECORD_CODEC_H_
