// The inference stage on tiny random students (no assets): every frame is inferred and written,
// a staged model is swapped in between frames, probation and the counters hear about each frame.
#include "edge/infer.h"

#include <memory>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/clock.h"
#include "edge/running_model.h"
#include "tests/update/test_util.h"

namespace kd::edge {
namespace {

std::shared_ptr<const RunningModel> Tiny(uint64_t version, bool trial) {
  torch::manual_seed(version);
  model::Student s(update::testing::TinyOptions());
  s->eval();
  auto m = BuildRunningModel(*s, version, trial);
  EXPECT_TRUE(m.ok());
  return *m;
}

media::Frame Frame(int64_t index) {
  media::Frame f;
  f.index = index;
  f.timestamp_us = 1000 * index;
  f.width = 96, f.height = 64;
  f.rgb.assign(96 * 64 * 3, static_cast<uint8_t>(40 * index));
  return f;
}

TEST(InferTest, InfersEveryFrameSwapsBetweenFramesAndEndsWithItsInput) {
  FakeClock clock;
  EdgeStats stats(clock);
  ProbationOptions po;
  po.frames = 1000;
  Probation probation(po, clock);
  LatestFrame latest;
  BoundedQueue<media::Frame> in(8);
  BoundedQueue<PendingFrame> out(64);
  const auto v1 = Tiny(1, false);
  ModelHolder models(v1, v1);
  auto picker = UploadPicker::Create(config::EdgeUplinkOptions{}, clock);
  ASSERT_TRUE(picker.ok());
  std::ostringstream lines;
  Infer infer(/*score_threshold=*/0.0, in, out, std::move(picker).value(), models, probation, stats, latest, &lines,
              clock);

  models.Stage(Tiny(2, true));  // staged before the first frame: runs from the first frame on
  probation.Start();
  for (int64_t i = 0; i < 4; ++i) in.Push(Frame(i), /*block=*/true);
  in.Close();
  infer.Run();

  std::istringstream read(lines.str());
  std::string line;
  int n = 0;
  while (std::getline(read, line)) {
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j["frame"], n);
    EXPECT_EQ(j["timestamp_us"], 1000 * n);
    EXPECT_EQ(j["model_version"], 2);
    ++n;
  }
  EXPECT_EQ(n, 4);
  EXPECT_TRUE(infer.WaitDone(std::chrono::milliseconds(0)));
  while (out.Pop(std::chrono::milliseconds(0))) {
  }
  EXPECT_TRUE(out.closed_and_empty());  // the uplink's input is closed behind the last frame
  const EdgeCounters c = stats.Snapshot();
  EXPECT_EQ(c.frames_inferred, 4u);
  EXPECT_EQ(c.running_version, 2u);
  EXPECT_TRUE(c.source_done);
  EXPECT_EQ(c.inference_errors, 0u);
  EXPECT_EQ(probation.Decide().frames, 4u);  // the trial's frames were counted
  ASSERT_TRUE(latest.Get().has_value());
  EXPECT_EQ(latest.Get()->index, 0);  // the first frame, until the 32nd
}

TEST(InferTest, SelectedFramesBecomePendingUploads) {
  FakeClock clock(1'000'000'000);
  EdgeStats stats(clock);
  Probation probation(ProbationOptions{}, clock);
  LatestFrame latest;
  BoundedQueue<media::Frame> in(8);
  BoundedQueue<PendingFrame> out(64);
  const auto v1 = Tiny(1, false);
  ModelHolder models(v1, v1);
  auto picker = UploadPicker::Create(config::EdgeUplinkOptions{}, clock);
  ASSERT_TRUE(picker.ok());
  Infer infer(0.3, in, out, std::move(picker).value(), models, probation, stats, latest, nullptr, clock);
  in.Push(Frame(0), true);
  in.Close();
  infer.Run();
  // The first frame is always sent (nothing sent yet: keep-alive), as a JPEG with a wall-clock seq.
  auto p = out.Pop(std::chrono::milliseconds(0));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->seq, static_cast<uint64_t>(clock.WallMicros()));
  EXPECT_GT(p->jpeg.size(), 0u);
  EXPECT_EQ(stats.Snapshot().frames_selected, 1u);
}

}  // namespace
}  // namespace kd::edge
