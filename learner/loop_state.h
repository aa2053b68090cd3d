// LoopState: what the learner's stages share (devices, groups, published versions, the label
// watermarks) and the one rule that splits labelled frames into hold-out and replay. The stages
// (ingest, labeller, trainer, publisher, control, admin) each own their thread and sockets; this is
// the only state they have in common.
//
// Locking contract: every member of LoopState except the constants (`options`), the heartbeats
// (`beats`, atomics) and `pressure` (its own lock) is guarded by `mu`.
// Hold `mu` only to read or change these maps and counters: never across a store write, a file
// write, a model forward, a signature or a socket send. Copy what is needed, unlock, then work.
// Lock order: a stage's own serialising mutex (Publisher::publish_mu_, Catalogue::persist_mu_)
// before `mu`, never the other way round.
#ifndef KD_LEARNER_LOOP_STATE_H_
#define KD_LEARNER_LOOP_STATE_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/daemon_options.h"
#include "learner/ingest_pressure.h"
#include "learner/rollout.h"
#include "storage/replay_sampler.h"
#include "wire/message.h"

#include "ops/health.h"
#include "ops/metrics.h"

namespace kd::model {
struct StudentOptions;  // model/student.h (LibTorch): held by pointer here
}  // namespace kd::model

namespace kd::learner {

// The deployed weights of a group (its latest version), in the two forms the stages use: the state
// the trainer starts from and the gate compares with, and a fused copy for labelling-time
// difficulty. Defined in learner/deployed_model.h (it needs LibTorch); immutable once built.
struct DeployedModel;

// One published student version of a group (persisted as JSON by the Catalogue).
struct VersionInfo {
  uint64_t version = 0;
  uint64_t delta_base = 0;  // the version the delta applies to (0 = no delta)
  uint64_t revert_of = 0;   // != 0: these are the weights of that older version, republished
  std::string digest, arch_hash;
  std::string full_sha, delta_sha;
  uint64_t full_size = 0, delta_size = 0;
  double ap = -1, ap_base = -1;      // the gate's COCO AP .50:.95 at publication (-1 = not measured)
  double ap50 = -1, ap50_base = -1;  // AP50 beside it
  uint64_t holdout_frames = 0;
  int64_t created_unix_s = 0;
};

struct DeviceInfo {
  std::string group;
  std::string public_key;  // Z85 CURVE key ("" = insecure mode or static without key)
  bool enrolled = false;
  int64_t last_seen_us = 0;
  wire::EdgeStatus status;
  uint64_t running_version = 0;
  // frames_stored: frames held in the store at start-up plus those stored since (retention may
  // have removed some since); duplicates and errors count this process's arrivals.
  uint64_t frames_stored = 0, frames_duplicate = 0, store_errors = 0;
  uint64_t frames_out_of_credit = 0;  // sent beyond the credit window: refused with OUT_OF_CREDIT
  // Stored frames the teacher has not labelled yet (at start-up: stored minus labelled, an estimate
  // when retention removed some).
  uint64_t frames_unlabelled = 0;
  uint64_t uplink_bytes = 0, downlink_bytes = 0;
  uint64_t last_uplink_bytes = 0, last_downlink_bytes = 0;
  double uplink_kbps = 0, downlink_kbps = 0;  // payload kbit/s, EMA over ~30 s (ControlStage)
  std::vector<std::string> reports;           // recent install reports (bounded)
};

// A signed manifest kept for reuse until half its validity has passed.
struct SignedManifestBlob {
  int64_t expires_unix_s = 0;
  std::string blob;
};

struct Group {
  std::string name;
  std::set<std::string> devices;
  std::optional<storage::ReplaySampler> sampler;
  std::map<std::string, std::deque<uint64_t>> holdout;  // device -> newest held-out seqs
  uint64_t labelled = 0, held_out = 0;
  uint64_t labelled_at_last_round = 0;       // `labelled` when the last round started (0 = none yet)
  std::map<uint64_t, VersionInfo> versions;  // with artefacts on disk (the last keep_versions + 1)
  std::map<uint64_t, VersionInfo> history;   // every published version's record (bounded), for status
  uint64_t latest = 0;
  Rollout rollout;
  // The group's student architecture: the deployed model's, else the bootstrap's, else the one the
  // trainer chose for its first round. Null until one of those exists.
  std::shared_ptr<const model::StudentOptions> arch;
  std::shared_ptr<const DeployedModel> deployed;        // of `latest`; null before v1
  std::map<std::string, SignedManifestBlob> manifests;  // "<version>/full|delta" -> signed
  uint64_t reverts = 0;         // bumped by each revert: the trainer restarts from the reverted weights
  std::string last_round_json;  // the latest gate decision (a JSON object), for status
  uint64_t rounds = 0;          // training rounds run by this process
  uint64_t publishes = 0;       // versions published by this process (reverts included)
  std::map<std::string, uint64_t> gate_decisions;  // verdict name -> rounds (this process)
  // The deployed student's disagreement with the teacher on newly labelled frames (the labeller's
  // difficulty), as a fast and a slow moving average (-1 = no frame yet): drift is the fast one
  // rising above the slow one.
  double disagreement_fast = -1, disagreement_slow = -1;
  static constexpr double kFastAlpha = 0.1, kSlowAlpha = 0.01;
  // Relative rise of the fast average over the slow one (0 = none): what the scheduler calls drift.
  double Drift() const;
  // Enough labels for a round: `min_frames` in all, and `min_new_frames` since the last round began.
  bool HasLabelsForARound(int min_frames, int min_new_frames) const;
};

// The stages' heartbeats: each stage's loop beats once per iteration (per training step, per
// labelled batch). Atomics, read by /livez and the systemd watchdog without LoopState::mu.
struct StageBeats {
  ops::Heartbeat ingest, labeller, trainer, control, admin;
};

// The hold-out rule: a frame is held out by its seq's span (seq / span_us), so the split is the same
// after a restart and does not depend on arrival order. Edge seqs are wall-clock microseconds: every
// frame of one span, a burst of consecutive frames included, lands on the same side. Spans come in
// blocks of `every`; a hash of the block picks the one span of it that is held out. So exactly one
// in `every` is, never two blocks' worth of spans pass without one (a new learner's gate gets its
// first held-out frames within 2 x every spans; a hash per span went 33 spans without one in a
// demo), and the position moves from block to block (a fixed period could alias with a looping
// scene such as vtest.avi's 79.5 s). span_us = 0: per frame. `every` >= 1.
bool IsHoldout(uint64_t seq, int every, uint64_t span_us);

struct LoopState {
  // `clock` (for the ingest pressure) outlives the state.
  explicit LoopState(const config::LearnerOptions& options, const Clock& clock = SystemClock::Get());

