// Uplink: the edge's frames to the learner.
//
// UploadPicker runs on the inference thread: it offers each inferred frame to the FrameSelector
// (interest score, frame and byte token buckets, JPEG) and turns a selected one into a
// PendingFrame with a seq that stays unique across restarts. The Uplink stage takes those from its
// queue into the UnackedBuffer and sends what the learner's credit window allows; it resends a
// frame not acknowledged after resend_after_ms, keeps hello/heartbeats going, and when the learner
// has been silent past timeout_ms reconnects after a Backoff (doubling from 100 ms up to
// reconnect_max_ms) and marks every buffered frame unsent, so all of them go again.
// Ownership: the Uplink owns its buffer; it borrows the link, queue, models, stats and clock
// (the agent's, which outlive it). Threading: UploadPicker is used by one thread (inference); the
// Uplink has one thread of its own (Start / Stop); Step() is one turn of its loop, for tests.
#ifndef KD_EDGE_UPLINK_H_
#define KD_EDGE_UPLINK_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>

#include "base/clock.h"
#include "base/detection.h"
#include "base/status.h"
#include "config/daemon_options.h"
#include "edge/bounded_queue.h"
#include "edge/edge_stats.h"
#include "edge/frame_selector.h"
#include "edge/link.h"
#include "edge/model_holder.h"
#include "edge/unacked_buffer.h"
#include "media/frame.h"

namespace kd::edge {

class UploadPicker {
 public:
  // InvalidArgument for selector options out of range (the config checks them first).
  static Result<UploadPicker> Create(const config::EdgeUplinkOptions& options, const Clock& clock);
  // The frame as a PendingFrame when the selector sends it, else nullopt (a selector error is a
  // frame not sent). The seq is max(last + 1, wall clock us): increasing, and unique across restarts.
  std::optional<PendingFrame> Offer(const media::Frame& frame, const FrameDetections& detections);

 private:
  UploadPicker(FrameSelector selector, const Clock& clock) : selector_(std::move(selector)), clock_(&clock) {}
  FrameSelector selector_;
  const Clock* clock_;
  uint64_t last_seq_ = 0;
};

// Reconnect delays: `initial_ms`, doubling per failure up to `max_ms`; Reset() after any reply.
class Backoff {
 public:
  static constexpr int64_t kInitialMs = 100;
  explicit Backoff(int64_t max_ms, int64_t initial_ms = kInitialMs)
      : initial_ms_(initial_ms), max_ms_(max_ms), next_ms_(initial_ms) {}
  // The delay to wait now (ms); the one after it is doubled.
  int64_t Next() {
    const int64_t d = next_ms_;
    next_ms_ = std::min(next_ms_ * 2, max_ms_);
    return d;
  }
  int64_t peek() const { return next_ms_; }
  void Reset() { next_ms_ = initial_ms_; }

 private:
  int64_t initial_ms_, max_ms_, next_ms_;
};

class Uplink {
 public:
  // How often a repeated learner error (same ErrorCode) is logged again, microseconds.
  static constexpr int64_t kErrorLogIntervalUs = 10'000'000;
  // Hello is repeated at most this far apart until the learner answers (us).
  static constexpr int64_t kHelloIntervalUs = 1'000'000;
  // One wait for a reply per turn (ms): the loop turns at least this often.
  static constexpr int kReceiveMs = 10;

  Uplink(std::string device_id, const config::EdgeUplinkOptions& uplink, const config::EdgeLearnerOptions& learner,
         Link& link, BoundedQueue<PendingFrame>& in, const ModelHolder& models, EdgeStats& stats, const Clock& clock);
  ~Uplink();  // Stop()
  Uplink(const Uplink&) = delete;
  Uplink& operator=(const Uplink&) = delete;

  void Start();
  // From now on the stage ends by itself once its queue is closed and drained and every frame is
  // acknowledged (the agent calls it when capture stops).
  void FinishWhenDrained() { finish_when_drained_ = true; }
  // Ends the loop now (un-acked frames are dropped) and joins. Idempotent.
  void Stop();
  // Frames in the resend buffer, waiting for an acknowledgement (as of the last turn; frames still in
  // the input queue are not counted).
  size_t waiting() const { return waiting_; }
  // After FinishWhenDrained: the input queue was closed and drained and every frame acknowledged, so
  // the stage has ended by itself (what the agent's grace period at shutdown waits for).
  bool drained() const { return drained_; }

  // One turn: queue -> buffer, hello/heartbeat, reconnect after silence, send what is due, one
  // receive. False when the stage is finished.
  bool Step();

 private:
  void Handle(const wire::Message& message);
  void SendDue(int64_t now_us);

  const std::string device_id_;
  const config::EdgeUplinkOptions options_;
  const config::EdgeLearnerOptions learner_;
  Link& link_;
  BoundedQueue<PendingFrame>& in_;
  const ModelHolder& models_;
  EdgeStats& stats_;
  const Clock& clock_;

  UnackedBuffer buffer_;
  Backoff backoff_;
  uint32_t credits_ = 0;  // frames the learner lets us have un-acked in flight
  int64_t last_rx_us_, last_hello_us_ = 0;
  bool hello_answered_ = false, in_closed_ = false;
  // Learner errors are logged once per kind, then at most every kErrorLogIntervalUs with a count:
  // a full learner disk answers every resend, and one line per frame would flood the log.
  wire::ErrorCode last_logged_error_ = wire::ErrorCode::kNone;
  int64_t last_error_log_us_ = 0;
  uint64_t errors_not_logged_ = 0;

  std::atomic<bool> stop_{false}, finish_when_drained_{false}, drained_{false};
  std::atomic<size_t> waiting_{0};
  std::thread thread_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_UPLINK_H_
