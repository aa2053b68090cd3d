#include "base/clock.h"

#include <gtest/gtest.h>

#include "base/log.h"

namespace kd {
namespace {

TEST(ClockTest, FakeClockDrivesStopwatch) {
  FakeClock clock;
  Stopwatch sw(clock);
  clock.AdvanceNanos(1'500'000'000);
  EXPECT_DOUBLE_EQ(sw.ElapsedSeconds(), 1.5);
}

TEST(ClockTest, SystemClockIsMonotonic) {
  const Clock& c = SystemClock::Get();
  int64_t a = c.MonotonicNanos();
  int64_t b = c.MonotonicNanos();
  EXPECT_LE(a, b);
  EXPECT_GT(c.WallMicros(), 1'600'000'000'000'000);
}

TEST(LogTest, LevelsParseAndFilter) {
  LogLevel l;
  EXPECT_TRUE(ParseLogLevel("warn", &l));
  EXPECT_EQ(l, LogLevel::kWarn);
  EXPECT_FALSE(ParseLogLevel("loud", &l));
  LogLevel old = GetLogLevel();
  SetLogLevel(LogLevel::kError);
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
  KD_LOG(kError) << "a log line from the test " << 42;
  SetLogLevel(old);
}

}  // namespace
}  // namespace kd
