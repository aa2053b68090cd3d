#include "wire/message.h"

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/crc32c.h"
#include "base/device_id.h"
#include "base/sha256.h"

namespace kd::wire {
namespace {

std::string FakeJpeg(size_t n = 64) {
  std::string s(n, 'x');
  s[0] = '\xFF';
  s[1] = '\xD8';
  s[2] = '\xFF';
  return s;
}

Message MakeFrame() {
  Message m;
  m.header.type = MsgType::kFrame;
  m.header.device_id = "cam-17";
  m.header.seq = 42;
  m.header.capture_time_us = 1'700'000'000'000'000;
  m.header.send_time_us = 1'700'000'000'100'000;
  m.header.model_version = 7;
  m.header.width = 768;
  m.header.height = 576;
  m.header.selection_score = 0.5f;
  m.payload = FakeJpeg();
  return m;
}

// Decodes and returns the ErrorCode (kNone on success).
ErrorCode DecodeCode(const std::vector<std::string>& frames, const Limits& limits = {}) {
  ErrorCode code = ErrorCode::kInternal;
  Result<Message> r = DecodeFrames(frames, limits, &code);
  EXPECT_EQ(r.ok(), code == ErrorCode::kNone) << r.status().ToString();
  return code;
}

// Appends a varint field to serialized protobuf bytes (the last value of a scalar field wins).
void AppendVarintField(std::string* bytes, uint32_t field, uint64_t value) {
  uint64_t tag = (uint64_t{field} << 3) | 0;
  for (uint64_t v : {tag, value}) {
    while (v >= 0x80) {
      bytes->push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    bytes->push_back(static_cast<char>(v));
  }
}

void AppendBytesField(std::string* bytes, uint32_t field, const std::string& value) {
  // The tag is a varint too: fields from 16 up take two bytes (a one-byte tag was malformed there).
  for (uint64_t v = (uint64_t{field} << 3) | 2;; v >>= 7) {
    bytes->push_back(static_cast<char>(v < 0x80 ? v : (v & 0x7F) | 0x80));
    if (v < 0x80) break;
  }
  KD_CHECK(value.size() < 128);
  bytes->push_back(static_cast<char>(value.size()));
  bytes->append(value);
}

TEST(MessageTest, FrameRoundTrip) {
  const Message m = MakeFrame();
  const auto frames = EncodeFrames(m);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0], "KDP2");
  EXPECT_EQ(frames[2], m.payload);
  EXPECT_LT(frames[1].size(), 200u);
  ErrorCode code = ErrorCode::kInternal;
  Result<Message> r = DecodeFrames(frames, Limits{}, &code);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(code, ErrorCode::kNone);
  const Header& h = r->header;
  EXPECT_EQ(h.type, MsgType::kFrame);
  EXPECT_EQ(h.device_id, "cam-17");
  EXPECT_EQ(h.seq, 42u);
  EXPECT_EQ(h.capture_time_us, m.header.capture_time_us);
  EXPECT_EQ(h.send_time_us, m.header.send_time_us);
  EXPECT_EQ(h.model_version, 7u);
  EXPECT_EQ(h.width, 768u);
  EXPECT_EQ(h.height, 576u);
  EXPECT_FLOAT_EQ(h.selection_score, 0.5f);
  EXPECT_EQ(h.payload_len, m.payload.size());
  EXPECT_EQ(h.payload_crc32c, Crc32c(m.payload));
  EXPECT_EQ(r->payload, m.payload);
  // The receive path's variant moves the payload out of the frames instead of copying it.
  auto owned = frames;
  Result<Message> taken = DecodeFramesTakingPayload(owned, Limits{});
  ASSERT_TRUE(taken.ok()) << taken.status().ToString();
  EXPECT_EQ(taken->payload, m.payload);
  EXPECT_EQ(taken->header.payload_crc32c, h.payload_crc32c);
  EXPECT_TRUE(owned[2].empty());
  // ... and leaves them whole when it refuses them.
  auto damaged = frames;
  damaged[2][7] ^= 1;
  EXPECT_FALSE(DecodeFramesTakingPayload(damaged, Limits{}).ok());
  EXPECT_EQ(damaged[2].size(), m.payload.size());
}

TEST(MessageTest, EveryFieldRoundTrips) {
  Message m;
  Header& h = m.header;
  h.type = MsgType::kStatus;
  h.device_id = "A.b_c-9";
  h.seq = UINT64_MAX;
  h.capture_time_us = std::numeric_limits<int64_t>::max();
  h.send_time_us = 1;
  h.model_version = 123456789012345ull;
  h.width = 8192;
  h.height = 1;
  h.ack_seq = 99;
  h.credits = 16;
  h.error_text = "h\xC3\xA9llo";  // UTF-8
  h.object_id = Sha256Hex("weights");
  h.offset = 1 << 20;
  h.length = 4096;
  h.desired_version = 8;
  h.status.running_version = 7;
  h.status.committed_version = 6;
  h.status.floor_version = 5;
  h.status.state = "probation";
  h.status.fps = 29.97;
  h.status.frames_captured = 1000;
  h.status.frames_inferred = 990;
  h.status.frames_selected = 50;
  h.status.frames_acked = 48;
  h.status.frames_dropped = 2;
  h.status.uplink_bytes = 1ull << 40;
  h.status.downlink_bytes = 3;
  h.status.want_full = true;
  h.status.mean_inference_ms = 3.25;
  h.status.unacked_frames = 12;
  h.status.uplink_budget_kbps = 200;
  m.payload = R"({"json":true})";
  Result<Message> r = DecodeFrames(EncodeFrames(m), Limits{});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Header& d = r->header;
  EXPECT_EQ(d.type, h.type);
  EXPECT_EQ(d.device_id, h.device_id);
  EXPECT_EQ(d.seq, h.seq);
  EXPECT_EQ(d.capture_time_us, h.capture_time_us);
  EXPECT_EQ(d.model_version, h.model_version);
  EXPECT_EQ(d.width, h.width);
  EXPECT_EQ(d.ack_seq, h.ack_seq);
  EXPECT_EQ(d.credits, h.credits);
  EXPECT_EQ(d.error_text, h.error_text);
  EXPECT_EQ(d.object_id, h.object_id);
  EXPECT_EQ(d.offset, h.offset);
  EXPECT_EQ(d.length, h.length);
  EXPECT_EQ(d.desired_version, h.desired_version);
  EXPECT_EQ(d.status.running_version, 7u);
  EXPECT_EQ(d.status.committed_version, 6u);
  EXPECT_EQ(d.status.floor_version, 5u);
  EXPECT_EQ(d.status.state, "probation");
  EXPECT_DOUBLE_EQ(d.status.fps, 29.97);
  EXPECT_DOUBLE_EQ(d.status.mean_inference_ms, 3.25);
  EXPECT_EQ(d.status.unacked_frames, 12u);
  EXPECT_DOUBLE_EQ(d.status.uplink_budget_kbps, 200);
  EXPECT_EQ(d.status.frames_captured, 1000u);
  EXPECT_EQ(d.status.frames_inferred, 990u);
  EXPECT_EQ(d.status.frames_selected, 50u);
  EXPECT_EQ(d.status.frames_acked, 48u);
  EXPECT_EQ(d.status.frames_dropped, 2u);
  EXPECT_EQ(d.status.uplink_bytes, 1ull << 40);
  EXPECT_EQ(d.status.downlink_bytes, 3u);
  EXPECT_TRUE(d.status.want_full);
  EXPECT_EQ(r->payload, m.payload);
}

TEST(MessageTest, OtherTypesRoundTrip) {
  for (uint32_t t = 1; t <= kMaxMsgType; ++t) {
    Message m;
    m.header.type = static_cast<MsgType>(t);
    m.header.device_id = "cam1";
    if (m.header.type == MsgType::kFrame) {
      m = MakeFrame();
    } else if (m.header.type == MsgType::kError) {
      m = MakeError(m.header, ErrorCode::kStorageFull, "disk full");
    } else if (m.header.type == MsgType::kChunkRequest || m.header.type == MsgType::kChunk) {
      m.header.object_id = Sha256Hex("x");
      m.payload = m.header.type == MsgType::kChunk ? std::string(100, '\0') : "";
      m.header.length = 100;
    } else if (m.header.type == MsgType::kUpdateReport) {
      m.header.outcome = UpdateOutcome::kRolledBack;
    }
    Result<Message> r = DecodeFrames(EncodeFrames(m), Limits{});
    ASSERT_TRUE(r.ok()) << MsgTypeName(m.header.type) << ": " << r.status().ToString();
    EXPECT_EQ(r->header.type, m.header.type);
    EXPECT_EQ(r->header.outcome, m.header.outcome);
    EXPECT_EQ(r->header.error_code, m.header.error_code);
  }
}

TEST(MessageTest, MakeErrorCopiesDeviceAndSeq) {
  Header req;
  req.type = MsgType::kFrame;
  req.device_id = "cam-3";
  req.seq = 77;
  const Message e = MakeError(req, ErrorCode::kOutOfCredit, "slow down");
  EXPECT_EQ(e.header.type, MsgType::kError);
  EXPECT_EQ(e.header.device_id, "cam-3");
  EXPECT_EQ(e.header.seq, 77u);
  EXPECT_EQ(e.header.error_code, ErrorCode::kOutOfCredit);
  EXPECT_EQ(e.header.error_text, "slow down");
  EXPECT_TRUE(e.payload.empty());
}

TEST(MessageTest, Names) {
  EXPECT_STREQ(MsgTypeName(MsgType::kChunkRequest), "CHUNK_REQUEST");
  EXPECT_STREQ(MsgTypeName(static_cast<MsgType>(99)), "UNKNOWN");
  EXPECT_STREQ(ErrorCodeName(ErrorCode::kWrongDevice), "WRONG_DEVICE");
  EXPECT_STREQ(ErrorCodeName(static_cast<ErrorCode>(99)), "UNKNOWN");
  EXPECT_STREQ(UpdateOutcomeName(UpdateOutcome::kCommitted), "COMMITTED");
}

TEST(MessageValidationTest, FrameCount) {
  auto frames = EncodeFrames(MakeFrame());
  EXPECT_EQ(DecodeCode({}), ErrorCode::kBadProtocol);
  EXPECT_EQ(DecodeCode({frames[0]}), ErrorCode::kBadProtocol);
  EXPECT_EQ(DecodeCode({frames[0], frames[1]}), ErrorCode::kBadProtocol);
  auto four = frames;
  four.push_back("extra");
  EXPECT_EQ(DecodeCode(four), ErrorCode::kBadProtocol);
  std::vector<std::string> fifty(50, "KDP2");
  EXPECT_EQ(DecodeCode(fifty), ErrorCode::kBadProtocol);
}

TEST(MessageValidationTest, ProtocolId) {
  // KDP1 (SHA-256 payload digests) is the previous protocol: refused, not misread.
  for (const char* bad : {"KDP1", "KDP3", "", "KDP", "KDP2 ", "kdp2", "KDP0"}) {
    auto frames = EncodeFrames(MakeFrame());
    frames[0] = bad;
    EXPECT_EQ(DecodeCode(frames), ErrorCode::kBadProtocol) << bad;
  }
  auto frames = EncodeFrames(MakeFrame());
  frames[0] = std::string("KDP2\0", 5);
  EXPECT_EQ(DecodeCode(frames), ErrorCode::kBadProtocol);
}

TEST(MessageValidationTest, OversizeHeader) {
  Message m = MakeFrame();
  m.header.error_text = std::string(5000, 'a');
  auto frames = EncodeFrames(m);
  EXPECT_GT(frames[1].size(), 4096u);
  EXPECT_EQ(DecodeCode(frames), ErrorCode::kBadHeader);
  Limits big;
  big.max_header_bytes = 8192;
  EXPECT_EQ(DecodeCode(frames, big), ErrorCode::kNone);
  EXPECT_FALSE(CheckSendable(frames, Limits{}).ok());
  EXPECT_TRUE(CheckSendable(frames, big).ok());
}

TEST(MessageValidationTest, GarbageHeader) {
  auto frames = EncodeFrames(MakeFrame());
  for (const std::string& bad : {std::string("\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 11),
                                 std::string("\x0A\x7F", 2),  // field 1 as length-delimited, truncated
                                 std::string("\x0B", 1),      // start group, never ended
                                 std::string("\x0C", 1),      // end group at top level
                                 frames[1].substr(0, frames[1].size() - 3), frames[1] + "\x80"}) {
    auto f = frames;
    f[1] = bad;
    EXPECT_EQ(DecodeCode(f), ErrorCode::kBadHeader) << testing::PrintToString(bad);
  }
  auto empty = frames;
  empty[1].clear();  // parses as an all-default header: type UNSPECIFIED
  EXPECT_EQ(DecodeCode(empty), ErrorCode::kBadHeader);
}

TEST(MessageValidationTest, PayloadLenAndSha) {
  auto frames = EncodeFrames(MakeFrame());
  auto longer = frames;
  longer[2] += "y";
  EXPECT_EQ(DecodeCode(longer), ErrorCode::kBadPayload);
  auto changed = frames;
  changed[2][10] ^= 1;  // same length, different bytes
  EXPECT_EQ(DecodeCode(changed), ErrorCode::kBadPayload);
  auto len_field = frames;
  AppendVarintField(&len_field[1], 20, 65);  // payload_len
  EXPECT_EQ(DecodeCode(len_field), ErrorCode::kBadPayload);
  // payload_crc32c (field 22, fixed32: tag B5 01, then 4 bytes) is the header's last field; without
  // it the header is refused, even when the payload's CRC happens to be 0.
  auto no_crc = frames;
  ASSERT_EQ(no_crc[1].substr(no_crc[1].size() - 6, 2), "\xB5\x01");
  no_crc[1].resize(no_crc[1].size() - 6);
  EXPECT_EQ(DecodeCode(no_crc), ErrorCode::kBadHeader);
  // KDP1's payload_sha256 (field 21, now reserved) is an unknown field: ignored, not a digest.
  auto old_field = frames;
  AppendBytesField(&old_field[1], 21, std::string(32, 'x'));
  EXPECT_EQ(DecodeCode(old_field), ErrorCode::kNone);
}

TEST(MessageValidationTest, PayloadTooLarge) {
  Message m = MakeFrame();
  m.payload = FakeJpeg(2000);
  Limits small;
  small.max_payload_bytes = 1000;
  EXPECT_EQ(DecodeCode(EncodeFrames(m), small), ErrorCode::kTooLarge);
  EXPECT_FALSE(CheckSendable(EncodeFrames(m), small).ok());
}

TEST(MessageValidationTest, DeviceId) {
  for (const std::string& bad : {std::string(""), std::string(65, 'a'), std::string("cam 1"), std::string("cam/1"),
                                 std::string("../etc"), std::string("."), std::string(".."), std::string("caf\xC3\xA9"),
                                 std::string("a\0b", 3), std::string("\xFF\xFE")}) {
    Message m = MakeFrame();
    m.header.device_id = bad;
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader) << testing::PrintToString(bad);
  }
  Message ok = MakeFrame();
  ok.header.device_id = std::string(64, 'z');
  EXPECT_EQ(DecodeCode(EncodeFrames(ok)), ErrorCode::kNone);
  EXPECT_TRUE(IsValidDeviceId("cam-1.a_B"));
}

TEST(MessageValidationTest, NotJpeg) {
  Message m = MakeFrame();
  m.payload = "\x89PNG\r\n\x1a\n....";
  EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadPayload);
  m.payload.clear();
  EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadPayload);
  m.payload = "\xFF\xD8";
  EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadPayload);
  // Other types carry any bytes.
  m.header.type = MsgType::kHello;
  EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kNone);
}

