#include "edge/frame_selector.h"

#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "media/image_ops.h"

namespace kd::edge {
namespace {

constexpr int kW = 160, kH = 120;
constexpr int64_t kFrameUs = 33'333;  // 30 fps

// A textured synthetic scene (fixed per `scene`) plus small per-frame sensor noise, so consecutive
// frames of one scene differ a little, as a real camera's do, and JPEGs have a realistic size.
media::Frame SceneFrame(int scene, uint32_t frame_seed, int w = kW, int h = kH) {
  // The textured base is built once per scene and size: the long tests offer thousands of frames.
  static std::map<std::tuple<int, int, int>, std::vector<uint8_t>> bases;
  std::vector<uint8_t>& base_rgb = bases[{scene, w, h}];
  if (base_rgb.empty()) {
    base_rgb.resize(static_cast<size_t>(w) * static_cast<size_t>(h) * 3);
    std::mt19937 texture(static_cast<uint32_t>(scene) * 7919u + 1u);
    std::uniform_int_distribution<int> tex(0, 60);
    const int base = 40 + (scene * 70) % 160;
    size_t i = 0;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        const int block = ((x / 20 + y / 20 + scene) % 3) * 30;  // blocks of a scene-specific grey level
        for (int c = 0; c < 3; ++c) {
          base_rgb[i++] = static_cast<uint8_t>(std::clamp(base + block + x / 8 - y / 8 + tex(texture) + c * 5, 0, 255));
        }
      }
    }
  }
  media::Frame f;
  f.width = w;
  f.height = h;
  f.rgb = base_rgb;
  uint32_t state = frame_seed * 2654435761u + 0x9E3779B9u;  // xorshift32: noise in [-3, 3]
  for (uint8_t& v : f.rgb) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    v = static_cast<uint8_t>(std::clamp(int{v} + static_cast<int>(state % 7) - 3, 0, 255));
  }
  return f;
}

FrameDetections Dets(std::vector<float> scores) {
  FrameDetections d;
  for (float s : scores) {
    Detection det;
    det.box = {10, 10, 40, 50};
    det.score = s;
    d.detections.push_back(det);
  }
  return d;
}

// The decoder's output on a frame the student is sure about: confident boxes plus background noise.
FrameDetections ConfidentDets() { return Dets({0.95f, 0.9f, 0.06f, 0.05f, 0.05f}); }

SelectorOptions TestOptions() {
  SelectorOptions o;
  o.max_long_side = 0;
  return o;
}

FrameSelector MakeSelector(const SelectorOptions& o) {
  auto s = FrameSelector::Create(o);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(s).value();
}

TEST(FrameSelectorTest, BadOptionsAreRejected) {
  EXPECT_TRUE(FrameSelector::Create(SelectorOptions{}).ok());
  std::vector<std::pair<std::string, SelectorOptions>> bad;
  auto add = [&](const std::string& name, auto mutate) {
    SelectorOptions o;
    mutate(o);
    bad.emplace_back(name, o);
  };
  add("kbps 0", [](SelectorOptions& o) { o.uplink_kbps = 0; });
  add("kbps nan", [](SelectorOptions& o) { o.uplink_kbps = std::nan(""); });
  add("kbps inf", [](SelectorOptions& o) { o.uplink_kbps = INFINITY; });
  add("fps -1", [](SelectorOptions& o) { o.max_fps = -1; });
  add("burst 0", [](SelectorOptions& o) { o.burst_s = 0; });
  add("quality 9", [](SelectorOptions& o) { o.jpeg_quality = 9; });
  add("quality 101", [](SelectorOptions& o) { o.jpeg_quality = 101; });
  add("long side -1", [](SelectorOptions& o) { o.max_long_side = -1; });
  add("max bytes 0", [](SelectorOptions& o) { o.max_jpeg_bytes = 0; });
  add("keep alive -1", [](SelectorOptions& o) { o.keep_alive_s = -1; });
  add("weight -1", [](SelectorOptions& o) { o.uncertainty_weight = -1; });
  add("scene weight nan", [](SelectorOptions& o) { o.scene_change_weight = std::nan(""); });
  add("band inverted", [](SelectorOptions& o) { o.uncertain_low = 0.7f, o.uncertain_high = 0.1f; });
  add("band > 1", [](SelectorOptions& o) { o.uncertain_high = 1.5f; });
  add("saturation 0", [](SelectorOptions& o) { o.uncertainty_saturation = 0; });
  add("scene saturation 0", [](SelectorOptions& o) { o.scene_change_saturation = 0; });
  add("window 1", [](SelectorOptions& o) { o.threshold_window = 1; });
  add("candidate 0.5", [](SelectorOptions& o) { o.candidate_factor = 0.5; });
  add("min score -1", [](SelectorOptions& o) { o.min_score = -1; });
  add("burst frames 0", [](SelectorOptions& o) { o.burst_frames = 0; });
  add("burst frames 65", [](SelectorOptions& o) { o.burst_frames = 65; });
  for (const auto& [name, o] : bad) {
    auto s = FrameSelector::Create(o);
    ASSERT_FALSE(s.ok()) << name;
    EXPECT_TRUE(s.status().IsInvalidArgument()) << name;
  }
}

