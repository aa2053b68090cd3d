#include "edge/probation.h"

namespace kd::edge {

void Probation::Start() {
  std::lock_guard lock(mu_);
  frames_ = 0, nonfinite_ = 0, errors_ = 0, ms_sum_ = 0;
  first_error_.clear();
  started_ns_ = clock_.MonotonicNanos();
}

void Probation::OnTrialFrame(double ms, bool finite) {
  std::lock_guard lock(mu_);
  ++frames_;
  ms_sum_ += ms;
  if (!finite) ++nonfinite_;
}

void Probation::OnTrialError(const std::string& error) {
  std::lock_guard lock(mu_);
  if (errors_++ == 0) first_error_ = error;
}

void Probation::OnCommittedFrame(double ms) {
  std::lock_guard lock(mu_);
  baseline_ms_ = baseline_ms_ == 0 ? ms : (1 - kBaselineWeight) * baseline_ms_ + kBaselineWeight * ms;
}

Probation::Decision Probation::Decide() const {
  const int64_t now = clock_.MonotonicNanos();
  std::lock_guard lock(mu_);
  Decision d;
  d.frames = frames_;
  const double mean_ms = frames_ ? ms_sum_ / static_cast<double>(frames_) : 0;
  // The last failure found is the one reported (latency over errors over non-finite outputs).
  if (nonfinite_ > 0) d.reason = std::to_string(nonfinite_) + " frames with non-finite outputs";
  if (errors_ > 0) d.reason = std::to_string(errors_) + " frames failed to run (" + first_error_ + ")";
  if (frames_ >= kLatencyMinFrames && baseline_ms_ > 0 &&
      mean_ms > options_.max_latency_ratio * baseline_ms_ + kLatencySlackMs) {
    d.reason = "inference " + std::to_string(mean_ms) + " ms vs " + std::to_string(baseline_ms_) + " ms before";
  }
  if (!d.reason.empty()) {
    d.verdict = Verdict::kRollBack;
  } else if (frames_ >= options_.frames && static_cast<double>(now - started_ns_) >= options_.seconds * 1e9) {
    d.verdict = Verdict::kCommit;
  }
  return d;
}

}  // namespace kd::edge