TEST(MessageValidationTest, UnknownEnumValues) {
  const auto frames = EncodeFrames(MakeFrame());
  auto type = frames;
  AppendVarintField(&type[1], 1, 99);
  EXPECT_EQ(DecodeCode(type), ErrorCode::kBadHeader);
  auto type0 = frames;
  AppendVarintField(&type0[1], 1, 0);
  EXPECT_EQ(DecodeCode(type0), ErrorCode::kBadHeader);
  auto negative = frames;
  AppendVarintField(&negative[1], 1, static_cast<uint64_t>(-1));  // enum -1 as a 10-byte varint
  EXPECT_EQ(DecodeCode(negative), ErrorCode::kBadHeader);
  auto code = frames;
  AppendVarintField(&code[1], 12, 50);
  EXPECT_EQ(DecodeCode(code), ErrorCode::kBadHeader);
  auto outcome = frames;
  AppendVarintField(&outcome[1], 18, 4);
  EXPECT_EQ(DecodeCode(outcome), ErrorCode::kBadHeader);
  // Unknown fields are ignored (forward compatibility).
  auto unknown_field = frames;
  AppendVarintField(&unknown_field[1], 1000, 5);
  EXPECT_EQ(DecodeCode(unknown_field), ErrorCode::kNone);
}