TEST(FrameSelectorTest, InvalidFrameIsAnError) {
  FrameSelector sel = MakeSelector(TestOptions());
  media::Frame f;
  f.width = 4;
  f.height = 4;
  f.rgb.resize(10);
  auto r = sel.Offer(f, {}, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsInvalidArgument());
}

TEST(FrameSelectorTest, UncertaintyCountsAmbiguousScoresAndSaturates) {
  SelectorOptions o;  // band [0.1, 0.7], saturation 2
  EXPECT_EQ(FrameSelector::Uncertainty(Dets({}), o), 0);
  EXPECT_EQ(FrameSelector::Uncertainty(ConfidentDets(), o), 0);
  EXPECT_NEAR(FrameSelector::Uncertainty(Dets({0.4f}), o), 1 - std::exp(-0.5), 1e-6);  // band centre
  const double one = FrameSelector::Uncertainty(Dets({0.4f}), o);
  const double three = FrameSelector::Uncertainty(Dets({0.4f, 0.4f, 0.4f}), o);
  const double edge = FrameSelector::Uncertainty(Dets({0.65f}), o);
  EXPECT_GT(three, one);
  EXPECT_LT(three, 1.0);
  EXPECT_GT(one, edge);
  EXPECT_GT(edge, 0);
  EXPECT_GT(FrameSelector::Uncertainty(Dets(std::vector<float>(50, 0.4f)), o), 0.999);
}

TEST(FrameSelectorTest, FirstFrameIsSentAsSceneChangeAndOnlySentFramesAreEncoded) {
  FrameSelector sel = MakeSelector(TestOptions());
  auto first = sel.Offer(SceneFrame(0, 0), ConfidentDets(), 0);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->send);
  EXPECT_EQ(first->scene_change, 1.0);
  EXPECT_STREQ(first->reason, "scene_change");
  EXPECT_EQ(first->width, kW);
  EXPECT_EQ(first->height, kH);
  auto decoded = media::DecodeJpeg(first->jpeg);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->width, kW);

  auto second = sel.Offer(SceneFrame(0, 1), ConfidentDets(), kFrameUs);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->send);
  EXPECT_STREQ(second->reason, "below_threshold");
  EXPECT_TRUE(second->jpeg.empty());
  EXPECT_LT(second->scene_change, 0.05);  // sensor noise only
  EXPECT_EQ(sel.stats().offered, 2u);
  EXPECT_EQ(sel.stats().selected, 1u);
  EXPECT_EQ(sel.stats().skipped_threshold, 1u);
  EXPECT_EQ(sel.stats().bytes_selected, first->jpeg.size());
}

// Random detections on a static scene: interest varies frame to frame, as on a busy road.
FrameDetections RandomDets(std::mt19937& rng) {
  std::uniform_int_distribution<int> count(0, 4);
  std::uniform_real_distribution<float> score(0.05f, 1.0f);
  std::vector<float> s(static_cast<size_t>(count(rng)));
  for (float& v : s) v = score(rng);
  return Dets(s);
}

