#include "edge/capture.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "base/clock.h"

namespace kd::edge {
namespace {

using std::chrono::milliseconds;

// `count` grey frames (value 200), then the end; or, `fail_after` >= 0, Unavailable from then on.
class FakeSource final : public media::FrameSource {
 public:
  FakeSource(int count, media::SourceKind kind, int fail_after = -1)
      : count_(count), kind_(kind), fail_after_(fail_after) {}
  Result<std::optional<media::Frame>> Next() override {
    if (fail_after_ >= 0 && next_ >= fail_after_) return Status::Unavailable("camera gone");
    if (next_ >= count_) return std::optional<media::Frame>();
    media::Frame f;
    f.index = next_++;
    f.width = 8, f.height = 4;
    f.rgb.assign(8 * 4 * 3, 200);
    return std::optional<media::Frame>(std::move(f));
  }
  media::SourceInfo info() const override {
    media::SourceInfo i;
    i.kind = kind_;
    return i;
  }

 private:
  int count_, next_ = 0;
  media::SourceKind kind_;
  int fail_after_;
};

std::vector<media::Frame> Drain(BoundedQueue<media::Frame>& q) {
  std::vector<media::Frame> out;
  while (auto f = q.Pop(milliseconds(0))) out.push_back(std::move(*f));
  return out;
}

TEST(CaptureTest, ReplaysPassesWithTheirEffectsAndNumbersFramesAcrossPasses) {
  FakeClock clock;
  EdgeStats stats(clock);
  BoundedQueue<media::Frame> q(16);
  config::EdgeSourceOptions o;
  o.uri = "fake";
  o.loop = true;
  o.passes = 2;
  o.realtime = false;
  o.pass_effects = {"none", "dark:0.5"};
  int opens = 0;
  Capture capture(
      o,
      [&]() -> Result<std::unique_ptr<media::FrameSource>> {
        ++opens;
        return std::unique_ptr<media::FrameSource>(new FakeSource(3, media::SourceKind::kVideoFile));
      },
      std::make_unique<FakeSource>(3, media::SourceKind::kVideoFile), q, stats, clock);
  capture.Run();
  const auto frames = Drain(q);
  ASSERT_EQ(frames.size(), 6u);
  EXPECT_EQ(opens, 1);  // the first pass used the source opened at start
  for (size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].index, static_cast<int64_t>(i));
    EXPECT_EQ(frames[i].timestamp_us, clock.WallMicros());
  }
  EXPECT_EQ(frames[0].rgb[0], 200);  // pass 1: "none"
  EXPECT_EQ(frames[3].rgb[0], 100);  // pass 2: "dark:0.5"
  EXPECT_TRUE(q.closed_and_empty());
  EXPECT_EQ(stats.Snapshot().frames_captured, 6u);
  EXPECT_EQ(stats.Snapshot().frames_dropped, 0u);
}

TEST(CaptureTest, WithoutLoopOnePassThenTheQueueCloses) {
  FakeClock clock;
  EdgeStats stats(clock);
  BoundedQueue<media::Frame> q(16);
  config::EdgeSourceOptions o;
  o.uri = "fake";
  o.realtime = false;
  Capture capture(
      o, []() -> Result<std::unique_ptr<media::FrameSource>> { return Status::NotFound("not again"); },
      std::make_unique<FakeSource>(2, media::SourceKind::kVideoFile), q, stats, clock);
  capture.Run();
  EXPECT_EQ(Drain(q).size(), 2u);
  EXPECT_TRUE(q.closed_and_empty());
}

TEST(CaptureTest, ALiveSourceDropsTheOldestWhenInferenceIsBehind) {
  FakeClock clock;
  EdgeStats stats(clock);
  BoundedQueue<media::Frame> q(2);
  config::EdgeSourceOptions o;
  o.uri = "fake";
  o.realtime = true;
  o.fps = 1000;  // 1 ms apart
  Capture capture(
      o, []() -> Result<std::unique_ptr<media::FrameSource>> { return Status::NotFound("not again"); },
      std::make_unique<FakeSource>(5, media::SourceKind::kStream), q, stats, clock);
  capture.Run();  // nobody pops: a live source must not block
  const auto frames = Drain(q);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].index, 3);
  EXPECT_EQ(frames[1].index, 4);
  EXPECT_EQ(stats.Snapshot().frames_captured, 5u);
  EXPECT_EQ(stats.Snapshot().frames_dropped, 3u);
}

TEST(CaptureTest, ALiveSourceThatFailsIsReopened) {
  FakeClock clock;
  EdgeStats stats(clock);
  BoundedQueue<media::Frame> q(16);
  config::EdgeSourceOptions o;
  o.uri = "fake";
  o.realtime = true;
  o.fps = 1000;
  int opens = 0;
  Capture capture(
      o,
      [&]() -> Result<std::unique_ptr<media::FrameSource>> {
        ++opens;
        return std::unique_ptr<media::FrameSource>(new FakeSource(2, media::SourceKind::kStream));
      },
      std::make_unique<FakeSource>(5, media::SourceKind::kStream, /*fail_after=*/1), q, stats, clock);
  capture.Run();  // 1 frame, a failure, a reopen, 2 frames, the end
  EXPECT_EQ(opens, 1);
  const auto frames = Drain(q);
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[2].index, 2);  // numbering continues across the reconnect
}

TEST(CaptureTest, StopEndsABlockedCapture) {
  FakeClock clock;
  EdgeStats stats(clock);
  BoundedQueue<media::Frame> q(1);
  config::EdgeSourceOptions o;
  o.uri = "fake";
  o.realtime = false;  // blocks on the full queue
  Capture capture(
      o, []() -> Result<std::unique_ptr<media::FrameSource>> { return Status::NotFound("not again"); },
      std::make_unique<FakeSource>(1000, media::SourceKind::kVideoFile), q, stats, clock);
  capture.Start();
  while (stats.Snapshot().frames_captured < 2) std::this_thread::sleep_for(milliseconds(1));
  capture.Stop();  // returns: the blocked push is woken by the close
  EXPECT_LT(stats.Snapshot().frames_captured, 1000u);
  EXPECT_EQ(q.Pop(milliseconds(0))->index, 0);
}

TEST(CaptureTest, PassEffects) {
  media::Frame f;
  f.width = 2, f.height = 1;
  f.rgb.assign(6, 100);
  config::PassEffect bright;
  bright.kind = config::PassEffect::Kind::kBright;
  bright.factor = 2;
  EXPECT_EQ(ApplyPassEffect(f, bright).rgb[0], 200);
  EXPECT_EQ(ApplyPassEffect(f, config::PassEffect{}).rgb, f.rgb);
}

}  // namespace
}  // namespace kd::edge