TEST(MessageValidationTest, PerTypeRules) {
  {
    Message m = MakeFrame();
    m.header.width = 0;
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
  }
  {
    Message m = MakeFrame();
    m.header.width = 8193;
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kTooLarge);
  }
  {
    Message m = MakeFrame();
    m.header.selection_score = std::nanf("");
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
    m.header.selection_score = -1;
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
  }
  {
    Message m = MakeFrame();
    m.header.capture_time_us = -5;
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
  }
  {
    Header h;
    h.device_id = "cam1";
    Message m = MakeError(h, ErrorCode::kNone, "no code");
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
  }
  {
    Message m;
    m.header.type = MsgType::kChunkRequest;
    m.header.device_id = "cam1";
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);  // no object_id
    m.header.object_id = std::string(64, 'A');                      // uppercase
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
    m.header.object_id = "../../etc/passwd";
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
    m.header.object_id = Sha256Hex("a");
    m.header.offset = UINT64_MAX;
    m.header.length = 2;
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
    m.header.offset = 0;
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kNone);
    m.header.type = MsgType::kChunk;  // length 2 but no payload
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadPayload);
  }
  {
    Message m;
    m.header.type = MsgType::kUpdateReport;
    m.header.device_id = "cam1";
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
  }
  {
    Message m;
    m.header.type = MsgType::kStatus;
    m.header.device_id = "cam1";
    m.header.status.fps = std::numeric_limits<double>::infinity();
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
    m.header.status.fps = 1;
    m.header.status.mean_inference_ms = -1;
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
    m.header.status.mean_inference_ms = 1;
    m.header.status.uplink_budget_kbps = std::numeric_limits<double>::quiet_NaN();
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
    m.header.status.uplink_budget_kbps = 1;
    m.header.status.state = "\xC0\x80";  // overlong NUL: not UTF-8
    EXPECT_EQ(DecodeCode(EncodeFrames(m)), ErrorCode::kBadHeader);
  }
}