  const config::LearnerOptions options;  // constant after construction: read without `mu`

  mutable std::mutex mu;
  std::map<std::string, DeviceInfo> devices;
  std::map<std::string, Group> groups;
  std::map<std::string, uint64_t> label_wm;  // device -> highest labelled seq
  uint64_t frames_received = 0, frames_rejected = 0;
  uint64_t ingest_writes = 0, ingest_batched_frames = 0;  // group commit: synced writes and their frames
  uint64_t frames_labelled = 0;                           // teacher-labelled by this process
  uint64_t train_steps = 0;                               // optimiser steps of this process, all groups
  ops::HistogramAccumulator train_step_seconds{ops::LatencyBucketsSeconds()};

  StageBeats beats;  // not guarded by mu (atomics)
  // Ingest first: the ingest stage records what it stores, the labeller and trainer wait on it
  // (training.yield_above_fps). Not guarded by mu (its own lock).
  IngestPressure pressure;

  // The group a device belongs to: its `[[groups]]` entry, else a group of its own. No lock needed.
  std::string GroupNameOf(const std::string& device_id) const;
  // The device's group, created on first use; registers the device in it. REQUIRES: mu held.
  Group& GroupFor(const std::string& device_id);
  // The device's record, created on first use with its group name set. REQUIRES: mu held.
  DeviceInfo& Device(const std::string& device_id);
  // A labelled frame joins its group: the hold-out window of its camera (bounded by
  // gate.holdout_window) or the replay sampler. REQUIRES: mu held.
  void AddLabelled(const std::string& device_id, uint64_t seq, float difficulty);
  // The rollout options of a group, from the config.
  RolloutOptions rollout_options() const;

 private:
  std::map<std::string, std::string> static_group_of_;  // from `[[groups]]`; constant
};

// A reply to `request` of `type`, addressed to the same device and seq, stamped `now_us`.
wire::Message ReplyTo(const wire::Header& request, wire::MsgType type, int64_t now_us);

}  // namespace kd::learner

#endif  // KD_LEARNER_LOOP_STATE_H_
