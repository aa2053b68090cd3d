#include "learner/ingest_pressure.h"

#include <thread>
#include <utility>

namespace kd::learner {

IngestPressure::IngestPressure(const Clock& clock, Options options, Sleep sleep)
    : clock_(clock),
      options_(options),
      sleep_(sleep ? std::move(sleep) : Sleep([](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); })) {}

void IngestPressure::Stored(uint64_t frames) {
  if (frames == 0) return;
  const int64_t number = clock_.MonotonicNanos() / kBucketNanos;
  std::lock_guard lock(mu_);
  Bucket& b = buckets_[static_cast<size_t>(number % kBuckets)];
  if (b.number != number) b = {.number = number, .frames = 0};
  b.frames += frames;
}

double IngestPressure::FramesPerSecond() const {
  const int64_t now = clock_.MonotonicNanos() / kBucketNanos;
  uint64_t frames = 0;
  std::lock_guard lock(mu_);
  // The current bucket and the nine before it: the last 0.9-1.0 s.
  for (const Bucket& b : buckets_) {
    if (b.number > now - kBuckets && b.number <= now) frames += b.frames;
  }
  return static_cast<double>(frames) * 1e9 / static_cast<double>(kBuckets * kBucketNanos);
}

bool IngestPressure::Busy() const { return options_.busy_fps > 0 && FramesPerSecond() > options_.busy_fps; }

double IngestPressure::PauseWhileBusy(const std::atomic<bool>& stopping, const std::function<void()>& tick) {
  const int64_t start = clock_.MonotonicNanos();
  const int64_t limit = std::chrono::nanoseconds(options_.max_pause).count();
  int64_t last = start;
  while (!stopping && Busy() && last - start < limit) {
    sleep_(kSlice);
    const int64_t now = clock_.MonotonicNanos();
    {
      std::lock_guard lock(mu_);
      paused_nanos_ += now - last;  // per slice, so a wait in progress shows in paused_seconds()
    }
    last = now;
    if (tick) tick();
  }
  return static_cast<double>(last - start) * 1e-9;
}

double IngestPressure::paused_seconds() const {
  std::lock_guard lock(mu_);
  return static_cast<double>(paused_nanos_) * 1e-9;
}

}  // namespace kd::learner