TEST(FrameSelectorTest, FpsCapHoldsOverALongSequence) {
  SelectorOptions o = TestOptions();
  o.uplink_kbps = 100'000;  // bytes never bind
  o.max_fps = 2;
  o.keep_alive_s = 0;
  FrameSelector sel = MakeSelector(o);
  std::mt19937 rng(1);
  const int kSeconds = 120;
  const media::Frame frame = SceneFrame(3, 0);
  int sent = 0;
  std::vector<int> per_10s(kSeconds / 10, 0);
  for (int i = 0; i < kSeconds * 30; ++i) {
    auto r = sel.Offer(frame, RandomDets(rng), i * kFrameUs);
    ASSERT_TRUE(r.ok());
    if (r->send) {
      ++sent;
      ++per_10s[static_cast<size_t>(i / 300)];
    }
  }
  const double budget = o.max_fps * kSeconds;
  EXPECT_LE(sent, budget + 4) << "bucket depth is 4 frames";
  EXPECT_GE(sent, 0.9 * budget);
  for (int n : per_10s) EXPECT_LE(n, 20 + 4);
  EXPECT_EQ(sel.stats().selected, static_cast<uint64_t>(sent));
  EXPECT_GT(sel.stats().skipped_threshold, 0u);
}

// Bursts (policy step 6): every selection is a run of burst_frames consecutive frames, and the
// long-run frame and byte rates stay within the budget.
TEST(FrameSelectorTest, BurstsAreRunsOfConsecutiveFramesWithinTheBudget) {
  for (const bool bytes_bind : {false, true}) {
    SelectorOptions o = TestOptions();
    o.burst_frames = 5;
    o.keep_alive_s = 0;
    o.max_fps = bytes_bind ? 30 : 2;
    o.uplink_kbps = bytes_bind ? 100 : 100'000;
    FrameSelector sel = MakeSelector(o);
    std::mt19937 rng(2);
    const int kSeconds = 120;
    std::vector<int> sent_at;
    std::vector<std::string> reasons;
    size_t max_jpeg = 0;
    for (int i = 0; i < kSeconds * 30; ++i) {
      auto r = sel.Offer(SceneFrame(5, static_cast<uint32_t>(i)), RandomDets(rng), i * kFrameUs);
      ASSERT_TRUE(r.ok());
      if (!r->send) continue;
      sent_at.push_back(i);
      reasons.emplace_back(r->reason);
      max_jpeg = std::max(max_jpeg, r->jpeg.size());
    }
    ASSERT_GE(sent_at.size(), 10u);
    // Runs: a selection ("uncertain"/"scene_change") then exactly 4 "burst" frames, consecutive.
    size_t i = 0;
    for (; i + 5 <= sent_at.size(); i += 5) {
      EXPECT_NE(reasons[i], "burst") << "frame " << sent_at[i];
      for (size_t k = 1; k < 5; ++k) {
        EXPECT_EQ(reasons[i + k], "burst") << "frame " << sent_at[i + k];
        EXPECT_EQ(sent_at[i + k], sent_at[i] + static_cast<int>(k));
      }
    }
    EXPECT_EQ(sel.stats().selected_burst, sent_at.size() / 5 * 4 + (sent_at.size() % 5 ? sent_at.size() % 5 - 1 : 0));
    if (bytes_bind) {
      const double budget_bytes = o.uplink_kbps * 125.0 * kSeconds;
      const double depth = o.uplink_kbps * 125.0 * o.burst_s;
      const double got = static_cast<double>(sel.stats().bytes_selected);
      EXPECT_LE(got, budget_bytes + depth + 5.0 * static_cast<double>(max_jpeg));
      EXPECT_GE(got, 0.85 * budget_bytes);
    } else {
      const double budget = o.max_fps * kSeconds;
      EXPECT_LE(static_cast<double>(sent_at.size()), budget + 4 + 5) << "depth 4 frames + one burst in debt";
      EXPECT_GE(static_cast<double>(sent_at.size()), 0.85 * budget);
    }
  }
}

