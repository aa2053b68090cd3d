// Probation: whether a model on trial may be committed, must be rolled back, or needs more time.
//
// The inference stage records each frame (a trial frame's latency and finiteness, a run-time
// error, or a committed model's latency, which sets the baseline); the updater calls Decide() on
// each turn of its loop and acts on the verdict (slots, model swap, report). Pure logic: no
// sockets, no files; time comes from the injected Clock, so tests drive it with a FakeClock.
// Ownership: the agent owns it; the clock is borrowed and must outlive it. Threading: thread-safe
// (one small lock over the counters).
#ifndef KD_EDGE_PROBATION_H_
#define KD_EDGE_PROBATION_H_

#include <cstdint>
#include <mutex>
#include <string>

#include "base/clock.h"

namespace kd::edge {

struct ProbationOptions {
  uint64_t frames = 100;         // trial frames needed before a commit (update.probation_frames)
  double seconds = 10;           // and at least this long since Start, s (update.probation_seconds)
  double max_latency_ratio = 3;  // a trial slower than ratio x baseline + 1 ms fails (update.max_latency_ratio)
};

class Probation {
 public:
  // The latency check needs this many trial frames (a few slow first runs are not a verdict).
  static constexpr uint64_t kLatencyMinFrames = 10;
  // Slack added to ratio x baseline, ms: tiny models would otherwise fail on timer noise.
  static constexpr double kLatencySlackMs = 1.0;
  // Weight of a new committed-model frame in the baseline's moving average.
  static constexpr double kBaselineWeight = 0.05;

  enum class Verdict { kWait, kCommit, kRollBack };
  struct Decision {
    Verdict verdict = Verdict::kWait;
    std::string reason;   // kRollBack: why, for logs and the report
    uint64_t frames = 0;  // trial frames seen
  };

  Probation(const ProbationOptions& options, const Clock& clock) : options_(options), clock_(clock) {}
  Probation(const Probation&) = delete;
  Probation& operator=(const Probation&) = delete;

  // A trial starts now: the trial counters are reset (the baseline is kept).
  void Start();
  // One frame of the model on trial: `ms` its latency, `finite` whether all outputs were finite.
  void OnTrialFrame(double ms, bool finite);
  // A frame the model on trial failed to run; the first error is kept for the report.
  void OnTrialError(const std::string& error);
  // One frame of a committed model: updates the latency baseline.
  void OnCommittedFrame(double ms);

  // Roll back on any non-finite frame, any run-time error, or latency over the limit (after
  // kLatencyMinFrames); commit after `frames` trial frames and `seconds` since Start; else wait.
  Decision Decide() const;

 private:
  const ProbationOptions options_;
  const Clock& clock_;
  mutable std::mutex mu_;
  uint64_t frames_ = 0, nonfinite_ = 0, errors_ = 0;
  std::string first_error_;
  double ms_sum_ = 0, baseline_ms_ = 0;
  int64_t started_ns_ = 0;
};

}  // namespace kd::edge

#endif  // KD_EDGE_PROBATION_H_
