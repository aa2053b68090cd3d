#include "wire/message.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include <google/protobuf/io/coded_stream.h>

#include "base/check.h"
#include "base/crc32c.h"
#include "base/device_id.h"
#include "base/hex.h"
#include "wire/message_internal.h"

#include "wire.pb.h"

namespace kd::wire {
namespace {

static_assert(static_cast<int>(pb::MSG_TYPE_UPDATE_REPORT) == static_cast<int>(MsgType::kUpdateReport));
static_assert(static_cast<int>(pb::MSG_TYPE_HELLO) == static_cast<int>(MsgType::kHello));
static_assert(static_cast<int>(pb::ERROR_CODE_INTERNAL) == static_cast<int>(ErrorCode::kInternal));
static_assert(static_cast<int>(pb::ERROR_CODE_OUT_OF_CREDIT) == static_cast<int>(ErrorCode::kOutOfCredit));
static_assert(static_cast<int>(pb::UPDATE_OUTCOME_REJECTED) == static_cast<int>(UpdateOutcome::kRejected));

// A failed check: the Status for the caller and the ErrorCode for the peer.
struct Failure {
  ErrorCode code;
  Status status;
};

Failure Fail(ErrorCode code, std::string_view msg) {
  const bool payload = code == ErrorCode::kBadPayload;
  return {code, payload ? Status::Corruption(msg) : Status::InvalidArgument(msg)};
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len = 0;
    uint32_t cp = 0;
    if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<uint8_t>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are invalid UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += len;
  }
  return true;
}

void ToProto(const Header& h, pb::Header* p) {
  p->set_type(static_cast<pb::MsgType>(h.type));
  p->set_device_id(h.device_id);
  p->set_seq(h.seq);
  p->set_capture_time_us(h.capture_time_us);
  p->set_send_time_us(h.send_time_us);
  p->set_model_version(h.model_version);
  p->set_width(h.width);
  p->set_height(h.height);
  p->set_selection_score(h.selection_score);
  p->set_ack_seq(h.ack_seq);
  p->set_credits(h.credits);
  p->set_error_code(static_cast<pb::ErrorCode>(h.error_code));
  p->set_error_text(h.error_text);
  p->set_object_id(h.object_id);
  p->set_offset(h.offset);
  p->set_length(h.length);
  p->set_desired_version(h.desired_version);
  p->set_outcome(static_cast<pb::UpdateOutcome>(h.outcome));
  if (h.type == MsgType::kStatus) {  // keeps the other headers small (an empty submessage costs 2 bytes)
    const EdgeStatus& s = h.status;
    pb::EdgeStatus* ps = p->mutable_status();
    ps->set_running_version(s.running_version);
    ps->set_committed_version(s.committed_version);
    ps->set_floor_version(s.floor_version);
    ps->set_state(s.state);
    ps->set_fps(s.fps);
    ps->set_frames_captured(s.frames_captured);
    ps->set_frames_inferred(s.frames_inferred);
    ps->set_frames_selected(s.frames_selected);
    ps->set_frames_acked(s.frames_acked);
    ps->set_frames_dropped(s.frames_dropped);
    ps->set_uplink_bytes(s.uplink_bytes);
    ps->set_downlink_bytes(s.downlink_bytes);
    ps->set_want_full(s.want_full);
    ps->set_mean_inference_ms(s.mean_inference_ms);
    ps->set_unacked_frames(s.unacked_frames);
    ps->set_uplink_budget_kbps(s.uplink_budget_kbps);
  }
  p->set_payload_len(h.payload_len);
  p->set_payload_crc32c(h.payload_crc32c);
}

// Enum values are range-checked by the caller before this conversion.
void FromProto(const pb::Header& p, Header* h) {
  h->type = static_cast<MsgType>(p.type());
  h->device_id = p.device_id();
  h->seq = p.seq();
  h->capture_time_us = p.capture_time_us();
  h->send_time_us = p.send_time_us();
  h->model_version = p.model_version();
  h->width = p.width();
  h->height = p.height();
  h->selection_score = p.selection_score();
  h->ack_seq = p.ack_seq();
  h->credits = p.credits();
  h->error_code = static_cast<ErrorCode>(p.error_code());
  h->error_text = p.error_text();
  h->object_id = p.object_id();
  h->offset = p.offset();
  h->length = p.length();
  h->desired_version = p.desired_version();
  h->outcome = static_cast<UpdateOutcome>(p.outcome());
  const pb::EdgeStatus& ps = p.status();
  EdgeStatus& s = h->status;
  s.running_version = ps.running_version();
  s.committed_version = ps.committed_version();
  s.floor_version = ps.floor_version();
  s.state = ps.state();
  s.fps = ps.fps();
  s.frames_captured = ps.frames_captured();
  s.frames_inferred = ps.frames_inferred();
  s.frames_selected = ps.frames_selected();
  s.frames_acked = ps.frames_acked();
  s.frames_dropped = ps.frames_dropped();
  s.uplink_bytes = ps.uplink_bytes();
  s.downlink_bytes = ps.downlink_bytes();
  s.want_full = ps.want_full();
  s.mean_inference_ms = ps.mean_inference_ms();
  s.unacked_frames = ps.unacked_frames();
  s.uplink_budget_kbps = ps.uplink_budget_kbps();
  h->payload_len = p.payload_len();
  h->payload_crc32c = p.payload_crc32c();
}

// The semantic checks on a parsed header (`payload` = frame 2). nullopt-like: code kNone = OK.
Failure CheckSemantics(const pb::Header& p, const std::string& payload, const Limits& limits) {
  const int type = static_cast<int>(p.type());
  if (type < 1 || static_cast<uint32_t>(type) > kMaxMsgType) {
    return Fail(ErrorCode::kBadHeader, "unknown message type " + std::to_string(type));
  }
  const int ec = static_cast<int>(p.error_code());
  if (ec < 0 || static_cast<uint32_t>(ec) > kMaxErrorCode) {
    return Fail(ErrorCode::kBadHeader, "unknown error code " + std::to_string(ec));
  }
  const int oc = static_cast<int>(p.outcome());
  if (oc < 0 || static_cast<uint32_t>(oc) > kMaxUpdateOutcome) {
    return Fail(ErrorCode::kBadHeader, "unknown update outcome " + std::to_string(oc));
  }
  if (!IsValidDeviceId(p.device_id(), limits.max_device_id_bytes)) {
    return Fail(ErrorCode::kBadHeader,
                "bad device_id (1.." + std::to_string(limits.max_device_id_bytes) + " bytes of [A-Za-z0-9._-])");
  }
  if (!IsValidUtf8(p.error_text()) || !IsValidUtf8(p.status().state())) {
    return Fail(ErrorCode::kBadHeader, "text field is not UTF-8");
  }
  if (!p.object_id().empty() && !IsSha256Hex(p.object_id())) {
    return Fail(ErrorCode::kBadHeader, "object_id is not 64 lowercase hex digits");
  }
  if (payload.size() > limits.max_payload_bytes) {
    return Fail(ErrorCode::kTooLarge, "payload of " + std::to_string(payload.size()) + " bytes over the limit of " +
                                          std::to_string(limits.max_payload_bytes));
  }
  if (p.payload_len() != payload.size()) {
    return Fail(ErrorCode::kBadPayload, "payload_len " + std::to_string(p.payload_len()) + " != payload size " +
                                            std::to_string(payload.size()));
  }
  if (!p.has_payload_crc32c()) {
    return Fail(ErrorCode::kBadHeader, "payload_crc32c is missing");
  }
  if (p.width() > limits.max_width || p.height() > limits.max_height) {
    return Fail(ErrorCode::kTooLarge,
                "dimensions " + std::to_string(p.width()) + "x" + std::to_string(p.height()) + " over the limit");
  }
  if (p.capture_time_us() < 0 || p.send_time_us() < 0) {
    return Fail(ErrorCode::kBadHeader, "negative timestamp");
  }
  if (limits.max_clock_skew_us > 0 && p.send_time_us() != 0) {
    const Clock& clock = limits.clock != nullptr ? *limits.clock : SystemClock::Get();
    const int64_t now = clock.WallMicros();
    const int64_t skew = p.send_time_us() > now ? p.send_time_us() - now : now - p.send_time_us();
    if (skew > limits.max_clock_skew_us) {
      return Fail(ErrorCode::kBadHeader, "send_time_us off by " + std::to_string(skew) + " us");
    }
  }
  switch (static_cast<MsgType>(type)) {
    case MsgType::kFrame:
      if (p.width() == 0 || p.height() == 0) return Fail(ErrorCode::kBadHeader, "kFrame without dimensions");
      if (!std::isfinite(p.selection_score()) || p.selection_score() < 0) {
        return Fail(ErrorCode::kBadHeader, "selection_score not finite and >= 0");
      }
      break;
    case MsgType::kError:
      if (p.error_code() == pb::ERROR_CODE_UNSPECIFIED) return Fail(ErrorCode::kBadHeader, "kError without code");
      break;
    case MsgType::kStatus:
      for (const double v : {p.status().fps(), p.status().mean_inference_ms(), p.status().uplink_budget_kbps()}) {
        if (!std::isfinite(v) || v < 0)
          return Fail(ErrorCode::kBadHeader, "fps, inference ms or kbps not finite and >= 0");
      }
      break;
    case MsgType::kChunkRequest:
    case MsgType::kChunk:
      if (p.object_id().empty()) return Fail(ErrorCode::kBadHeader, "chunk message without object_id");
      if (p.length() > UINT64_MAX - p.offset()) return Fail(ErrorCode::kBadHeader, "offset + length overflows");
      if (p.type() == pb::MSG_TYPE_CHUNK && p.length() != payload.size()) {
        return Fail(ErrorCode::kBadPayload, "kChunk length != payload size");
      }
      break;
    case MsgType::kUpdateReport:
      if (p.outcome() == pb::UPDATE_OUTCOME_UNSPECIFIED)
        return Fail(ErrorCode::kBadHeader, "kUpdateReport without outcome");
      break;
    default:
      break;
  }
  return {ErrorCode::kNone, Status::Ok()};
}

// Parses exactly `bytes` (no trailing garbage, no end-group tag) under a total-bytes cap.
bool ParseHeader(const std::string& bytes, pb::Header* p) {
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  in.SetTotalBytesLimit(static_cast<int>(bytes.size()));
  in.SetRecursionLimit(16);  // the schema nests one level; unknown groups may not go deep
  return p->ParseFromCodedStream(&in) && in.ConsumedEntireMessage();
}

}  // namespace

