#include "ops/metrics.h"

#include <cmath>

#include <gtest/gtest.h>

namespace kd::ops {
namespace {

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(MetricsTest, RendersCountersAndGaugesInTheTextFormat) {
  const std::string text = RenderPrometheus(
      {Counter("kd_test_frames_total", "Frames seen.").Add({{"camera", "cam-1"}}, 42).Add({{"camera", "cam-2"}}, 0),
       Gauge("kd_test_backlog_frames", "Backlog.").Add({}, 3.5)});
  EXPECT_TRUE(Contains(text, "# HELP kd_test_frames_total Frames seen.\n")) << text;
  EXPECT_TRUE(Contains(text, "# TYPE kd_test_frames_total counter\n")) << text;
  EXPECT_TRUE(Contains(text, "kd_test_frames_total{camera=\"cam-1\"} 42\n")) << text;
  EXPECT_TRUE(Contains(text, "kd_test_frames_total{camera=\"cam-2\"} 0\n")) << text;
  EXPECT_TRUE(Contains(text, "# TYPE kd_test_backlog_frames gauge\n")) << text;
  EXPECT_TRUE(Contains(text, "kd_test_backlog_frames 3.5\n")) << text;
}

TEST(MetricsTest, LabelValuesAreEscaped) {
  const std::string text = RenderPrometheus({Gauge("kd_test_g", "h").Add({{"group", "a\"b\\c\nd"}}, 1)});
  EXPECT_TRUE(Contains(text, R"(kd_test_g{group="a\"b\\c\nd"} 1)")) << text;
}

TEST(MetricsTest, HistogramsHaveCumulativeBucketsAnInfBucketSumAndCount) {
  HistogramAccumulator h({0.01, 0.1, 1});
  for (double v : {0.005, 0.05, 0.05, 0.5, 5.0}) h.Observe(v);
  h.Observe(std::nan(""));  // ignored
  EXPECT_EQ(h.value().count, 5u);
  EXPECT_EQ(h.value().bucket_counts, (std::vector<uint64_t>{1, 3, 4}));
  const std::string text = RenderPrometheus({Histogram("kd_test_seconds", "Latency.").AddHistogram({}, h.value())});
  EXPECT_TRUE(Contains(text, "# TYPE kd_test_seconds histogram\n")) << text;
  EXPECT_TRUE(Contains(text, "kd_test_seconds_bucket{le=\"0.01\"} 1\n")) << text;
  EXPECT_TRUE(Contains(text, "kd_test_seconds_bucket{le=\"0.1\"} 3\n")) << text;
  EXPECT_TRUE(Contains(text, "kd_test_seconds_bucket{le=\"1\"} 4\n")) << text;
  EXPECT_TRUE(Contains(text, "kd_test_seconds_bucket{le=\"+Inf\"} 5\n")) << text;
  EXPECT_TRUE(Contains(text, "kd_test_seconds_count 5\n")) << text;
  EXPECT_TRUE(Contains(text, "kd_test_seconds_sum 5.605\n")) << text;
}

TEST(MetricsTest, BuildInfoNamesTheDaemonVersionAndCommit) {
  const std::string text = RenderPrometheus({BuildInfo("kdedge")});
  EXPECT_TRUE(Contains(
      text, "kd_build_info{daemon=\"kdedge\",version=\"" + ProjectVersion() + "\",git=\"" + GitCommit() + "\"} 1\n"))
      << text;
  EXPECT_FALSE(GitCommit().empty());
}

TEST(MetricsTest, LatencyBucketsAreSortedSeconds) {
  const auto b = LatencyBucketsSeconds();
  ASSERT_FALSE(b.empty());
  EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
  EXPECT_DOUBLE_EQ(b.front(), 0.001);
}

TEST(MetricsDeathTest, AMalformedNameIsABug) {
  EXPECT_DEATH(RenderPrometheus({Gauge("kd test", "h").Add({}, 1)}), "bad metric name");
}

}  // namespace
}  // namespace kd::ops
