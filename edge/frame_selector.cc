#include "edge/frame_selector.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>

#include "media/image_ops.h"

namespace kd::edge {
namespace {

// Thumbnail for scene change: small enough to ignore sensor noise and JPEG-level detail and to cost
// microseconds, large enough to see an object entering or the light changing. 4:3 like most cameras.
constexpr int kThumbW = 32;
constexpr int kThumbH = 24;

// Weight of the newest JPEG size in the running mean used to turn the byte budget into frames/s.
constexpr double kJpegSizeEmaAlpha = 0.1;

// Frame tokens accumulate in steps of max_fps * dt; allow for rounding so that 15 steps of 2/30
// count as one whole frame.
constexpr double kTokenEpsilon = 1e-9;

std::vector<uint8_t> GreyThumbnail(const media::Frame& frame) {
  const media::Frame small = media::ResizeRgb(frame, kThumbW, kThumbH);
  std::vector<uint8_t> grey(static_cast<size_t>(kThumbW * kThumbH));
  for (size_t i = 0; i < grey.size(); ++i) {
    const uint8_t* p = &small.rgb[i * 3];
    // ITU-R BT.601 luma, integer weights summing to 256.
    grey[i] = static_cast<uint8_t>((77 * p[0] + 150 * p[1] + 29 * p[2]) >> 8);
  }
  return grey;
}

// Mean |a - b| / 255, in [0, 1].
double MeanAbsDiff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  uint64_t sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += static_cast<uint64_t>(std::abs(int{a[i]} - int{b[i]}));
  return static_cast<double>(sum) / (255.0 * static_cast<double>(a.size()));
}

// Qualities tried in order: the configured one, halfway to 10, then 10. Three encodes at most, so
// an oversized scene costs bounded time; duplicates (quality already near 10) are skipped.
std::vector<int> QualityLadder(int quality) {
  std::vector<int> q = {quality};
  for (int next : {(quality + 10) / 2, 10}) {
    if (next < q.back()) q.push_back(next);
  }
  return q;
}

}  // namespace

Result<FrameSelector> FrameSelector::Create(const SelectorOptions& o) {
  // Comparisons are written so that NaN fails them.
  auto bad = [](const std::string& what) { return Status::InvalidArgument("SelectorOptions: " + what); };
  if (!(o.uplink_kbps > 0) || !std::isfinite(o.uplink_kbps)) return bad("uplink_kbps must be finite and > 0");
  if (!(o.max_fps > 0) || !std::isfinite(o.max_fps)) return bad("max_fps must be finite and > 0");
  if (!(o.burst_s > 0) || !std::isfinite(o.burst_s)) return bad("burst_s must be finite and > 0");
  if (o.jpeg_quality < 10 || o.jpeg_quality > 100) return bad("jpeg_quality must be in [10, 100]");
  if (o.max_long_side < 0) return bad("max_long_side must be >= 0 (0 = keep)");
  if (o.max_jpeg_bytes == 0) return bad("max_jpeg_bytes must be > 0");
  if (o.burst_frames < 1 || o.burst_frames > 64) return bad("burst_frames must be in [1, 64]");
  if (!(o.keep_alive_s >= 0) || !std::isfinite(o.keep_alive_s)) return bad("keep_alive_s must be finite and >= 0");
  if (!(o.uncertainty_weight >= 0) || !std::isfinite(o.uncertainty_weight)) {
    return bad("uncertainty_weight must be finite and >= 0");
  }
  if (!(o.scene_change_weight >= 0) || !std::isfinite(o.scene_change_weight)) {
    return bad("scene_change_weight must be finite and >= 0");
  }
  if (!(o.uncertain_low >= 0 && o.uncertain_low < o.uncertain_high && o.uncertain_high <= 1)) {
    return bad("need 0 <= uncertain_low < uncertain_high <= 1");
  }
  if (!(o.uncertainty_saturation > 0)) return bad("uncertainty_saturation must be > 0");
  if (!(o.scene_change_saturation > 0)) return bad("scene_change_saturation must be > 0");
  if (o.threshold_window < 2) return bad("threshold_window must be >= 2");
  if (!(o.candidate_factor >= 1) || !std::isfinite(o.candidate_factor)) {
    return bad("candidate_factor must be finite and >= 1");
  }
  if (!(o.min_score >= 0) || !std::isfinite(o.min_score)) return bad("min_score must be finite and >= 0");
  return FrameSelector(o);
}