namespace internal {

std::optional<PeekedHeader> PeekHeader(const std::vector<std::string>& frames, const Limits& limits) {
  if (frames.size() != 3 || frames[0] != kProtocolId || frames[1].size() > limits.max_header_bytes) {
    return std::nullopt;
  }
  pb::Header p;
  if (!ParseHeader(frames[1], &p)) return std::nullopt;
  PeekedHeader peeked;
  if (IsValidDeviceId(p.device_id(), limits.max_device_id_bytes)) peeked.device_id = p.device_id();
  peeked.seq = p.seq();
  return peeked;
}

}  // namespace internal

const char* MsgTypeName(MsgType type) {
  switch (type) {
    case MsgType::kHello:
      return "HELLO";
    case MsgType::kFrame:
      return "FRAME";
    case MsgType::kAck:
      return "ACK";
    case MsgType::kCredit:
      return "CREDIT";
    case MsgType::kHeartbeat:
      return "HEARTBEAT";
    case MsgType::kError:
      return "ERROR";
    case MsgType::kStatus:
      return "STATUS";
    case MsgType::kStatusReply:
      return "STATUS_REPLY";
    case MsgType::kChunkRequest:
      return "CHUNK_REQUEST";
    case MsgType::kChunk:
      return "CHUNK";
    case MsgType::kUpdateReport:
      return "UPDATE_REPORT";
  }
  return "UNKNOWN";
}