TEST(MessageValidationTest, ClockSkew) {
  FakeClock clock;  // WallMicros = 1.7e15 + ...
  Limits limits;
  limits.clock = &clock;
  Message m = MakeFrame();
  m.header.send_time_us = clock.WallMicros() + 3'600'000'000;        // an hour ahead
  EXPECT_EQ(DecodeCode(EncodeFrames(m), limits), ErrorCode::kNone);  // off by default
  limits.max_clock_skew_us = 600'000'000;
  EXPECT_EQ(DecodeCode(EncodeFrames(m), limits), ErrorCode::kBadHeader);
  m.header.send_time_us = clock.WallMicros() - 60'000'000;
  EXPECT_EQ(DecodeCode(EncodeFrames(m), limits), ErrorCode::kNone);
}

TEST(MessageValidationTest, FirstFailureWins) {
  // Bad frame 0 and bad header: frame 0 is reported.
  auto frames = EncodeFrames(MakeFrame());
  frames[0] = "KDP1";
  frames[1] = "garbage";
  EXPECT_EQ(DecodeCode(frames), ErrorCode::kBadProtocol);
  // Bad device_id and bad sha: the header is reported.
  Message m = MakeFrame();
  m.header.device_id = "bad id";
  frames = EncodeFrames(m);
  frames[2][5] ^= 1;
  EXPECT_EQ(DecodeCode(frames), ErrorCode::kBadHeader);
  // Bad CRC and not a JPEG: the CRC is reported (both kBadPayload, different text).
  m = MakeFrame();
  m.payload = "not a jpeg";
  frames = EncodeFrames(m);
  frames[2][0] = 'N';
  Result<Message> r = DecodeFrames(frames, Limits{});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("CRC32C"), std::string::npos) << r.status().ToString();
}