FrameSelector::FrameSelector(const SelectorOptions& options) : options_(options) {
  // Start with full buckets: the first interesting frames go without waiting for a refill.
  frame_tokens_ = FrameDepth();
  byte_tokens_ = options_.uplink_kbps * 125.0 * options_.burst_s;
}

double FrameSelector::FrameDepth() const {
  // At least 2: with a depth of 1 the bucket is full, and refill is wasted, whenever a token waits
  // for the next interesting frame, so the long-run rate falls well below max_fps.
  return std::max(2.0, options_.max_fps * options_.burst_s);
}

double FrameSelector::Uncertainty(const FrameDetections& detections, const SelectorOptions& options) {
  const double lo = options.uncertain_low, hi = options.uncertain_high;
  double sum = 0;
  for (const Detection& d : detections.detections) {
    const double s = d.score;
    if (!(s >= lo && s <= hi)) continue;  // also skips NaN scores
    const double u = (s - lo) / (hi - lo);
    sum += 4.0 * u * (1.0 - u);
  }
  return 1.0 - std::exp(-sum / options.uncertainty_saturation);
}

void FrameSelector::Refill(int64_t now_us) {
  if (!have_now_) {
    have_now_ = true;
    last_now_us_ = now_us;
    return;
  }
  if (now_us <= last_now_us_) return;  // no time passed (or the clock stepped back: ignore it)
  const double dt_s = static_cast<double>(now_us - last_now_us_) * 1e-6;
  last_now_us_ = now_us;
  frame_tokens_ = std::min(frame_tokens_ + options_.max_fps * dt_s, FrameDepth());
  const double byte_rate = options_.uplink_kbps * 125.0;  // kbit/s -> bytes/s
  byte_tokens_ = std::min(byte_tokens_ + byte_rate * dt_s, byte_rate * options_.burst_s);
}

double FrameSelector::Threshold() const {
  const size_t n = window_.size();
  if (n < 2) return options_.min_score;
  const int64_t span_us = window_.back().now_us - window_.front().now_us;
  if (span_us <= 0) return options_.min_score;
  const double observed_fps = static_cast<double>(n - 1) * 1e6 / static_cast<double>(span_us);
  double target_fps = options_.max_fps;
  if (mean_jpeg_bytes_ > 0) target_fps = std::min(target_fps, options_.uplink_kbps * 125.0 / mean_jpeg_bytes_);
  // Not divided by burst_frames: with the buckets in debt after each burst, a threshold that
  // admitted only one candidate per burst left a fifth of the budget unspent (measured in
  // FrameSelectorTest.BurstsAreRunsOfConsecutiveFramesWithinTheBudget); the buckets pace bursts.
  const double fraction = options_.candidate_factor * target_fps / observed_fps;
  if (fraction >= 1) return options_.min_score;
  // The k-th largest score, k = ceil(fraction * n) >= 1: about `fraction` of the window is >= it.
  const size_t k = std::clamp<size_t>(static_cast<size_t>(std::ceil(fraction * static_cast<double>(n))), 1, n);
  std::vector<double> scores;
  scores.reserve(n);
  for (const Scored& s : window_) scores.push_back(s.score);
  const auto nth = scores.begin() + static_cast<std::ptrdiff_t>(n - k);
  std::nth_element(scores.begin(), nth, scores.end());
  return std::max(options_.min_score, *nth);
}

