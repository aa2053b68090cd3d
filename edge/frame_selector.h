// FrameSelector: decides, frame by frame, which camera frames go up to the learner, under an uplink
// budget (bytes/s and frames/s), and JPEG-encodes the chosen ones. The learner can only label and
// train on what it receives, so the few frames the budget allows should be the ones the student
// gets wrong or has not seen: frames where the student is unsure, and frames of a changed scene.
// Ownership: a FrameSelector owns its state (buckets, score window, last sent thumbnail); Offer
// returns the JPEG by value. Threading: not thread-safe; the edge's inference thread calls Offer
// once per frame, in capture order.
//
// Policy, per Offer (all constants are SelectorOptions):
//  1. uncertainty in [0, 1]: each detection whose score lies in the ambiguous band
//     [uncertain_low, uncertain_high] contributes a bump 4u(1-u), u = its position in the band
//     (0 at the band edges, 1 in the middle); the sum saturates: 1 - exp(-sum / uncertainty_saturation).
//     A sum, not a mean: the decoder's long tail of near-zero scores would dilute a mean, and a
//     frame with three unsure objects teaches more than a frame with one. Confident (> high) and
//     background-level (< low) scores contribute nothing.
//  2. scene_change in [0, 1]: mean absolute difference of a 32x24 grey thumbnail against the
//     thumbnail of the last *sent* frame, /255, then / scene_change_saturation, capped at 1.
//     Against the last sent frame (not the previous one) so slow drift (dusk, a moved camera)
//     accumulates until it is sent once. The first frame counts as 1.
//  3. score = uncertainty_weight * uncertainty + scene_change_weight * scene_change.
//  4. threshold = max(min_score, a running quantile of the last threshold_window scores): the
//     quantile that leaves a fraction candidate_factor * target_fps / observed_fps above it, where
//     target_fps = min(max_fps, byte rate / mean JPEG size so far). So at any camera frame rate the
//     budget goes to the most interesting frames. candidate_factor > 1 admits a few more candidates
//     than the budget, because interesting frames cluster: with a strict top fraction, bursts hit
//     the caps and quiet stretches leave budget unspent.
//  5. send when score >= threshold, or when keep_alive_s has passed since the last send
//     (keep-alive overrides the threshold, not the budget), and both token buckets allow it: frames
//     (rate max_fps, depth max(2, max_fps * burst_s)) and bytes (rate uplink_kbps, depth
//     uplink_kbps * burst_s). The JPEG size is known only after encoding, and encoding is done only
//     for frames that go (it costs milliseconds on a camera CPU), so the byte bucket admits a frame
//     when its balance is >= 0 and is then charged the real size; it may go negative (a debt the
//     refill pays back), which keeps the long-run rate exact even for frames larger than the depth.
//  6. bursts: a frame sent by step 5 starts a burst, and the next burst_frames - 1 frames go too,
//     whatever their score and the buckets' balance (reason "burst"), so the learner gets runs of
//     consecutive frames to smooth its labels over (learner/refine.h: isolated frames gain almost
//     nothing). Each is charged to both buckets, which may go into debt; the refill pays it back
//     before the next burst starts, so the long-run rates stay max_fps and uplink_kbps. Step 4's
//     threshold is unchanged (the buckets, not the threshold, pace the bursts). A burst frame that
//     stays too large ends the burst.
//  Checks run in that order, so a frame counts in exactly one skipped_* counter: below the
//  threshold, then fps cap, then byte budget, then too large.
#ifndef KD_EDGE_FRAME_SELECTOR_H_
#define KD_EDGE_FRAME_SELECTOR_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "base/detection.h"
#include "base/status.h"
#include "media/frame.h"

namespace kd::edge {

struct SelectorOptions {
  // Budget.
  double uplink_kbps = 2000;  // JPEG payload budget, kilobits (1000 bits) per second; > 0
  double max_fps = 2;         // at most this many frames per second uploaded (long-run); > 0
  double burst_s = 2.0;       // depth of both token buckets, in seconds of budget (frames: at least 2); > 0
  int burst_frames = 1;       // frames per selection: a selected frame and the burst_frames - 1 after it; 1..64
  // Encoding.
  int jpeg_quality = 85;                    // [10, 100]
  int max_long_side = 768;                  // downscale (aspect kept) so the longer side is <= this; 0 = keep
  size_t max_jpeg_bytes = size_t{1} << 20;  // larger encodings are retried at lower quality (twice), then
                                            // skipped (stats.skipped_too_large); > 0
  // Keep-alive: send a frame at least this often even when nothing looks interesting, so the
  // learner keeps seeing the camera (and can notice drift the student is blind to); 0 = off.
  double keep_alive_s = 10;

