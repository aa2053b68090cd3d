// Clock: the one place time enters the program, so tests can drive it (FakeClock).
// SystemClock is stateless and thread-safe; FakeClock is thread-safe (atomic).
#ifndef KD_BASE_CLOCK_H_
#define KD_BASE_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace kd {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time in nanoseconds (for durations and deadlines).
  virtual int64_t MonotonicNanos() const = 0;
  // Wall-clock time in microseconds since the Unix epoch (for timestamps that leave the process).
  virtual int64_t WallMicros() const = 0;

  double MonotonicSeconds() const { return static_cast<double>(MonotonicNanos()) * 1e-9; }
};

class SystemClock final : public Clock {
 public:
  int64_t MonotonicNanos() const override;
  int64_t WallMicros() const override;
  // A process-wide instance (stateless, so sharing it is safe).
  static const SystemClock& Get();
};

class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_nanos = 0) : nanos_(start_nanos) {}
  int64_t MonotonicNanos() const override { return nanos_.load(); }
  int64_t WallMicros() const override { return 1'700'000'000'000'000 + nanos_.load() / 1000; }
  void AdvanceNanos(int64_t d) { nanos_ += d; }

 private:
  std::atomic<int64_t> nanos_;
};

// Measures elapsed time on a Clock.
class Stopwatch {
 public:
  explicit Stopwatch(const Clock& clock = SystemClock::Get()) : clock_(clock), start_(clock.MonotonicNanos()) {}
  double ElapsedSeconds() const { return static_cast<double>(clock_.MonotonicNanos() - start_) * 1e-9; }
  double ElapsedMillis() const { return static_cast<double>(clock_.MonotonicNanos() - start_) * 1e-6; }
  void Reset() { start_ = clock_.MonotonicNanos(); }

 private:
  const Clock& clock_;
  int64_t start_;
};

}  // namespace kd

#endif  // KD_BASE_CLOCK_H_