Result<Selection> FrameSelector::Offer(const media::Frame& frame, const FrameDetections& detections, int64_t now_us) {
  if (!frame.valid()) {
    return Status::InvalidArgument("FrameSelector::Offer: invalid frame " + std::to_string(frame.width) + "x" +
                                   std::to_string(frame.height) + " with " + std::to_string(frame.rgb.size()) +
                                   " bytes");
  }
  Refill(now_us);
  now_us = last_now_us_;  // monotonic from here on
  ++stats_.offered;

  Selection sel;
  sel.uncertainty = Uncertainty(detections, options_);
  std::vector<uint8_t> thumb = GreyThumbnail(frame);
  sel.scene_change = last_sent_thumb_.empty()
                         ? 1.0
                         : std::min(1.0, MeanAbsDiff(thumb, last_sent_thumb_) / options_.scene_change_saturation);
  const double unc_term = options_.uncertainty_weight * sel.uncertainty;
  const double scene_term = options_.scene_change_weight * sel.scene_change;
  sel.score = unc_term + scene_term;

  window_.push_back({now_us, sel.score});
  while (window_.size() > static_cast<size_t>(options_.threshold_window)) window_.pop_front();
  sel.threshold = Threshold();

  const bool in_burst = burst_left_ > 0;
  if (in_burst) --burst_left_;
  const bool interesting = sel.score >= sel.threshold;
  const bool keep_alive_due = options_.keep_alive_s > 0 && (!sent_any_ || static_cast<double>(now_us - last_sent_us_) >=
                                                                              options_.keep_alive_s * 1e6);
  // A burst's frames go whatever their score and the buckets' balance (policy step 6).
  if (!in_burst) {
    if (!interesting && !keep_alive_due) {
      sel.reason = "below_threshold";
      ++stats_.skipped_threshold;
      return sel;
    }
    if (frame_tokens_ < 1.0 - kTokenEpsilon) {
      sel.reason = "fps_cap";
      ++stats_.skipped_fps;
      return sel;
    }
    if (byte_tokens_ < 0) {
      sel.reason = "budget";
      ++stats_.skipped_budget;
      return sel;
    }
  }

  // Encode only now that the frame goes.
  media::Frame scaled;
  const media::Frame* to_encode = &frame;
  if (options_.max_long_side > 0 && std::max(frame.width, frame.height) > options_.max_long_side) {
    const auto [w, h] = media::FitSize(frame.width, frame.height, options_.max_long_side, 1);
    scaled = media::ResizeRgb(frame, w, h);
    to_encode = &scaled;
  }
  for (int quality : QualityLadder(options_.jpeg_quality)) {
    KD_ASSIGN_OR_RETURN(std::vector<uint8_t> jpeg, media::EncodeJpeg(*to_encode, quality));
    if (jpeg.size() <= options_.max_jpeg_bytes) {
      sel.jpeg = std::move(jpeg);
      sel.jpeg_quality = quality;
      break;
    }
  }
  if (sel.jpeg.empty()) {
    sel.reason = "too_large";
    ++stats_.skipped_too_large;
    burst_left_ = 0;  // a run with a hole is no longer consecutive
    return sel;
  }

  sel.send = true;
  sel.width = to_encode->width;
  sel.height = to_encode->height;
  frame_tokens_ -= 1.0;
  byte_tokens_ -= static_cast<double>(sel.jpeg.size());
  mean_jpeg_bytes_ = mean_jpeg_bytes_ == 0 ? static_cast<double>(sel.jpeg.size())
                                           : (1 - kJpegSizeEmaAlpha) * mean_jpeg_bytes_ +
                                                 kJpegSizeEmaAlpha * static_cast<double>(sel.jpeg.size());
  last_sent_thumb_ = std::move(thumb);
  last_sent_us_ = now_us;
  sent_any_ = true;
  ++stats_.selected;
  stats_.bytes_selected += sel.jpeg.size();
  if (in_burst) {
    sel.reason = "burst";
    ++stats_.selected_burst;
    return sel;
  }
  burst_left_ = options_.burst_frames - 1;
  if (!interesting) {
    sel.reason = "keep_alive";
    ++stats_.selected_keep_alive;
  } else {
    sel.reason = scene_term >= unc_term ? "scene_change" : "uncertain";
  }
  return sel;
}

}  // namespace kd::edge