TEST(FrameSelectorTest, KbpsCapHoldsOverALongSequence) {
  SelectorOptions o = TestOptions();
  o.uplink_kbps = 100;  // 12.5 kB/s: a few frames/s of 160x120
  o.max_fps = 30;       // frames/s never bind
  o.keep_alive_s = 0;
  FrameSelector sel = MakeSelector(o);
  const int kSeconds = 60;
  size_t max_jpeg = 0;
  for (int i = 0; i < kSeconds * 30; ++i) {
    // Every frame is equally uncertain; only the byte budget limits.
    auto r = sel.Offer(SceneFrame(5, static_cast<uint32_t>(i)), Dets({0.4f, 0.35f, 0.5f}), i * kFrameUs);
    ASSERT_TRUE(r.ok());
    max_jpeg = std::max(max_jpeg, r->jpeg.size());
  }
  const double budget_bytes = o.uplink_kbps * 125.0 * kSeconds;
  const double depth = o.uplink_kbps * 125.0 * o.burst_s;
  const double got = static_cast<double>(sel.stats().bytes_selected);
  EXPECT_LE(got, budget_bytes + depth + static_cast<double>(max_jpeg));
  EXPECT_GE(got, 0.9 * budget_bytes) << "selected " << sel.stats().selected << " frames";
  EXPECT_GT(sel.stats().skipped_budget + sel.stats().skipped_threshold, 0u);
}

TEST(FrameSelectorTest, AbruptSceneChangeIsSelectedPromptly) {
  SelectorOptions o = TestOptions();
  o.max_fps = 1;
  o.keep_alive_s = 0;
  FrameSelector sel = MakeSelector(o);
  int i = 0;
  for (; i < 20 * 30; ++i) {  // 20 s of a boring static scene
    auto r = sel.Offer(SceneFrame(1, static_cast<uint32_t>(i)), ConfidentDets(), i * kFrameUs);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->send, i == 0) << "frame " << i << " score " << r->score;
  }
  // The camera now sees something else.
  auto r = sel.Offer(SceneFrame(2, static_cast<uint32_t>(i)), ConfidentDets(), i * kFrameUs);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->send);
  EXPECT_STREQ(r->reason, "scene_change");
  EXPECT_GT(r->scene_change, 0.3);
  ++i;
  // The new scene is now the reference: its next frames are boring again.
  auto next = sel.Offer(SceneFrame(2, static_cast<uint32_t>(i)), ConfidentDets(), i * kFrameUs);
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->send);
  EXPECT_LT(next->scene_change, 0.05);
}

TEST(FrameSelectorTest, UncertainFramesArePreferredUnderATightBudget) {
  SelectorOptions o = TestOptions();
  o.max_fps = 1;  // 1 of 30 frames
  o.keep_alive_s = 0;
  FrameSelector sel = MakeSelector(o);
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> pick(0, 1);
  const media::Frame frame = SceneFrame(4, 0);
  int sent_very = 0, sent_mild = 0, sent_confident = 0, offered_very = 0;
  for (int i = 0; i < 60 * 30; ++i) {
    const double p = pick(rng);
    const int kind = p < 0.5 ? 0 : (p < 0.9 ? 1 : 2);  // 50% confident, 40% mildly, 10% very uncertain
    const FrameDetections d = kind == 0   ? ConfidentDets()
                              : kind == 1 ? Dets({0.95f, 0.65f, 0.06f})
                                          : Dets({0.9f, 0.4f, 0.45f, 0.35f});
    offered_very += kind == 2;
    auto r = sel.Offer(frame, d, i * kFrameUs);
    ASSERT_TRUE(r.ok());
    if (!r->send || i == 0) continue;  // the first frame goes as a scene change
    EXPECT_STREQ(r->reason, "uncertain");
    (kind == 0 ? sent_confident : kind == 1 ? sent_mild : sent_very)++;
  }
  EXPECT_EQ(sent_confident, 0);
  EXPECT_GE(sent_very, 9 * (sent_mild + sent_very) / 10) << "mild " << sent_mild << " very " << sent_very;
  EXPECT_GE(sent_very + sent_mild, 50);  // the budget (60) is still mostly spent
  EXPECT_LE(sent_very, offered_very);
}

