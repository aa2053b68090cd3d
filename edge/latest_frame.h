// LatestFrame: a recent camera frame, kept by the inference stage for the updater's self-test
// (a new model is tried on what this camera sees, not on a synthetic image).
// Ownership: the agent owns it; inference writes, the updater reads a copy. Threading: thread-safe;
// the lock covers a copy of one frame (about 1 MB at 640x480), which is why inference refreshes it
// only every kRefreshEvery frames.
#ifndef KD_EDGE_LATEST_FRAME_H_
#define KD_EDGE_LATEST_FRAME_H_

#include <cstdint>
#include <mutex>
#include <optional>

#include "media/frame.h"

namespace kd::edge {

class LatestFrame {
 public:
  // Inference keeps the first frame and then one in this many inferred frames.
  static constexpr uint64_t kRefreshEvery = 32;

  // Called with the running count of inferred frames (1 for the first).
  void Offer(const media::Frame& frame, uint64_t frames_inferred) {
    std::lock_guard lock(mu_);
    if (!frame_ || frames_inferred % kRefreshEvery == 0) frame_ = frame;
  }
  std::optional<media::Frame> Get() const {
    std::lock_guard lock(mu_);
    return frame_;
  }

 private:
  mutable std::mutex mu_;
  std::optional<media::Frame> frame_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_LATEST_FRAME_H_