// Random bytes and mutations of valid messages: DecodeFrames never crashes and either accepts a
// message that re-encodes identically or names an ErrorCode.
TEST(MessageFuzzTest, RandomInputsNeverCrash) {
  std::mt19937_64 rng(12345);
  auto rand_bytes = [&](size_t n) {
    std::string s(n, '\0');
    for (char& c : s) c = static_cast<char>(rng() & 0xFF);
    return s;
  };
  std::vector<std::vector<std::string>> seeds;
  seeds.push_back(EncodeFrames(MakeFrame()));
  {
    Message m;
    m.header.type = MsgType::kStatus;
    m.header.device_id = "cam2";
    m.header.status.state = "running";
    m.header.status.fps = 10;
    seeds.push_back(EncodeFrames(m));
    m.header.type = MsgType::kChunk;
    m.header.object_id = Sha256Hex("o");
    m.payload = rand_bytes(100);
    m.header.length = 100;
    seeds.push_back(EncodeFrames(m));
  }
  Limits limits;
  limits.max_payload_bytes = 4096;
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::vector<std::string> frames;
    const int mode = static_cast<int>(rng() % 4);
    if (mode == 0) {  // random frame count and bytes
      const size_t n = rng() % 5;
      for (size_t i = 0; i < n; ++i) frames.push_back(rand_bytes(rng() % 64));
      if (n > 0 && rng() % 2 == 0) frames[0] = "KDP2";
    } else {  // mutate a seed's header (and sometimes payload)
      frames = seeds[rng() % seeds.size()];
      std::string& target = (mode == 3 && !frames[2].empty()) ? frames[2] : frames[1];
      const int mutations = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < mutations; ++k) {
        switch (rng() % 4) {
          case 0:
            if (!target.empty()) target[rng() % target.size()] = static_cast<char>(rng() & 0xFF);
            break;
          case 1:
            if (!target.empty()) target[rng() % target.size()] ^= static_cast<char>(1 << (rng() % 8));
            break;
          case 2:
            target.insert(rng() % (target.size() + 1), rand_bytes(1 + rng() % 4));
            break;
          case 3:
            if (!target.empty()) target.erase(rng() % target.size(), 1 + rng() % 3);
            break;
        }
      }
    }
    ErrorCode code = ErrorCode::kInternal;
    Result<Message> r = DecodeFrames(frames, limits, &code);
    if (r.ok()) {
      ++accepted;
      EXPECT_EQ(code, ErrorCode::kNone);
      // Whatever is accepted is consistent: re-encoding gives a message that decodes again.
      EXPECT_TRUE(DecodeFrames(EncodeFrames(*r), limits).ok());
    } else {
      EXPECT_NE(code, ErrorCode::kNone);
      EXPECT_LE(static_cast<uint32_t>(code), kMaxErrorCode);
    }
  }
  // Mutations of payload bytes under the sha must be refused; only harmless header changes pass.
  EXPECT_LT(accepted, 20000);
}

}  // namespace
}  // namespace kd::wire
