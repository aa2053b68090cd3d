// EdgeAgent: the kdedge daemon's engine. Captures frames, runs the student on every one of them,
// writes detections as JSON lines, uploads a budgeted selection of frames to the learner (resending
// until acknowledged), and installs signed model updates without stopping inference.
//
// Threads (one per stage, bounded queues between them, each owning its own sockets):
//   capture   -> [2 frames]  -> inference -> [64 frames] -> uplink (frames DEALER)
//   control (control DEALER): status, manifest verification, chunked download, verify + self-test,
//   staging into the inactive A/B slot, probation, commit or rollback, install reports.
// The running model is an immutable snapshot behind a shared_ptr: the control thread prepares the
// next one and the inference thread swaps pointers between two frames, so no frame is skipped.
// Stop() ends capture, lets queued frames finish, waits briefly for acknowledgements and closes.
#ifndef KD_EDGE_AGENT_H_
#define KD_EDGE_AGENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/daemon_options.h"

namespace kd::edge {

struct EdgeCounters {
  uint64_t frames_captured = 0;
  uint64_t frames_inferred = 0;
  uint64_t frames_dropped = 0;  // captured but never inferred (live source, inference behind)
  uint64_t frames_selected = 0, frames_sent = 0, frames_acked = 0, frames_resent = 0;
  uint64_t frames_dropped_unacked = 0;  // pushed out of the full resend buffer
  uint64_t frames_refused = 0;          // refused by the learner as malformed (not resent)
  uint64_t frames_kept_for_resend = 0;  // learner errors that keep the frame (STORAGE_FULL, ...)
  uint64_t inference_errors = 0;        // frames the model failed on at run time (no detections written)
  uint64_t uplink_bytes = 0, downlink_bytes = 0;
  uint64_t swaps = 0, commits = 0, rollbacks = 0, rejected_manifests = 0;
  uint64_t running_version = 0, committed_version = 0, floor_version = 0;
  double fps = 0;                 // inference frames/s over the last status interval
  double mean_inference_ms = 0;   // over the last status interval
  double max_frame_gap_ms = 0;    // longest pause between two inferred frames (swap cost)
  double inference_ms_total = 0;  // sum over all inferred frames (resize + forward + decode)
  bool downloading = false;       // an update is being downloaded now
  bool source_done = false;       // a finite source has ended and every frame was inferred
};

struct EdgeSeams;  // edge/running_model.h

class EdgeAgent {
 public:
  // Opens the slot directory (installing the bootstrap model if empty), loads the committed (or
  // on-trial) model and checks that it runs, opens the source and connects to the learner.
  // Errors: bad options, no model, a committed model that cannot run (an on-trial one that cannot
  // is rolled back instead), a source that cannot be opened, key files.
  static Result<std::unique_ptr<EdgeAgent>> Start(const config::EdgeOptions& options);
  // The same with the seams of edge/running_model.h (tests substitute the model builder).
  static Result<std::unique_ptr<EdgeAgent>> Start(const config::EdgeOptions& options, const EdgeSeams& seams);
  ~EdgeAgent();
  EdgeAgent(const EdgeAgent&) = delete;
  EdgeAgent& operator=(const EdgeAgent&) = delete;

  // Blocks until a finite source has been fully inferred or `timeout` passes; true if it ended.
  bool WaitForSourceEnd(std::chrono::milliseconds timeout);
  // Ordered shutdown (idempotent): capture stops, queued frames are inferred, un-acked uploads get
  // up to `ack_grace` to be acknowledged, then sockets close.
  void Stop(std::chrono::milliseconds ack_grace = std::chrono::milliseconds(2000));
  EdgeCounters counters() const;
  // The seqs of the most recent acknowledged uploads (at most 100000), oldest first: what the
  // learner has promised to keep. For tests and diagnostics.
  std::vector<uint64_t> AckedSeqs() const;
  std::string StatusJson() const;

  struct Impl;

 private:
  explicit EdgeAgent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_AGENT_H_
