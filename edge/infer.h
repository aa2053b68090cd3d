// Infer: the edge's inference stage. Pops each captured frame, swaps in a pending model between
// two frames (ModelHolder::TakeForFrame), runs the shared per-frame step (DetectFrame in
// edge/detect_loop.h), writes the detections as one JSON line, tells Probation how the frame went,
// refreshes the self-test frame, and offers the frame to the UploadPicker, whose selections go to
// the uplink queue. When the capture queue is closed and drained it flushes the detections,
// closes the uplink queue and reports the source done.
//
// A frame the model fails to run is counted (inference_errors), logged once per model version and
// skipped: on trial, probation rolls the model back; a committed model has nothing to fall back to.
// Ownership: owns the picker; borrows queues, models, probation, stats, the latest-frame slot, the
// detections stream and the clocks (the agent's, which outlive it). Threading: one thread of its
// own (Start / Join); Run() is the same loop on the caller's thread.
#ifndef KD_EDGE_INFER_H_
#define KD_EDGE_INFER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <ostream>
#include <thread>

#include "base/clock.h"
#include "edge/bounded_queue.h"
#include "edge/edge_stats.h"
#include "edge/latest_frame.h"
#include "edge/model_holder.h"
#include "edge/probation.h"
#include "edge/unacked_buffer.h"
#include "edge/uplink.h"
#include "media/frame.h"

namespace kd::edge {

class Infer {
 public:
  // Decoding keeps scores down to this (the selector's uncertainty term needs the weak ones);
  // detections written out are those >= score_threshold.
  static constexpr float kDecodeScore = 0.05f;
  // How long one Pop waits before checking for the end of the stream (ms).
  static constexpr int kPopMs = 200;

  // `detections`: where JSON lines go (nullptr = nowhere). `inference_clock` times each frame
  // (probation's latency); `clock` stamps the rest.
  Infer(double score_threshold, BoundedQueue<media::Frame>& in, BoundedQueue<PendingFrame>& out, UploadPicker picker,
        ModelHolder& models, Probation& probation, EdgeStats& stats, LatestFrame& latest, std::ostream* detections,
        const Clock& inference_clock);
  ~Infer();  // Join()
  Infer(const Infer&) = delete;
  Infer& operator=(const Infer&) = delete;

  void Start();
  // Waits for the loop to end (it ends when the capture queue is closed and drained).
  void Join();
  void Run();
  // Blocks until every frame of a finite source was inferred or `timeout` passes; true if done.
  bool WaitDone(std::chrono::milliseconds timeout);

 private:
  void InferOne(media::Frame& frame);

  const double score_threshold_;
  BoundedQueue<media::Frame>& in_;
  BoundedQueue<PendingFrame>& out_;
  UploadPicker picker_;
  ModelHolder& models_;
  Probation& probation_;
  EdgeStats& stats_;
  LatestFrame& latest_;
  std::ostream* detections_;
  const Clock& inference_clock_;
  uint64_t last_error_version_ = 0;  // the last model whose run-time error was logged

  std::mutex done_mu_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_INFER_H_
