// IngestPressure: whether the learner is storing a flood of frames (cameras draining their
// backlogs after an outage), so that the background stages step aside until it has passed.
//
// Why: on a CPU learner the teacher and the trainer take every core they are given. At nice 10 the
// labeller still held about half a core beside 32 edges (its threads run whenever an ingest thread
// waits on a hand-off), and ingest acknowledged 26-29 % fewer frames/s than with the labeller
// stopped (paired means, RESULTS.md, twentieth stop). Under SCHED_IDLE a LibTorch team stalls whenever any thread
// wakes, which halved live learning (seventeenth stop). So the policy lives here instead: while
// ingest stores more than `busy_fps` frames/s (over the last second), the labeller waits before its
// next teacher forward and the trainer before its next step. A camera fleet's budgeted uploads stay
// far below the threshold (uplink.max_fps is 2 per camera by default), so a quiet loop never waits;
// a backlog is stored and acknowledged at the machine's speed (the edges free their buffers) and
// labelled once it has drained. One wait lasts at most `max_pause`, then one unit of work runs: a
// flood that never ends slows learning but cannot stop it.
//
// Ownership: LoopState holds one; the clock outlives it.
// Threading: all methods are thread-safe (the ingest thread records, the labeller and trainer
// threads wait; one mutex, never held across a sleep).
#ifndef KD_LEARNER_INGEST_PRESSURE_H_
#define KD_LEARNER_INGEST_PRESSURE_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>

#include "base/clock.h"

namespace kd::learner {

class IngestPressure {
 public:
  struct Options {
    double busy_fps = 0;                    // frames/s stored above which the background waits; 0 = never
    std::chrono::milliseconds max_pause{};  // longest single wait (the learner: training.yield_max_s)
  };
  using Sleep = std::function<void(std::chrono::milliseconds)>;

  // `sleep` defaults to std::this_thread::sleep_for (tests pass one that advances a FakeClock).
  IngestPressure(const Clock& clock, Options options, Sleep sleep = {});

  // `frames` were stored just now (called by the ingest stage after each write).
  void Stored(uint64_t frames);
  // Frames stored over the last second, per second.
  double FramesPerSecond() const;
  // Whether the background stages should wait now.
  bool Busy() const;

  // Waits while Busy(), in slices of kSlice, calling `tick` after each (a stage's heartbeat), until
  // the flood passes, `stopping` is set or max_pause has gone by. Returns the seconds waited.
  double PauseWhileBusy(const std::atomic<bool>& stopping, const std::function<void()>& tick = {});

  // Seconds the background stages have waited in all (a wait in progress included, to a slice).
  double paused_seconds() const;

  static constexpr std::chrono::milliseconds kSlice{50};

 private:
  // Ten buckets of 100 ms: counts by bucket number (monotonic ms / 100), so a bucket left from a
  // second ago is recognised as stale and not counted.
  static constexpr int kBuckets = 10;
  static constexpr int64_t kBucketNanos = 100'000'000;
  struct Bucket {
    int64_t number = -1;
    uint64_t frames = 0;
  };

  const Clock& clock_;
  const Options options_;
  const Sleep sleep_;
  mutable std::mutex mu_;  // guards buckets_ and paused_nanos_
  std::array<Bucket, kBuckets> buckets_{};
  int64_t paused_nanos_ = 0;
};

}  // namespace kd::learner

#endif  // KD_LEARNER_INGEST_PRESSURE_H_
