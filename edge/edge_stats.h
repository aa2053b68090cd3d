// EdgeStats: the status counters every edge stage adds to and the status report reads.
//
// EdgeCounters is the snapshot (EdgeAgent::counters(), the kStatus message, the status JSON).
// RateMeter turns the inferred frames of one status interval into frames/s and mean latency.
// Ownership: the agent owns one EdgeStats and lends it to each stage by reference; it outlives
// them. Threading: thread-safe; one mutex guards plain counter arithmetic only (no I/O, no model
// runs, no allocation beyond the bounded ack log), so stages never wait on each other's work.
#ifndef KD_EDGE_EDGE_STATS_H_
#define KD_EDGE_EDGE_STATS_H_

#include <algorithm>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

#include "base/clock.h"

#include "ops/metrics.h"

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
  uint64_t unacked_frames = 0;                // uploads in the resend buffer, not yet acknowledged
  uint64_t desired_version = 0;               // what the learner's last status reply asked for (0 = none yet)
  double fps = 0;                             // inference frames/s over the last status interval
  double uplink_kbps = 0, downlink_kbps = 0;  // payload kbit/s over the last status interval
  double mean_inference_ms = 0;               // over the last status interval
  double max_frame_gap_ms = 0;                // longest pause between two inferred frames (swap cost)
  double inference_ms_total = 0;              // sum over all inferred frames (resize + forward + decode)
  bool downloading = false;                   // an update is being downloaded now
  bool source_done = false;                   // a finite source has ended and every frame was inferred
};

// Frames per second and mean latency over an interval that Take() closes. Not thread-safe (EdgeStats
// guards it).
class RateMeter {
 public:
  // The first interval starts now (on `clock`, which must outlive the meter).
  explicit RateMeter(const Clock& clock) : clock_(clock), start_ns_(clock.MonotonicNanos()) {}
  void Add(double ms) { ++frames_, ms_ += ms; }
  struct Rate {
    double fps = 0;      // frames / interval seconds (an empty interval counts as 1 us long)
    double mean_ms = 0;  // 0 without frames
  };
  // The rate since the last Take (or construction); starts the next interval.
  Rate Take() {
    const int64_t now = clock_.MonotonicNanos();
    const double secs = std::max(1e-6, static_cast<double>(now - start_ns_) * 1e-9);
    Rate r{static_cast<double>(frames_) / secs, frames_ ? ms_ / static_cast<double>(frames_) : 0};
    frames_ = 0, ms_ = 0, start_ns_ = now;
    return r;
  }

 private:
  const Clock& clock_;
  int64_t start_ns_;
  uint64_t frames_ = 0;
  double ms_ = 0;
};

class EdgeStats {
 public:
  // At most this many acknowledged seqs are remembered (AckedSeqs), oldest forgotten first.
  static constexpr size_t kMaxAckedLog = 100000;

  explicit EdgeStats(const Clock& clock) : clock_(clock), meter_(clock), interval_start_ns_(clock.MonotonicNanos()) {}
  EdgeStats(const EdgeStats&) = delete;
  EdgeStats& operator=(const EdgeStats&) = delete;

  // Runs `f(counters)` under the lock. `f` must be counter arithmetic, nothing slow.
  template <typename F>
  void Update(F&& f) {
    std::lock_guard lock(mu_);
    f(c_);
  }
  EdgeCounters Snapshot() const {
    std::lock_guard lock(mu_);
    return c_;
  }
  // One inferred frame: `ms` its latency, run by model `version`. Returns frames_inferred after it.
  uint64_t OnInferred(double ms, uint64_t version) {
    const int64_t end_us = clock_.MonotonicNanos() / 1000;
    std::lock_guard lock(mu_);
    ++c_.frames_inferred;
    c_.inference_ms_total += ms;
    inference_seconds_.Observe(ms / 1e3);
    meter_.Add(ms);
    if (last_infer_end_us_ >= 0) {
      c_.max_frame_gap_ms = std::max(c_.max_frame_gap_ms, static_cast<double>(end_us - last_infer_end_us_) / 1e3);
    }
    last_infer_end_us_ = end_us;
    c_.running_version = version;
    return c_.frames_inferred;
  }
  // Closes the status interval (fps, mean_inference_ms, kbps) and returns the counters with it.
  EdgeCounters CloseInterval() {
    const int64_t now_ns = clock_.MonotonicNanos();
    std::lock_guard lock(mu_);
    const RateMeter::Rate r = meter_.Take();
    c_.fps = r.fps;
    c_.mean_inference_ms = r.mean_ms;
    const double secs = std::max(1e-6, static_cast<double>(now_ns - interval_start_ns_) * 1e-9);
    c_.uplink_kbps = static_cast<double>(c_.uplink_bytes - interval_uplink_bytes_) * 8 / 1e3 / secs;
    c_.downlink_kbps = static_cast<double>(c_.downlink_bytes - interval_downlink_bytes_) * 8 / 1e3 / secs;
    interval_start_ns_ = now_ns;
    interval_uplink_bytes_ = c_.uplink_bytes;
    interval_downlink_bytes_ = c_.downlink_bytes;
    return c_;
  }
  // Inference latency (seconds) of every inferred frame, as Prometheus buckets.
  ops::HistogramValue InferenceHistogram() const {
    std::lock_guard lock(mu_);
    return inference_seconds_.value();
  }
  // When the last frame was inferred (the stats clock's monotonic µs), -1 before the first.
  int64_t last_inferred_us() const {
    std::lock_guard lock(mu_);
    return last_infer_end_us_;
  }
  void NoteAcked(uint64_t seq) {
    std::lock_guard lock(mu_);
    ++c_.frames_acked;
    acked_seqs_.push_back(seq);
    if (acked_seqs_.size() > kMaxAckedLog) acked_seqs_.pop_front();
  }
  std::vector<uint64_t> AckedSeqs() const {
    std::lock_guard lock(mu_);
    return {acked_seqs_.begin(), acked_seqs_.end()};
  }

 private:
  const Clock& clock_;
  mutable std::mutex mu_;
  EdgeCounters c_;
  RateMeter meter_;
  int64_t last_infer_end_us_ = -1;  // -1: no frame yet
  ops::HistogramAccumulator inference_seconds_{ops::LatencyBucketsSeconds()};
  int64_t interval_start_ns_;
  uint64_t interval_uplink_bytes_ = 0, interval_downlink_bytes_ = 0;
  std::deque<uint64_t> acked_seqs_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_EDGE_STATS_H_
