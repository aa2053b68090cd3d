#include "storage/record_codec.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/crc32c.h"

namespace kd::storage {
namespace {

// `body` with a valid CRC32C of key ‖ body appended (to build values that pass the checksum).
std::string WithCrc(std::string_view key, std::string body) {
  const uint32_t crc = Crc32cExtend(Crc32c(key), body.data(), body.size());
  for (int i = 0; i < 4; ++i) body.push_back(static_cast<char>((crc >> (8 * i)) & 0xFFu));
  return body;
}
// `value` without its CRC.
std::string Body(const std::string& value) { return value.substr(0, value.size() - 4); }

FrameRecord Frame(std::vector<uint8_t> jpeg) {
  FrameRecord f;
  f.device_id = "cam-1";
  f.seq = 42;
  f.capture_time_us = -7;
  f.received_time_us = 1'700'000'000'000'000;
  f.jpeg = std::move(jpeg);
  return f;
}

TEST(RecordCodecTest, KeysKeepDevicesApartAndSeqsInOrder) {
  const std::string key = SampleKey("cam1", 0x0102030405060708ull);
  ASSERT_EQ(key.size(), 1u + 4 + 8);
  EXPECT_EQ(key[0], 4);
  EXPECT_EQ(key.substr(1, 4), "cam1");
  EXPECT_EQ(key[5], 1);  // big-endian seq
  EXPECT_EQ(key[12], 8);
  EXPECT_EQ(key.substr(0, 5), DevicePrefix("cam1"));
  EXPECT_LT(SampleKey("cam1", 255), SampleKey("cam1", 256));
  EXPECT_LT(SampleKey("cam1", ~0ull), SampleKey("cam10", 0));
  ParsedKey parsed;
  ASSERT_TRUE(ParseSampleKey(key, &parsed));
  EXPECT_EQ(parsed.device_id, "cam1");
  EXPECT_EQ(parsed.seq, 0x0102030405060708ull);
  for (const std::string& bad :
       {std::string(), std::string(1, '\0') + std::string(8, 'x'), key.substr(0, 12), key + "x"}) {
    EXPECT_FALSE(ParseSampleKey(bad, &parsed)) << Printable(bad);
  }
  EXPECT_EQ(Printable(std::string("a\\b\x01\xff", 5)), "a\\x5cb\\x01\\xff");
  EXPECT_EQ(DescribeKey("frame", key), "frame 'cam1'/72623859790382856");
  EXPECT_EQ(DescribeKey("frame", "xy"), "frame key 'xy'");
}

TEST(RecordCodecTest, FrameValueRoundTripsWithTheDocumentedLayout) {
  const std::string key = SampleKey("cam-1", 42);
  const FrameRecord frame = Frame({0xFF, 0xD8, 0xFF, 0x00, 0x11});
  const std::string value = EncodeFrameValue(key, frame);
  ASSERT_EQ(value.size(), 25u + 5);
  EXPECT_EQ(value[0], 1);
  EXPECT_EQ(static_cast<uint8_t>(value[17]), 5);  // JPEG size, u32 little-endian
  EXPECT_EQ(value.substr(21, 5), std::string("\xFF\xD8\xFF\x00\x11", 5));
  EXPECT_EQ(value, WithCrc(key, Body(value)));
  FrameRecord out;
  ASSERT_TRUE(DecodeFrameValue(key, value, &out).ok());
  EXPECT_EQ(out.device_id, "cam-1");
  EXPECT_EQ(out.seq, 42u);
  EXPECT_EQ(out.capture_time_us, -7);
  EXPECT_EQ(out.received_time_us, 1'700'000'000'000'000);
  EXPECT_EQ(out.jpeg, frame.jpeg);
  EXPECT_TRUE(DecodeFrameValue(key, value, nullptr).ok());
}

TEST(RecordCodecTest, TeacherAndMetaValuesRoundTrip) {
  const std::string key = SampleKey("cam-2", 7);
  const std::vector<uint8_t> blob = {1, 2, 3};
  const std::string value = EncodeTeacherValue(key, blob, 0.25f, 1);
  ASSERT_EQ(value.size(), 17u + 3);
  TeacherRecord out;
  ASSERT_TRUE(DecodeTeacherValue(key, value, &out).ok());
  EXPECT_EQ(out.device_id, "cam-2");
  EXPECT_EQ(out.seq, 7u);
  EXPECT_EQ(out.difficulty, 0.25f);
  EXPECT_EQ(out.blob_schema, 1u);
  EXPECT_EQ(out.blob, blob);
  // An empty blob is allowed (0..64 MiB).
  ASSERT_TRUE(DecodeTeacherValue(key, EncodeTeacherValue(key, {}, 0, 0), &out).ok());
  EXPECT_TRUE(out.blob.empty());

  for (const std::string& payload : {std::string(), std::string("{\"x\": 1}"), std::string(1000, '\0')}) {
    const std::string meta = EncodeMetaValue("registry/devices", payload);
    EXPECT_EQ(meta.size(), 5 + payload.size());
    std::string got = "stale";
    ASSERT_TRUE(DecodeMetaValue("registry/devices", meta, &got).ok());
    EXPECT_EQ(got, payload);
  }
}

TEST(RecordCodecTest, EveryDamageIsAnErrorValueAndOutIsUntouched) {
  const std::string key = SampleKey("cam-1", 42);
  const std::string value = EncodeFrameValue(key, Frame({0xFF, 0xD8, 0xFF}));
  FrameRecord out = Frame({9});
  // Every truncation.
  for (size_t n = 0; n < value.size(); ++n) {
    const Status s = DecodeFrameValue(key, value.substr(0, n), &out);
    EXPECT_TRUE(s.IsCorruption()) << n << ": " << s.ToString();
  }
  // Every bit flip (the CRC catches all of them).
  for (size_t i = 0; i < value.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string damaged = value;
      damaged[i] = static_cast<char>(damaged[i] ^ (1 << bit));
      EXPECT_TRUE(DecodeFrameValue(key, damaged, &out).IsCorruption()) << i << "/" << bit;
    }
  }
  EXPECT_EQ(out.jpeg, std::vector<uint8_t>{9});
  // The value under another key (the CRC covers the key), and malformed keys.
  Status s = DecodeFrameValue(SampleKey("cam-1", 43), value, &out);
  EXPECT_NE(s.message().find("CRC32C mismatch"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("frame 'cam-1'/43"), std::string::npos) << s.ToString();
  s = DecodeTeacherValue("bad", value, nullptr);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("malformed key"), std::string::npos) << s.ToString();
}

TEST(RecordCodecTest, VersionsAndSizeFieldsAreChecked) {
  const std::string key = SampleKey("cam-1", 1);
  std::string body = Body(EncodeFrameValue(key, Frame({1, 2, 3})));
  // A newer version with a valid CRC: Unimplemented (written by a newer build), not Corruption.
  body[0] = 2;
  Status s = DecodeFrameValue(key, WithCrc(key, body), nullptr);
  EXPECT_EQ(s.code(), Status::Code::kUnimplemented) << s.ToString();
  body[0] = 0;
  s = DecodeFrameValue(key, WithCrc(key, body), nullptr);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("version 0"), std::string::npos) << s.ToString();
  // A size field that disagrees with the value length, CRC valid.
  body[0] = 1;
  body[17] = 4;
  s = DecodeFrameValue(key, WithCrc(key, body), nullptr);
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_NE(s.message().find("JPEG size field 4"), std::string::npos) << s.ToString();
  std::string teacher = Body(EncodeTeacherValue(key, std::vector<uint8_t>{5}, 1, 1));
  teacher[9] = static_cast<char>(0xFF);  // blob size 255 in a 1-byte blob
  EXPECT_TRUE(DecodeTeacherValue(key, WithCrc(key, teacher), nullptr).IsCorruption());
  // Shorter than the v1 header, CRC valid.
  s = DecodeFrameValue(key, WithCrc(key, std::string("\x01\x00\x00", 3)), nullptr);
  EXPECT_NE(s.message().find("shorter than the version 1 header"), std::string::npos) << s.ToString();
}

TEST(RecordCodecTest, FormatMarker) {
  auto version = DecodeFormatMarkerValue(EncodeFormatMarkerValue());
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(*version, kStoreFormatVersion);
  version = DecodeFormatMarkerValue(EncodeFormatMarkerValue(7));
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(*version, 7u);
  version = DecodeFormatMarkerValue(EncodeMetaValue(kFormatMarkerKey, "abc"));
  EXPECT_TRUE(version.status().IsCorruption());
  EXPECT_EQ(version.status().message(), "format marker of 3 bytes (expected 4)");
  version = DecodeFormatMarkerValue(EncodeMetaValue("other key", "abcd"));
  EXPECT_TRUE(version.status().IsCorruption());
}

}  // namespace
}  // namespace kd::storage
