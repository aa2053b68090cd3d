// EdgeAgent: the kdedge daemon's engine. Captures frames, runs the student on every one of them,
// writes detections as JSON lines, uploads a budgeted selection of frames to the learner (resending
// until acknowledged), and installs signed model updates without stopping inference.
//
// The agent owns the stages and what they share, and orders them; the work is in the stages
// (one thread each, bounded queues between them, each owning its own socket):
//   Capture (edge/capture.h) -> [2 frames] -> Infer (edge/infer.h) -> [64 frames] -> Uplink
//   (edge/uplink.h, frames DEALER); Updater (edge/updater.h, control DEALER): status, manifest
//   verification, chunked download, verify + self-test, staging into the inactive A/B slot,
//   Probation (edge/probation.h), commit or rollback, install reports.
// Shared, passed to each stage explicitly: options, clocks, EdgeStats (counters), the ModelHolder
// (edge/model_holder.h: current/pending/committed; the inference thread swaps between two frames,
// so no frame is skipped), Probation and the latest frame for self-tests.
// Start order: updater, uplink, inference, capture (consumers before producers); Stop() goes in
// reverse: capture stops, queued frames are inferred, un-acked uploads get a grace period, then
// the sockets close.
#ifndef KD_EDGE_AGENT_H_
#define KD_EDGE_AGENT_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "config/daemon_options.h"
#include "edge/edge_stats.h"  // EdgeCounters

#include "ops/health.h"
#include "ops/metrics.h"

namespace kd::edge {

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

  // For the management HTTP server and the systemd watchdog (edge/observe.h).
  std::vector<ops::MetricFamily> Metrics() const;
  ops::HealthReport Live() const;
  ops::HealthReport Ready() const;
  // The page's preview: the latest previewed frame as JPEG with its detections drawn, and those
  // detections as JSON ({"frame", "version", "width", "height", "detections": [{x, y, w, h, score,
  // class}]}). NotFound before the first frame.
  Result<std::vector<uint8_t>> PreviewJpeg() const;
  Result<std::string> PreviewJson() const;

  struct Impl;

 private:
  explicit EdgeAgent(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_AGENT_H_
