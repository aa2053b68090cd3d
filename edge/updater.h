// Updater: the edge's control stage. Every status interval it reports to the learner (kStatus:
// versions, rates, counters, want_full); the learner's kStatusReply names the version to run and
// carries its signed manifest. The updater verifies the manifest (trusted keys, expiry, version
// floor), downloads the artefact in chunks with `download_window` requests in flight (resuming a
// partial left on disk, re-requesting after kChunkSilenceUs of silence), then installs it: rebuild
// (a full .kdw, or the running state plus a delta), check the arch hash and the target digest,
// self-test against the running model on a recent camera frame, stage into the inactive A/B slot
// and hand the model to the inference stage (ModelHolder::Stage). While the new model runs on
// trial, Probation decides: commit (slots + holder), roll back (never installed again by this
// process), or wait. Each outcome is reported to the learner (kUpdateReport).
// Ownership: owns the download in progress; borrows the slots, link, models, probation, stats,
// latest frame and clocks (the agent's, which outlive it). Threading: one thread of its own
// (Start / Stop); Step() is one turn of its loop, for tests. Slow work (decode, self-test, disk)
// runs on this thread under no shared lock.
#ifndef KD_EDGE_UPDATER_H_
#define KD_EDGE_UPDATER_H_

#include <atomic>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "config/daemon_options.h"
#include "edge/edge_stats.h"
#include "edge/latest_frame.h"
#include "edge/link.h"
#include "edge/model_holder.h"
#include "edge/probation.h"
#include "edge/running_model.h"
#include "update/manifest.h"
#include "update/slots.h"

namespace kd::edge {

class Updater {
 public:
  // Chunks are requested again from where the download stands after this long without one (us).
  static constexpr int64_t kChunkSilenceUs = 5'000'000;
  // A version whose install failed is not tried again for this long (us).
  static constexpr int64_t kRetryAfterFailedInstallUs = 60'000'000;
  // Largest error text sent in a report (bytes).
  static constexpr size_t kMaxReportText = 1000;
  // One wait for a reply per turn (ms).
  static constexpr int kReceiveMs = 20;

  // `options`: device_id, model.dir, update.*, output.status_interval_ms are read. `trusted_keys`:
  // raw ed25519 public keys. `clock` stamps messages and drives the status period, the download
  // silence and retries; `inference_clock` times the self-test.
  Updater(const config::EdgeOptions& options, update::ModelSlots& slots, std::vector<std::string> trusted_keys,
          Link& link, ModelHolder& models, Probation& probation, EdgeStats& stats, const LatestFrame& latest,
          ModelBuilder build_model, const Clock& clock, const Clock& inference_clock);
  ~Updater();  // Stop()
  Updater(const Updater&) = delete;
  Updater& operator=(const Updater&) = delete;

  void Start();
  void Stop();  // idempotent; a download in progress stays on disk (resumed at the next start)

  // One turn: probation verdict, status when due, download pump, one receive. False when the link
  // is shut down and Stop was called.
  bool Step();

 private:
  struct DownloadState {
    update::Manifest manifest;
    std::optional<update::ModelSlots::Download> download;
    uint64_t requested_to = 0;  // bytes requested so far
    int64_t last_chunk_us = 0;  // when the last chunk arrived (or the first request went out)
  };

  int64_t NowUs() const { return clock_.MonotonicNanos() / 1000; }
  wire::Message NewMessage(wire::MsgType type) const;
  void Report(wire::UpdateOutcome outcome, uint64_t version, const std::string& text);
  void JudgeTrial();
  void SendStatus();
  void PumpDownload(int64_t now_us);
  void Handle(const wire::Message& message);
  void OnStatusReply(const wire::Message& message);
  // Verifies, self-tests and stages a complete download, then closes it (whatever the outcome).
  void InstallDownload();
  Status Install(const update::Manifest& manifest, const std::vector<uint8_t>& artifact);

  const config::EdgeOptions options_;
  update::ModelSlots& slots_;
  const std::vector<std::string> trusted_keys_;
  Link& link_;
  ModelHolder& models_;
  Probation& probation_;
  EdgeStats& stats_;
  const LatestFrame& latest_;
  const ModelBuilder build_model_;
  const Clock& clock_;
  const Clock& inference_clock_;

  std::optional<DownloadState> dl_;
  std::set<std::string> refused_;               // "version:reason" already reported (report once)
  std::map<uint64_t, int64_t> retry_after_us_;  // version -> no new attempt before (monotonic us)
  bool want_full_ = false;                      // ask the learner for a full snapshot, not a delta
  int64_t last_status_us_ = std::numeric_limits<int64_t>::min() / 2;  // never: the first turn sends one
  uint64_t request_id_ = 0;

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_UPDATER_H_
