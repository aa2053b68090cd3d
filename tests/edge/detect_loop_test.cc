#include "edge/detect_loop.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace kd::edge {
namespace {

// A fake camera: n frames of a fixed size, gray levels by index.
class FakeSource final : public media::FrameSource {
 public:
  FakeSource(int n, int w, int h) : n_(n), w_(w), h_(h) {}
  Result<std::optional<media::Frame>> Next() override {
    if (i_ == n_) return std::optional<media::Frame>();
    media::Frame f;
    f.index = i_;
    f.timestamp_us = i_ * 100000;
    f.width = w_;
    f.height = h_;
    f.rgb.assign(static_cast<size_t>(w_ * h_ * 3), static_cast<uint8_t>(i_ * 20));
    ++i_;
    return std::optional<media::Frame>(std::move(f));
  }
  media::SourceInfo info() const override { return {w_, h_, 10.0, n_, media::SourceKind::kVideoFile, "fake"}; }

 private:
  int n_, w_, h_, i_ = 0;
};

std::shared_ptr<const model::FusedStudent> TinyStudent() {
  model::StudentOptions o;
  o.width = 8;
  o.head_channels = 8;
  o.input_width = 64;
  o.input_height = 64;
  model::Student s(o);
  s->eval();
  return std::make_shared<const model::FusedStudent>(*s);
}

TEST(DetectLoopTest, EveryFrameReachesTheSinkInOrder) {
  FakeSource src(5, 96, 72);
  std::vector<FrameResult> got;
  auto stats = RunDetectLoop(src, TinyStudent(), 4, {}, [&](const FrameResult& r) {
    got.push_back(r);
    return Status::Ok();
  });
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->frames, 5);
  ASSERT_EQ(got.size(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(got[static_cast<size_t>(i)].detections.frame_index, i);
    EXPECT_EQ(got[static_cast<size_t>(i)].model_version, 4u);
    for (const auto& d : got[static_cast<size_t>(i)].detections.detections) {
      EXPECT_GE(d.score, 0.05f);
      EXPECT_LE(d.box.x1, 96.f * 2);  // scaled to the 96x72 source frame (boxes may overhang a little)
    }
  }
}

TEST(DetectLoopTest, SinkErrorStopsTheLoop) {
  FakeSource src(5, 64, 64);
  int calls = 0;
  auto stats = RunDetectLoop(src, TinyStudent(), 1, {}, [&](const FrameResult&) {
    return ++calls == 2 ? Status::IOError("disk full") : Status::Ok();
  });
  EXPECT_EQ(stats.status().code(), Status::Code::kIOError);
  EXPECT_EQ(calls, 2);
}

TEST(DetectLoopTest, JsonLineCarriesFrameVersionAndBoxes) {
  FrameResult r;
  r.detections = {7, {{{1, 2, 3, 4}, 0.5f, 2}}};
  r.timestamp_us = 700000;
  r.model_version = 9;
  auto j = nlohmann::json::parse(FrameResultToJson(r));
  EXPECT_EQ(j["frame"], 7);
  EXPECT_EQ(j["model_version"], 9);
  EXPECT_EQ(j["timestamp_us"], 700000);
  ASSERT_EQ(j["detections"].size(), 1u);
  EXPECT_EQ(j["detections"][0]["class"], "car");
  EXPECT_EQ(j["detections"][0]["box"][2], 3.0);
}

}  // namespace
}  // namespace kd::edge
