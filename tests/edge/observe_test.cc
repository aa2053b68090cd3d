#include "edge/observe.h"

#include <gtest/gtest.h>

#include "base/clock.h"
#include "edge/edge_stats.h"

namespace kd::edge {
namespace {

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(EdgeObserveTest, MetricsNameTheCameraAndCoverFramesLatencyTrafficAndModels) {
  EdgeCounters c;
  c.frames_captured = 100, c.frames_inferred = 98, c.frames_dropped = 2;
  c.frames_acked = 10, c.unacked_frames = 3, c.frames_dropped_unacked = 1;
  c.uplink_bytes = 5000, c.downlink_bytes = 700;
  c.running_version = 4, c.committed_version = 3, c.desired_version = 4, c.rollbacks = 1;
  ops::HistogramAccumulator h(ops::LatencyBucketsSeconds());
  h.Observe(0.003);
  const std::string m = ops::RenderPrometheus(EdgeMetrics("cam-1", c, h.value()));
  EXPECT_TRUE(Contains(m, "kd_edge_frames_captured_total{camera=\"cam-1\"} 100\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_edge_frames_dropped_total{camera=\"cam-1\"} 2\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_edge_inference_duration_seconds_bucket{camera=\"cam-1\",le=\"0.005\"} 1\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_edge_unacked_frames{camera=\"cam-1\"} 3\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_edge_frames_lost_total{camera=\"cam-1\",reason=\"buffer_full\"} 1\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_edge_uplink_bytes_total{camera=\"cam-1\"} 5000\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_edge_model_version{camera=\"cam-1\",slot=\"committed\"} 3\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_edge_rollbacks_total{camera=\"cam-1\"} 1\n")) << m;
}

TEST(EdgeObserveTest, LiveWhileFramesAreInferredOrTheSourceHasEnded) {
  EdgeHealthInput in;
  in.started_us = 0;
  in.now_us = 5'000'000;
  EXPECT_TRUE(EdgeLiveness(in).ok());  // 5 s after the start, no frame yet: still starting
  in.now_us = 31'000'000;
  EXPECT_FALSE(EdgeLiveness(in).ok());
  in.last_inferred_us = 30'000'000;
  EXPECT_TRUE(EdgeLiveness(in).ok());
  in.now_us = 61'000'000;
  EXPECT_FALSE(EdgeLiveness(in).ok()) << EdgeLiveness(in).Text(true);
  in.counters.source_done = true;
  EXPECT_TRUE(EdgeLiveness(in).ok());
}

TEST(EdgeObserveTest, ReadyWithAModelAndFramesFlowingWhateverTheLearnerLink) {
  EdgeHealthInput in;
  in.now_us = 10'000'000;
  in.model_loaded = true;
  in.counters.running_version = 2;
  EXPECT_FALSE(EdgeReadiness(in).ok());  // no frame yet
  in.last_inferred_us = 9'500'000;
  in.counters.frames_acked = 0;  // the learner is away: still ready
  EXPECT_TRUE(EdgeReadiness(in).ok()) << EdgeReadiness(in).Text(true);
  in.model_loaded = false;
  EXPECT_FALSE(EdgeReadiness(in).ok());
}

TEST(EdgeStatsTest, IntervalsGiveKilobitsPerSecondAndLatencyBuckets) {
  FakeClock clock(1'000'000'000);
  EdgeStats stats(clock);
  stats.OnInferred(4.0, 1);
  stats.OnInferred(40.0, 1);
  stats.Update([](EdgeCounters& c) { c.uplink_bytes += 25'000, c.downlink_bytes += 1'250; });
  clock.AdvanceNanos(2'000'000'000);
  const EdgeCounters c = stats.CloseInterval();
  EXPECT_DOUBLE_EQ(c.uplink_kbps, 100.0);  // 25,000 B * 8 / 1000 / 2 s
  EXPECT_DOUBLE_EQ(c.downlink_kbps, 5.0);
  const ops::HistogramValue h = stats.InferenceHistogram();
  EXPECT_EQ(h.count, 2u);
  EXPECT_NEAR(h.sum, 0.044, 1e-12);
  EXPECT_GE(stats.last_inferred_us(), 0);
  // The next interval counts only what came after.
  clock.AdvanceNanos(1'000'000'000);
  EXPECT_DOUBLE_EQ(stats.CloseInterval().uplink_kbps, 0.0);
}

}  // namespace
}  // namespace kd::edge
