// Capture: the edge's first stage. Reads frames from the source (a video file, an image folder,
// an RTSP/HTTP stream or a V4L2 camera, through media::OpenSource), applies the pass effect of
// a replayed file, stamps each frame (index across passes, wall-clock time) and pushes it into the
// inference queue.
//
// A file source blocks on a full queue (every frame is inferred) and is replayed `passes` times
// when `loop` is set; a live source (`realtime`) is paced at its frame rate, drops the oldest
// queued frame when inference is behind (counted as frames_dropped), and is reopened after a read
// failure. When the source ends the queue is closed, which ends inference in turn.
// Ownership: owns its source; borrows the queue, stats and clock (the agent's, which outlive it).
// Threading: one thread of its own (Start / Stop); Run() is the same loop on the caller's thread.
#ifndef KD_EDGE_CAPTURE_H_
#define KD_EDGE_CAPTURE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "config/daemon_options.h"
#include "edge/bounded_queue.h"
#include "edge/edge_stats.h"
#include "media/frame.h"
#include "media/video_source.h"

namespace kd::edge {

// Opens the source afresh (each pass, each reconnect).
using SourceOpener = std::function<Result<std::unique_ptr<media::FrameSource>>()>;
// The opener of `options.uri` with its frame range: the one mapping from config to media.
SourceOpener OpenerFor(const config::EdgeSourceOptions& options);

// A frame with a pass effect applied (kNone: unchanged).
media::Frame ApplyPassEffect(const media::Frame& frame, const config::PassEffect& effect);

class Capture {
 public:
  // Pause before reopening a source that failed to open, and after a live source's read failure (ms).
  static constexpr int kReopenRetryMs = 1000;
  static constexpr int kLiveReconnectMs = 500;

  // `first` is the source already opened by the agent (so a bad URI fails the start); later passes
  // and reconnects use `open`. Pass effects that do not parse (the config checks them) are "none".
  Capture(const config::EdgeSourceOptions& options, SourceOpener open, std::unique_ptr<media::FrameSource> first,
          BoundedQueue<media::Frame>& out, EdgeStats& stats, const Clock& clock);
  ~Capture();  // Stop()
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  void Start();
  // Ends the loop after the current frame, closes the queue, joins. Idempotent.
  void Stop();
  // The loop: until the source ends (after its passes) or Stop; closes the queue on the way out.
  void Run();

 private:
  const config::EdgeSourceOptions options_;
  std::vector<config::PassEffect> effects_;  // parsed pass_effects
  SourceOpener open_;
  std::unique_ptr<media::FrameSource> first_;
  BoundedQueue<media::Frame>& out_;
  EdgeStats& stats_;
  const Clock& clock_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_CAPTURE_H_