const char* ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kNone:
      return "NONE";
    case ErrorCode::kBadProtocol:
      return "BAD_PROTOCOL";
    case ErrorCode::kBadHeader:
      return "BAD_HEADER";
    case ErrorCode::kBadPayload:
      return "BAD_PAYLOAD";
    case ErrorCode::kWrongDevice:
      return "WRONG_DEVICE";
    case ErrorCode::kNotEnrolled:
      return "NOT_ENROLLED";
    case ErrorCode::kStorageFull:
      return "STORAGE_FULL";
    case ErrorCode::kStorageError:
      return "STORAGE_ERROR";
    case ErrorCode::kUnknownObject:
      return "UNKNOWN_OBJECT";
    case ErrorCode::kTooLarge:
      return "TOO_LARGE";
    case ErrorCode::kOutOfCredit:
      return "OUT_OF_CREDIT";
    case ErrorCode::kInternal:
      return "INTERNAL";
  }
  return "UNKNOWN";
}

const char* UpdateOutcomeName(UpdateOutcome outcome) {
  switch (outcome) {
    case UpdateOutcome::kNone:
      return "NONE";
    case UpdateOutcome::kCommitted:
      return "COMMITTED";
    case UpdateOutcome::kRolledBack:
      return "ROLLED_BACK";
    case UpdateOutcome::kRejected:
      return "REJECTED";
  }
  return "UNKNOWN";
}

