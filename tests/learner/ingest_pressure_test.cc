#include "learner/ingest_pressure.h"

#include <cmath>

#include <gtest/gtest.h>

namespace kd::learner {
namespace {
using std::chrono::milliseconds;

// A pressure on a FakeClock whose sleeps advance the clock (and can make frames arrive meanwhile).
struct PressureFixture {
  FakeClock clock;
  std::function<void()> during_sleep;
  IngestPressure pressure{clock, {.busy_fps = 100, .max_pause = milliseconds(2000)}, [this](milliseconds d) {
                            clock.AdvanceNanos(std::chrono::nanoseconds(d).count());
                            if (during_sleep) during_sleep();
                          }};
  void Advance(milliseconds d) { clock.AdvanceNanos(std::chrono::nanoseconds(d).count()); }
};

TEST(IngestPressureTest, TheRateIsWhatWasStoredOverTheLastSecond) {
  PressureFixture f;
  EXPECT_EQ(f.pressure.FramesPerSecond(), 0);
  for (int i = 0; i < 10; ++i) {
    f.pressure.Stored(15);  // 150 frames/s in 100-ms steps
    f.Advance(milliseconds(100));
  }
  EXPECT_NEAR(f.pressure.FramesPerSecond(), 135, 1e-9);  // the oldest bucket has just left the window
  EXPECT_TRUE(f.pressure.Busy());
  f.Advance(milliseconds(500));
  EXPECT_NEAR(f.pressure.FramesPerSecond(), 60, 1e-9);
  EXPECT_FALSE(f.pressure.Busy());
  f.Advance(milliseconds(5000));  // stale buckets are not counted, though nothing overwrote them
  EXPECT_EQ(f.pressure.FramesPerSecond(), 0);
}

TEST(IngestPressureTest, AQuietLoopNeverWaits) {
  PressureFixture f;
  f.pressure.Stored(20);  // a few cameras' bursts: below 100 frames/s
  std::atomic<bool> stopping{false};
  int ticks = 0;
  EXPECT_EQ(f.pressure.PauseWhileBusy(stopping, [&] { ++ticks; }), 0);
  EXPECT_EQ(ticks, 0);
  EXPECT_EQ(f.pressure.paused_seconds(), 0);
}

TEST(IngestPressureTest, AWaitEndsWhenTheFloodPasses) {
  PressureFixture f;
  f.pressure.Stored(500);  // a backlog drains: 500 frames in 100 ms, then nothing
  std::atomic<bool> stopping{false};
  int ticks = 0;
  const double waited = f.pressure.PauseWhileBusy(stopping, [&] { ++ticks; });
  // Busy until the bucket leaves the one-second window.
  EXPECT_NEAR(waited, 1.0, 0.051);
  EXPECT_EQ(ticks, static_cast<int>(std::lround(waited / 0.05)));  // a heartbeat per slice
  EXPECT_NEAR(f.pressure.paused_seconds(), waited, 1e-9);
}

TEST(IngestPressureTest, AFloodThatNeverEndsIsWaitedOutAtMostMaxPauseAtATime) {
  PressureFixture f;
  f.during_sleep = [&] { f.pressure.Stored(50); };  // 1,000 frames/s for ever
  f.pressure.Stored(150);
  std::atomic<bool> stopping{false};
  EXPECT_NEAR(f.pressure.PauseWhileBusy(stopping), 2.0, 1e-9);
  EXPECT_TRUE(f.pressure.Busy());
  EXPECT_NEAR(f.pressure.PauseWhileBusy(stopping), 2.0, 1e-9);  // the next unit of work ran in between
  EXPECT_NEAR(f.pressure.paused_seconds(), 4.0, 1e-9);
}

TEST(IngestPressureTest, StoppingEndsAWait) {
  PressureFixture f;
  std::atomic<bool> stopping{false};
  f.during_sleep = [&] {
    f.pressure.Stored(50);
    stopping = true;
  };
  f.pressure.Stored(500);
  EXPECT_NEAR(f.pressure.PauseWhileBusy(stopping), 0.05, 1e-9);  // one slice
}

TEST(IngestPressureTest, ZeroMeansNeverWait) {
  FakeClock clock;
  IngestPressure off(clock, {.busy_fps = 0, .max_pause = milliseconds(2000)}, [](milliseconds) { FAIL(); });
  off.Stored(100000);
  EXPECT_FALSE(off.Busy());
  std::atomic<bool> stopping{false};
  EXPECT_EQ(off.PauseWhileBusy(stopping), 0);
}

}  // namespace
}  // namespace kd::learner
