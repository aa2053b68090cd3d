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
#include "tests/edge/tiny_model.h"

namespace kd::edge {
namespace {

std::shared_ptr<const RunningModel> Tiny(uint64_t version, bool trial) {
  return testing::TinyRunningModel(version, trial);
}

media::Frame Frame(int64_t index) {
  media::Frame f;
  f.index = index;
  f.timestamp_us = 1000 * index;
  f.width = 96, f.height = 64;
  f.rgb.assign(96 * 64 * 3, static_cast<uint8_t>(40 * index));
  return f;
}

// The inference stage and what it shares with the others, on a FakeClock.
struct InferRig {
  InferRig(ProbationOptions po, double score_threshold, std::ostream* lines, int64_t start_nanos = 0)
      : clock(start_nanos), probation(po, clock) {
    auto picker = UploadPicker::Create(config::EdgeUplinkOptions{}, clock);
    EXPECT_TRUE(picker.ok());
    infer = std::make_unique<Infer>(score_threshold, in, out, std::move(picker).value(), models, probation, stats,
                                    latest, lines, clock);
  }
  FakeClock clock;
  EdgeStats stats{clock};
  Probation probation;
  LatestFrame latest;
  BoundedQueue<media::Frame> in{8};
  BoundedQueue<PendingFrame> out{64};
  std::shared_ptr<const RunningModel> v1 = Tiny(1, false);
  ModelHolder models{v1, v1};
  std::unique_ptr<Infer> infer;
};

TEST(InferTest, InfersEveryFrameSwapsBetweenFramesAndEndsWithItsInput) {
  ProbationOptions po;
  po.frames = 1000;
  std::ostringstream lines;
  InferRig rig(po, /*score_threshold=*/0.0, &lines);

  rig.models.Stage(Tiny(2, true));  // staged before the first frame: runs from the first frame on
  rig.probation.Start();
  for (int64_t i = 0; i < 4; ++i) rig.in.Push(Frame(i), /*block=*/true);
  rig.in.Close();
  rig.infer->Run();

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
  EXPECT_TRUE(rig.infer->WaitDone(std::chrono::milliseconds(0)));
  while (rig.out.Pop(std::chrono::milliseconds(0))) {
  }
  EXPECT_TRUE(rig.out.closed_and_empty());  // the uplink's input is closed behind the last frame
  const EdgeCounters c = rig.stats.Snapshot();
  EXPECT_EQ(c.frames_inferred, 4u);
  EXPECT_EQ(c.running_version, 2u);
  EXPECT_TRUE(c.source_done);
  EXPECT_EQ(c.inference_errors, 0u);
  EXPECT_EQ(rig.probation.Decide().frames, 4u);  // the trial's frames were counted
  ASSERT_TRUE(rig.latest.Get().has_value());
  EXPECT_EQ(rig.latest.Get()->index, 0);  // the first frame, until the 32nd
}

TEST(InferTest, SelectedFramesBecomePendingUploads) {
  InferRig rig(ProbationOptions{}, 0.3, nullptr, 1'000'000'000);
  rig.in.Push(Frame(0), true);
  rig.in.Close();
  rig.infer->Run();
  // The first frame is always sent (nothing sent yet: keep-alive), as a JPEG with a wall-clock seq.
  auto p = rig.out.Pop(std::chrono::milliseconds(0));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->seq, static_cast<uint64_t>(rig.clock.WallMicros()));
  EXPECT_GT(p->jpeg.size(), 0u);
  EXPECT_EQ(rig.stats.Snapshot().frames_selected, 1u);
}

}  // namespace
}  // namespace kd::edge