TEST(FrameSelectorTest, KeepAliveFiresOnAStaticBoringScene) {
  SelectorOptions o = TestOptions();
  o.keep_alive_s = 5;
  FrameSelector sel = MakeSelector(o);
  std::vector<int64_t> sent_at;
  for (int i = 0; i < 60 * 30; ++i) {
    const int64_t now = i * kFrameUs;
    auto r = sel.Offer(SceneFrame(6, static_cast<uint32_t>(i)), ConfidentDets(), now);
    ASSERT_TRUE(r.ok());
    if (!r->send) continue;
    if (!sent_at.empty()) {
      EXPECT_STREQ(r->reason, "keep_alive");
    }
    sent_at.push_back(now);
  }
  ASSERT_EQ(sent_at.size(), 12u);  // t = 0, 5, ..., 55 s
  for (size_t k = 1; k < sent_at.size(); ++k) {
    EXPECT_GE(sent_at[k] - sent_at[k - 1], 5'000'000);
    EXPECT_LE(sent_at[k] - sent_at[k - 1], 5'000'000 + kFrameUs);
  }
  EXPECT_EQ(sel.stats().selected_keep_alive, 11u);

  o.keep_alive_s = 0;  // off: only the first frame goes
  FrameSelector quiet = MakeSelector(o);
  for (int i = 0; i < 60 * 30; ++i) {
    ASSERT_TRUE(quiet.Offer(SceneFrame(6, static_cast<uint32_t>(i)), ConfidentDets(), i * kFrameUs).ok());
  }
  EXPECT_EQ(quiet.stats().selected, 1u);
}

TEST(FrameSelectorTest, KeepAliveDoesNotOverrideTheBudget) {
  SelectorOptions o = TestOptions();
  o.keep_alive_s = 0.1;  // due on every frame after 0.1 s
  o.max_fps = 1;
  FrameSelector sel = MakeSelector(o);
  for (int i = 0; i < 10 * 30; ++i) {
    ASSERT_TRUE(sel.Offer(SceneFrame(6, static_cast<uint32_t>(i)), ConfidentDets(), i * kFrameUs).ok());
  }
  EXPECT_LE(sel.stats().selected, 10u + 1u);
  EXPECT_GE(sel.stats().selected, 9u);
  EXPECT_GT(sel.stats().skipped_fps, 0u);
}

TEST(FrameSelectorTest, TooLargeJpegIsRetriedAtLowerQualityThenSkipped) {
  const media::Frame frame = SceneFrame(8, 0);
  auto q85 = media::EncodeJpeg(frame, 85);
  auto q10 = media::EncodeJpeg(frame, 10);
  ASSERT_TRUE(q85.ok() && q10.ok());
  ASSERT_LT(q10->size(), q85->size());

  SelectorOptions o = TestOptions();
  o.max_jpeg_bytes = (q10->size() + q85->size()) / 2;  // fits only after a retry
  FrameSelector retry = MakeSelector(o);
  auto r = retry.Offer(frame, {}, 0);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->send);
  EXPECT_LT(r->jpeg_quality, 85);
  EXPECT_LE(r->jpeg.size(), o.max_jpeg_bytes);

  o.max_jpeg_bytes = q10->size() - 1;  // never fits
  FrameSelector skip = MakeSelector(o);
  auto s = skip.Offer(frame, {}, 0);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->send);
  EXPECT_STREQ(s->reason, "too_large");
  EXPECT_TRUE(s->jpeg.empty());
  EXPECT_EQ(skip.stats().skipped_too_large, 1u);
  EXPECT_EQ(skip.stats().selected, 0u);
  EXPECT_EQ(skip.stats().bytes_selected, 0u);
  // Nothing was charged and nothing became the scene reference: the next frame is still "new".
  auto again = skip.Offer(frame, {}, kFrameUs);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->scene_change, 1.0);
}

TEST(FrameSelectorTest, LargeFramesAreDownscaledBeforeEncoding) {
  SelectorOptions o;
  o.max_long_side = 320;
  FrameSelector sel = MakeSelector(o);
  auto r = sel.Offer(SceneFrame(9, 0, 1280, 720), {}, 0);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->send);
  EXPECT_EQ(r->width, 320);
  EXPECT_EQ(r->height, 180);
  auto decoded = media::DecodeJpeg(r->jpeg);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->width, 320);
  EXPECT_EQ(decoded->height, 180);
}

}  // namespace
}  // namespace kd::edge