  // Interest score.
  double uncertainty_weight = 1.0;        // >= 0
  double scene_change_weight = 1.0;       // >= 0
  float uncertain_low = 0.1f;             // ambiguous band of detection scores, 0 <= low < high <= 1;
  float uncertain_high = 0.7f;            //   keep low above the student's noise floor
  double uncertainty_saturation = 2.0;    // sum of bumps giving 1 - 1/e (~0.63) uncertainty; > 0
  double scene_change_saturation = 0.25;  // thumbnail mean |diff| (fraction of 255) that counts as a
                                          // full change; a cut between scenes is typically 0.15-0.4; > 0
  // Adaptive threshold.
  int threshold_window = 300;     // recent scores (frames) the quantile and the frame rate are taken over; >= 2
  double candidate_factor = 1.5;  // see policy step 4; >= 1
  double min_score = 0.05;        // frames below this are never "interesting" (only keep-alive sends
                                  // them), so a static, confident scene does not fill the budget; >= 0
};

struct Selection {
  bool send = false;
  double score = 0;  // the combined interest score (>= 0); goes into the wire header
  double uncertainty = 0, scene_change = 0;
  double threshold = 0;       // the adaptive threshold this frame was compared against
  std::vector<uint8_t> jpeg;  // set when send
  int width = 0, height = 0;  // of the JPEG (0 when not sent)
  int jpeg_quality = 0;       // quality actually used (may be below options.jpeg_quality after a retry)
  // Sent: "uncertain", "scene_change" (whichever weighted term is larger), "keep_alive", "burst".
  // Not sent: "below_threshold", "fps_cap", "budget", "too_large". Static strings.
  const char* reason = "";
};

struct SelectorStats {
  uint64_t offered = 0, selected = 0, skipped_budget = 0, skipped_fps = 0, skipped_threshold = 0, skipped_too_large = 0;
  uint64_t selected_keep_alive = 0;  // of `selected`, sent only because of keep-alive
  uint64_t selected_burst = 0;       // of `selected`, sent as the continuation of a burst
  uint64_t bytes_selected = 0;       // JPEG bytes of the selected frames
};

class FrameSelector {
 public:
  // InvalidArgument on options out of the documented ranges (NaN included).
  static Result<FrameSelector> Create(const SelectorOptions& options);

  // Decides on one frame. `detections`: the student's output for this frame (all decoded scores,
  // e.g. >= 0.05). now_us: a monotonic clock in microseconds (tests pass fake time); it drives the
  // buckets, keep-alive and the observed frame rate (a step backwards counts as no time passing).
  // Errors: an invalid frame -> InvalidArgument; a JPEG encoder failure -> Internal. A frame whose
  // JPEG stays above max_jpeg_bytes is not an error: send = false, reason "too_large".
  Result<Selection> Offer(const media::Frame& frame, const FrameDetections& detections, int64_t now_us);

  const SelectorStats& stats() const { return stats_; }
  const SelectorOptions& options() const { return options_; }

  // The uncertainty term alone (policy step 1), exposed for tests and diagnostics.
  static double Uncertainty(const FrameDetections& detections, const SelectorOptions& options);

 private:
  explicit FrameSelector(const SelectorOptions& options);
  void Refill(int64_t now_us);
  double Threshold() const;
  double FrameDepth() const;

  SelectorOptions options_;
  SelectorStats stats_;
  double frame_tokens_ = 0;  // frames; spent 1 per send
  double byte_tokens_ = 0;   // bytes; may go negative (see policy step 5)
  int64_t last_now_us_ = 0;
  bool have_now_ = false;
  int64_t last_sent_us_ = 0;
  bool sent_any_ = false;
  double mean_jpeg_bytes_ = 0;            // running mean (EMA) of sent JPEG sizes; 0 until the first send
  int burst_left_ = 0;                    // frames of the current burst still to send
  std::vector<uint8_t> last_sent_thumb_;  // grey, kThumbW x kThumbH; empty until the first send
  struct Scored {
    int64_t now_us;
    double score;
  };
  std::deque<Scored> window_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_FRAME_SELECTOR_H_
