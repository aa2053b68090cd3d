// LatestFrame: a recent camera frame, kept by the inference stage for the updater's self-test
// (a new model is tried on what this camera sees, not on a synthetic image), and a preview (a
// recent frame with its detections and the model version that found them) for the edge's web page.
// Ownership: the agent owns it; inference writes, the updater reads a copy. Threading: thread-safe;
// the lock covers a copy of one frame (about 1 MB at 640x480), which is why inference refreshes it
// only every kRefreshEvery frames.
#ifndef KD_EDGE_LATEST_FRAME_H_
#define KD_EDGE_LATEST_FRAME_H_

#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "base/detection.h"
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

  // The page's preview: refreshed every kPreviewEvery inferred frames (about a second at 10 fps).
  static constexpr uint64_t kPreviewEvery = 8;
  struct Preview {
    media::Frame frame;
    std::vector<Detection> detections;  // those written out (at or above the score threshold)
    uint64_t model_version = 0;
  };
  void OfferPreview(const media::Frame& frame, const std::vector<Detection>& detections, uint64_t model_version,
                    uint64_t frames_inferred) {
    std::lock_guard lock(mu_);
    if (preview_ && frames_inferred % kPreviewEvery != 0) return;
    preview_ = Preview{frame, detections, model_version};
  }
  std::optional<Preview> GetPreview() const {
    std::lock_guard lock(mu_);
    return preview_;
  }

 private:
  mutable std::mutex mu_;
  std::optional<media::Frame> frame_;
  std::optional<Preview> preview_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_LATEST_FRAME_H_