std::vector<std::string> EncodeFrames(const Message& message) {
  pb::Header p;
  ToProto(message.header, &p);
  p.set_payload_len(message.payload.size());
  p.set_payload_crc32c(Crc32c(message.payload));
  std::vector<std::string> frames(3);
  frames[0] = std::string(kProtocolId);
  KD_CHECK_MSG(p.SerializeToString(&frames[1]), "protobuf serialization failed");
  frames[2] = message.payload;
  return frames;
}

Status CheckSendable(const std::vector<std::string>& frames, const Limits& limits) {
  if (frames.size() != 3) return Status::InvalidArgument("a message has 3 frames");
  if (frames[1].size() > limits.max_header_bytes) {
    return Status::InvalidArgument("header of " + std::to_string(frames[1].size()) + " bytes over the limit of " +
                                   std::to_string(limits.max_header_bytes));
  }
  if (frames[2].size() > limits.max_payload_bytes) {
    return Status::InvalidArgument("payload of " + std::to_string(frames[2].size()) + " bytes over the limit of " +
                                   std::to_string(limits.max_payload_bytes));
  }
  return Status::Ok();
}

namespace {

// DecodeFrames' one implementation: `payload_owner`, when given, is frames[2] itself, and the
// payload is moved out of it on success instead of copied (a 78 KB frame per message).
Result<Message> Decode(const std::vector<std::string>& frames, const Limits& limits, ErrorCode* error_code,
                       std::string* payload_owner) {
  auto fail = [error_code](const Failure& f) -> Result<Message> {
    if (error_code != nullptr) *error_code = f.code;
    return f.status;
  };
  if (error_code != nullptr) *error_code = ErrorCode::kNone;
  if (frames.size() != 3) {
    return fail(Fail(ErrorCode::kBadProtocol, "expected 3 frames, got " + std::to_string(frames.size())));
  }
  if (frames[0] != kProtocolId)
    return fail(Fail(ErrorCode::kBadProtocol, "frame 0 is not " + std::string(kProtocolId)));
  const std::string& header_bytes = frames[1];
  if (header_bytes.size() > limits.max_header_bytes) {
    return fail(Fail(ErrorCode::kBadHeader, "header of " + std::to_string(header_bytes.size()) +
                                                " bytes over the limit of " + std::to_string(limits.max_header_bytes)));
  }
  pb::Header p;
  if (!ParseHeader(header_bytes, &p)) return fail(Fail(ErrorCode::kBadHeader, "header does not parse"));
  const std::string& payload = frames[2];
  const Failure semantic = CheckSemantics(p, payload, limits);
  if (semantic.code != ErrorCode::kNone) return fail(semantic);
  if (Crc32c(payload) != p.payload_crc32c()) return fail(Fail(ErrorCode::kBadPayload, "payload CRC32C mismatch"));
  if (p.type() == pb::MSG_TYPE_FRAME) {
    if (payload.size() < 3 || static_cast<uint8_t>(payload[0]) != 0xFF || static_cast<uint8_t>(payload[1]) != 0xD8 ||
        static_cast<uint8_t>(payload[2]) != 0xFF) {
      return fail(Fail(ErrorCode::kBadPayload, "kFrame payload is not a JPEG (no FF D8 FF)"));
    }
  }
  Message message;
  FromProto(p, &message.header);
  message.payload = payload_owner != nullptr ? std::move(*payload_owner) : payload;
  return message;
}

}  // namespace

Result<Message> DecodeFrames(const std::vector<std::string>& frames, const Limits& limits, ErrorCode* error_code) {
  return Decode(frames, limits, error_code, nullptr);
}

Result<Message> DecodeFramesTakingPayload(std::vector<std::string>& frames, const Limits& limits,
                                          ErrorCode* error_code) {
  return Decode(frames, limits, error_code, frames.size() == 3 ? &frames[2] : nullptr);
}

Message MakeError(const Header& request, ErrorCode code, std::string text) {
  Message m;
  m.header.type = MsgType::kError;
  m.header.device_id = request.device_id;
  m.header.seq = request.seq;
  m.header.error_code = code;
  m.header.error_text = std::move(text);
  return m;
}

}  // namespace kd::wire
