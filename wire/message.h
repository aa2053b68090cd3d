// The kd wire messages (protocol KDP2) and their codec: every message between kdedge and kdlearnd is
// three ZeroMQ frames (protocol id, protobuf header, raw payload); the spec is wire/PROTOCOL.md.
// DecodeFrames is the one validator of untrusted bytes: it never crashes or allocates beyond the
// limits on any input, and says which ErrorCode to reply with.
// Ownership: plain values. Threading: every function is thread-safe (no shared state).
#ifndef KD_WIRE_MESSAGE_H_
#define KD_WIRE_MESSAGE_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

namespace kd::wire {

// Frame 0 of every message: protocol name and version ("Cheap or Nasty", zguide ch. 7).
inline constexpr std::string_view kProtocolId = "KDP2";

// Values are frozen (they are the enum numbers of wire.proto).
enum class MsgType : uint32_t {
  kHello = 1,     // edge -> learner, frames socket: first message after (re)connecting
  kFrame,         // edge -> learner, frames socket: one JPEG (payload)
  kAck,           // learner -> edge, frames socket: frame ack_seq is durable
  kCredit,        // learner -> edge, frames socket: the current credit window
  kHeartbeat,     // both ways, frames socket: application liveness
  kError,         // learner -> edge, both sockets: a request was refused
  kStatus,        // edge -> learner, control socket: EdgeStatus
  kStatusReply,   // learner -> edge, control socket: desired_version (+ signed manifest)
  kChunkRequest,  // edge -> learner, control socket: bytes [offset, offset+length) of object_id
  kChunk,         // learner -> edge, control socket: those bytes (payload)
  kUpdateReport,  // edge -> learner, control socket: outcome of an update to model_version
};
inline constexpr uint32_t kMaxMsgType = static_cast<uint32_t>(MsgType::kUpdateReport);

enum class ErrorCode : uint32_t {
  kNone = 0,
  kBadProtocol,    // frame count or frame 0 wrong
  kBadHeader,      // header too large, unparsable, or semantically invalid
  kBadPayload,     // payload_len or sha256 mismatch, not a JPEG
  kWrongDevice,    // header.device_id != the authenticated User-Id
  kNotEnrolled,    // the device is not (or no longer) allowed
  kStorageFull,    // (daemon) the learner's store refused the write for lack of space
  kStorageError,   // (daemon) the learner's store failed
  kUnknownObject,  // (daemon) kChunkRequest for an object the learner does not have
  kTooLarge,       // payload or dimensions over the limits
  kOutOfCredit,    // (daemon) a frame sent without credit
  kInternal,       // anything else on the replying side
};
inline constexpr uint32_t kMaxErrorCode = static_cast<uint32_t>(ErrorCode::kInternal);

enum class UpdateOutcome : uint32_t { kNone = 0, kCommitted, kRolledBack, kRejected };
inline constexpr uint32_t kMaxUpdateOutcome = static_cast<uint32_t>(UpdateOutcome::kRejected);

// "HELLO", "FRAME", ...; "UNKNOWN" for values outside the enum.
const char* MsgTypeName(MsgType type);
// "NONE", "BAD_PROTOCOL", ...; "UNKNOWN" for values outside the enum.
const char* ErrorCodeName(ErrorCode code);
const char* UpdateOutcomeName(UpdateOutcome outcome);

// Carried by kStatus (edge -> learner), every ~2 s.
struct EdgeStatus {
  uint64_t running_version = 0, committed_version = 0, floor_version = 0;
  std::string state;  // free text (UTF-8): "running", "downloading", "probation", ...
  double fps = 0;     // inference frames/s over the last interval (finite, >= 0)
  uint64_t frames_captured = 0, frames_inferred = 0, frames_selected = 0, frames_acked = 0, frames_dropped = 0;
  uint64_t uplink_bytes = 0, downlink_bytes = 0;
  bool want_full = false;         // asks the learner for a full snapshot instead of a delta
  double mean_inference_ms = 0;   // over the last interval (finite, >= 0)
  uint64_t unacked_frames = 0;    // uploads waiting for an acknowledgement
  double uplink_budget_kbps = 0;  // the edge's uplink.kbps (finite, >= 0)
};

struct Header {
  MsgType type = MsgType::kHeartbeat;
  std::string device_id;                          // base/device_id.h: 1..Limits::max_device_id_bytes bytes
  uint64_t seq = 0;                               // kFrame: per-device frame sequence; others: request id
  int64_t capture_time_us = 0, send_time_us = 0;  // microseconds since the Unix epoch (>= 0)
  uint64_t model_version = 0;                     // the sender's running model version
  uint32_t width = 0, height = 0;                 // kFrame: JPEG dimensions in pixels (> 0)
  float selection_score = 0;                      // kFrame: why the edge picked it (finite, >= 0)
  uint64_t ack_seq = 0;                           // kAck: the acked frame seq
  uint32_t credits = 0;                           // kAck/kCredit/kHeartbeat reply: frames the edge may have in flight
  ErrorCode error_code = ErrorCode::kNone;        // kError (must not be kNone there)
  std::string error_text;                         // kError: UTF-8, for humans
  std::string object_id;                          // kChunkRequest/kChunk: artefact id, 64 lowercase hex digits (sha256)
  uint64_t offset = 0, length = 0;                // kChunkRequest/kChunk: byte range (kChunk: length == payload size)
  uint64_t desired_version = 0;                   // kStatusReply: the version this device should run (0 = none)
  UpdateOutcome outcome = UpdateOutcome::kNone;   // kUpdateReport (model_version = the version concerned)
  EdgeStatus status;                              // kStatus only (EncodeFrames leaves it out of other types)
  uint64_t payload_len = 0;                       // set by Encode, checked by Decode
  uint32_t payload_crc32c = 0;                    // CRC32C of the payload; set by Encode, checked by Decode
};

// payload: JPEG, weight chunk, signed manifest, JSON text... (may be empty except for kFrame).
struct Message {
  Header header;
  std::string payload;
};

struct Limits {
  // Serialized header (frame 1), bytes. The header carries no bulk data, so 4 KiB is generous.
  size_t max_header_bytes = 4096;
  // Payload (frame 2), bytes: a JPEG or a weight chunk (8 MiB).
  size_t max_payload_bytes = size_t{8} << 20;
  // kFrame dimensions, pixels.
  uint32_t max_width = 8192, max_height = 8192;
  // device_id length, bytes; charset [A-Za-z0-9._-] (safe in file names, logs and metric labels).
  size_t max_device_id_bytes = 64;
  // Maximum |send_time_us - now|, microseconds; 0 (the default) = not checked. Off by default on
  // purpose: cameras often boot without NTP, and refusing their frames would lose data for a clock
  // problem, while nothing in wire or the learner trusts these timestamps (the learner stamps its
  // own received_time_us). A daemon that wants the check sets it (e.g. 10 min) and gets kBadHeader.
  // Negative timestamps are always refused.
  int64_t max_clock_skew_us = 0;
  // The clock for the skew check; nullptr = SystemClock::Get(). Not owned.
  const Clock* clock = nullptr;
};

// Three frames: kProtocolId, serialized header, payload. Fills payload_len and payload_crc32c (the
// values in message.header are ignored). Does not validate: see DecodeFrames / CheckSendable.
std::vector<std::string> EncodeFrames(const Message& message);

// Validates in this order, first failure wins (ErrorCode in brackets):
//   frame count == 3 [kBadProtocol] -> frame 0 == kProtocolId [kBadProtocol]
//   -> header size <= max_header_bytes [kBadHeader] -> protobuf parse consuming every byte [kBadHeader]
//   -> semantics [kBadHeader unless noted]: known enum values, device_id charset/length, strings
//      UTF-8, object_id hex, payload size <= max_payload_bytes [kTooLarge], payload_len == frame 2
//      size [kBadPayload], payload_crc32c present, per-type rules (PROTOCOL.md), dimension limits [kTooLarge],
//      timestamps
//   -> payload CRC32C [kBadPayload] -> for kFrame: JPEG magic FF D8 FF [kBadPayload].
// On failure: a non-OK Status (InvalidArgument; Corruption for payload checks) and *error_code
// (if given) says which ErrorCode to reply with; on success *error_code = kNone.
Result<Message> DecodeFrames(const std::vector<std::string>& frames, const Limits& limits,
                             ErrorCode* error_code = nullptr);
// The same, but on success the payload is moved out of frames[2] (left empty) instead of copied;
// on failure `frames` is unchanged (the caller may still peek at the header to address a refusal).
Result<Message> DecodeFramesTakingPayload(std::vector<std::string>& frames, const Limits& limits,
                                          ErrorCode* error_code = nullptr);

// The cheap checks a sender makes before sending (an oversize message makes the receiving libzmq
// drop the whole connection): serialized header and payload sizes against `limits`.
// InvalidArgument when over.
Status CheckSendable(const std::vector<std::string>& frames, const Limits& limits);

// Reply helper: a kError for `request` (copies device_id and seq; type kError, code, text).
Message MakeError(const Header& request, ErrorCode code, std::string text);

// The device-id rule is base/device_id.h's (kd::IsValidDeviceId).

}  // namespace kd::wire

#endif  // KD_WIRE_MESSAGE_H_
