#include "storage/record_codec.h"

#include <array>
#include <bit>
#include <cstdio>

#include "base/coding.h"
#include "base/crc32c.h"
#include "base/text.h"

namespace kd::storage {
namespace {

constexpr size_t kCrcBytes = 4;
constexpr size_t kFrameHeaderBytes = 21;    // version, capture_time_us, received_time_us, jpeg_size
constexpr size_t kTeacherHeaderBytes = 13;  // version, difficulty, blob_schema, blob_size
constexpr size_t kMetaHeaderBytes = 1;      // version
constexpr size_t kSeqBytes = 8;

// ---- Byte helpers (bounds are the callers' checks) -----------------------------------------------

uint32_t GetLe32(std::string_view s, size_t at) { return DecodeLe32(s.data() + at); }
uint64_t GetLe64(std::string_view s, size_t at) { return DecodeLe64(s.data() + at); }
uint64_t GetBe64(std::string_view s, size_t at) { return DecodeBe64(s.data() + at); }

// A CRC for a message: "0x" and 8 lowercase hex digits.
std::string Hex32(uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

void AppendCrc(std::string_view key, std::string* value) {
  uint32_t crc = Crc32cExtend(0, key.data(), key.size());
  crc = Crc32cExtend(crc, value->data(), value->size());
  PutLe32(value, crc);
}

// Checks what every format version shares (version byte first, CRC32C of key + value last) and that
// the version is one this build reads; `header_bytes` is the fixed part of the v1 layout.
Status CheckEnvelope(const std::string& what, std::string_view key, std::string_view value, size_t header_bytes) {
  if (value.size() < 1 + kCrcBytes) {
    return Status::Corruption(what + ": stored value of " + std::to_string(value.size()) +
                              " bytes is too short for any format version");
  }
  const size_t body = value.size() - kCrcBytes;
  const uint32_t stored = GetLe32(value, body);
  uint32_t computed = Crc32cExtend(0, key.data(), key.size());
  computed = Crc32cExtend(computed, value.data(), body);
  if (stored != computed) {
    return Status::Corruption(what + ": CRC32C mismatch (stored " + Hex32(stored) + ", computed " + Hex32(computed) +
                              "): the value is damaged or was written under another key");
  }
  const auto version = static_cast<uint8_t>(value[0]);
  if (version == 0) return Status::Corruption(what + ": format version 0 is not a valid version");
  if (version != kValueFormatVersion) {
    return Status::Unimplemented(what + ": value format version " + std::to_string(version) +
                                 " is newer than this build reads (" + std::to_string(kValueFormatVersion) + ")");
  }
  if (value.size() < header_bytes + kCrcBytes) {
    return Status::Corruption(what + ": stored value of " + std::to_string(value.size()) +
                              " bytes is shorter than the version 1 header");
  }
  return Status::Ok();
}

}  // namespace

// ---- CRC32C, slicing-by-8 --------------------------------------------------------------------------

// ---- Messages ---------------------------------------------------------------------------------------

// Printable form of a device id or meta key for messages (non-printable bytes as \xNN).
std::string Printable(std::string_view bytes) { return PrintableBytes(bytes); }

// ---- Keys (FORMAT.md, "Keys") ---------------------------------------------------------------------

std::string DevicePrefix(std::string_view device_id) {
  std::string k;
  k.reserve(1 + device_id.size() + kSeqBytes);
  k.push_back(static_cast<char>(static_cast<uint8_t>(device_id.size())));
  k.append(device_id);
  return k;
}

std::string SampleKey(std::string_view device_id, uint64_t seq) {
  std::string k = DevicePrefix(device_id);
  PutBe64(&k, seq);
  return k;
}

bool ParseSampleKey(std::string_view key, ParsedKey* out) {
  if (key.empty()) return false;
  const size_t len = static_cast<uint8_t>(key[0]);
  if (len == 0 || key.size() != 1 + len + kSeqBytes) return false;
  out->device_id = key.substr(1, len);
  out->seq = GetBe64(key, 1 + len);
  return true;
}

std::string DescribeSample(std::string_view kind, std::string_view device_id, uint64_t seq) {
  return std::string(kind) + " '" + Printable(device_id) + "'/" + std::to_string(seq);
}

std::string DescribeKey(std::string_view kind, std::string_view key) {
  ParsedKey parsed;
  if (ParseSampleKey(key, &parsed)) return DescribeSample(kind, parsed.device_id, parsed.seq);
  return std::string(kind) + " key '" + Printable(key) + "'";
}

// ---- Values (FORMAT.md, "Values") -----------------------------------------------------------------

FrameValueParts EncodeFrameValueParts(std::string_view key, const FrameRef& frame) {
  FrameValueParts parts;
  std::string& h = parts.head;
  h.reserve(kFrameHeaderBytes);
  h.push_back(static_cast<char>(kValueFormatVersion));
  PutLe64(&h, static_cast<uint64_t>(frame.capture_time_us));
  PutLe64(&h, static_cast<uint64_t>(frame.received_time_us));
  PutLe32(&h, static_cast<uint32_t>(frame.jpeg.size()));
  uint32_t crc = Crc32cExtend(0, key.data(), key.size());
  crc = Crc32cExtend(crc, h.data(), h.size());
  crc = Crc32cExtend(crc, frame.jpeg.data(), frame.jpeg.size());
  PutLe32(&parts.tail, crc);
  return parts;
}

std::string EncodeFrameValue(std::string_view key, const FrameRecord& frame) {
  const FrameValueParts parts = EncodeFrameValueParts(key, FrameRef::Of(frame));
  std::string v;
  v.reserve(parts.head.size() + frame.jpeg.size() + parts.tail.size());
  v.append(parts.head);
  v.append(reinterpret_cast<const char*>(frame.jpeg.data()), frame.jpeg.size());
  v.append(parts.tail);
  return v;
}

std::string EncodeTeacherValue(std::string_view key, std::span<const uint8_t> blob, float difficulty,
                               uint32_t blob_schema) {
  std::string v;
  v.reserve(kTeacherHeaderBytes + blob.size() + kCrcBytes);
  v.push_back(static_cast<char>(kValueFormatVersion));
  PutLe32(&v, std::bit_cast<uint32_t>(difficulty));
  PutLe32(&v, blob_schema);
  PutLe32(&v, static_cast<uint32_t>(blob.size()));
  v.append(reinterpret_cast<const char*>(blob.data()), blob.size());
  AppendCrc(key, &v);
  return v;
}

std::string EncodeMetaValue(std::string_view key, std::string_view bytes) {
  std::string v;
  v.reserve(kMetaHeaderBytes + bytes.size() + kCrcBytes);
  v.push_back(static_cast<char>(kValueFormatVersion));
  v.append(bytes);
  AppendCrc(key, &v);
  return v;
}

Status DecodeFrameValue(std::string_view key, std::string_view value, FrameRecord* out) {
  ParsedKey parsed;
  if (!ParseSampleKey(key, &parsed)) return Status::Corruption(DescribeKey("frame", key) + ": malformed key");
  const std::string what = DescribeSample("frame", parsed.device_id, parsed.seq);
  KD_RETURN_IF_ERROR(CheckEnvelope(what, key, value, kFrameHeaderBytes));
  const uint64_t jpeg_size = GetLe32(value, 17);
  if (jpeg_size != value.size() - kFrameHeaderBytes - kCrcBytes) {
    return Status::Corruption(what + ": JPEG size field " + std::to_string(jpeg_size) + " does not match the " +
                              std::to_string(value.size()) + "-byte value");
  }
  if (out != nullptr) {
    out->device_id.assign(parsed.device_id);
    out->seq = parsed.seq;
    out->capture_time_us = static_cast<int64_t>(GetLe64(value, 1));
    out->received_time_us = static_cast<int64_t>(GetLe64(value, 9));
    const auto* p = reinterpret_cast<const uint8_t*>(value.data()) + kFrameHeaderBytes;
    out->jpeg.assign(p, p + jpeg_size);
  }
  return Status::Ok();
}

Status DecodeTeacherValue(std::string_view key, std::string_view value, TeacherRecord* out) {
  ParsedKey parsed;
  if (!ParseSampleKey(key, &parsed)) return Status::Corruption(DescribeKey("teacher output", key) + ": malformed key");
  const std::string what = DescribeSample("teacher output", parsed.device_id, parsed.seq);
  KD_RETURN_IF_ERROR(CheckEnvelope(what, key, value, kTeacherHeaderBytes));
  const uint64_t blob_size = GetLe32(value, 9);
  if (blob_size != value.size() - kTeacherHeaderBytes - kCrcBytes) {
    return Status::Corruption(what + ": blob size field " + std::to_string(blob_size) + " does not match the " +
                              std::to_string(value.size()) + "-byte value");
  }
  if (out != nullptr) {
    out->device_id.assign(parsed.device_id);
    out->seq = parsed.seq;
    out->difficulty = std::bit_cast<float>(GetLe32(value, 1));
    out->blob_schema = GetLe32(value, 5);
    const auto* p = reinterpret_cast<const uint8_t*>(value.data()) + kTeacherHeaderBytes;
    out->blob.assign(p, p + blob_size);
  }
  return Status::Ok();
}

Status DecodeMetaValue(std::string_view key, std::string_view value, std::string* out) {
  const std::string what = "meta key '" + Printable(key) + "'";
  KD_RETURN_IF_ERROR(CheckEnvelope(what, key, value, kMetaHeaderBytes));
  if (out != nullptr) out->assign(value.substr(kMetaHeaderBytes, value.size() - kMetaHeaderBytes - kCrcBytes));
  return Status::Ok();
}

std::string EncodeFormatMarkerValue(uint32_t store_format) {
  std::string payload;
  PutLe32(&payload, store_format);
  return EncodeMetaValue(kFormatMarkerKey, payload);
}

Result<uint32_t> DecodeFormatMarkerValue(std::string_view value) {
  std::string payload;
  KD_RETURN_IF_ERROR(DecodeMetaValue(kFormatMarkerKey, value, &payload));
  if (payload.size() != 4) {
    return Status::Corruption("format marker of " + std::to_string(payload.size()) + " bytes (expected 4)");
  }
  return GetLe32(payload, 0);
}

}  // namespace kd::storage
