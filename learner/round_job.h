// The round job a coordinating learner sends a `kdlearnd worker`, and the result it gets back: the
// payloads of cluster/PROTOCOL.md's job and result values (authenticated there; decoded here as
// untrusted bytes all the same). Spec, little-endian:
//
//   job    = "KDRJ" u32 version(1) lp(json header) lp(start .kdw or "") u32 n  n x frame
//   frame  = lp(device id) u64 seq lp(JPEG) lp(teacher record blob, learner/teacher_record.h)
//   result = "KDRR" u32 version(1) lp(json header) lp(trained .kdw (f32) or "")
//
// lp(x) = u32 length, then the bytes. Job header: {"group", "epoch", "token", "iterations",
// "seed"}, optionally "anchor" (the deployed version the start weights are; default 0) and
// "update_fraction" (RoundSettings::update_fraction, in (0, 1]; default 1); result header: {"group",
// "epoch", "error" ("" = ok), "round", "frames", "steps", "loss", "seconds", "stopped"}. `token` is
// RoundStart::token (learner/round_trainer.h): the start weights travel only when it changes, or,
// in sparse rounds, when the anchor does. Weights are .kdw files (docs/WEIGHTS_FORMAT.md), self-describing and
// checksummed.
// Pure functions; thread-safe.
#ifndef KD_LEARNER_ROUND_JOB_H_
#define KD_LEARNER_ROUND_JOB_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kd::learner {

struct JobFrame {
  std::string device_id;
  uint64_t seq = 0;
  std::vector<uint8_t> jpeg;
  std::vector<uint8_t> teacher_blob;
};

struct RoundJob {
  std::string group;
  uint64_t epoch = 0;  // the group's assignment epoch: a result of an older one is dropped
  uint64_t token = 0;  // RoundStart::token
  int iterations = 0;
  uint64_t seed = 0;
  uint64_t anchor = 0;           // RoundStart::anchor
  double update_fraction = 1.0;  // RoundSettings::update_fraction
  std::string start_kdw;         // "" = the worker keeps its trainer (or starts fresh when it has none)
  std::vector<JobFrame> frames;
};

struct RoundResult {
  std::string group;
  uint64_t epoch = 0;
  std::string error;  // "" = trained
  uint64_t round = 0;
  uint64_t frames = 0;
  int steps = 0;
  double loss = 0, seconds = 0;
  bool stopped = false;
  std::string trained_kdw;
};

// Refused above these (bytes): a job carries a round's frames (round_frames x ~80 KB JPEGs).
inline constexpr size_t kMaxJobBytes = size_t{1} << 30;
inline constexpr size_t kMaxFrameBytes = size_t{64} << 20;

std::string EncodeRoundJob(const RoundJob& job);
Result<RoundJob> DecodeRoundJob(std::string_view bytes);  // Corruption on any format error
std::string EncodeRoundResult(const RoundResult& result);
Result<RoundResult> DecodeRoundResult(std::string_view bytes);

}  // namespace kd::learner

#endif  // KD_LEARNER_ROUND_JOB_H_
