#include "media/chart.h"

#include <cmath>

#include <gtest/gtest.h>

#include "media/image_ops.h"

namespace kd::media {
namespace {

bool IsPng(const std::vector<uint8_t>& b) {
  static const uint8_t kSig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  return b.size() > 8 && std::equal(kSig, kSig + 8, b.begin());
}

TEST(ChartTest, RendersLinesMarkersAndGapsAsAPng) {
  LineChart c;
  c.title = "accuracy", c.x_label = "minutes", c.y_label = "AP";
  c.series.push_back({"candidate", {0, 1, 2, 3}, {0.2, 0.3, std::nan(""), 0.4}, {31, 119, 180}, false});
  c.series.push_back({"deployed", {0, 1, 2, 3}, {0.2, 0.2, 0.3, 0.3}, {255, 127, 14}, true});
  c.markers.push_back({1.5, "v2", {120, 120, 120}});
  c.y_min = 0, c.y_max = 1;
  auto png = RenderChartPng(c);
  ASSERT_TRUE(png.ok()) << png.status().ToString();
  EXPECT_TRUE(IsPng(*png));
}

TEST(ChartTest, NoDataStillDrawsAChartAndBadInputIsAnError) {
  LineChart empty;
  empty.title = "empty";
  EXPECT_TRUE(IsPng(RenderChartPng(empty).value()));
  LineChart bad;
  bad.series.push_back({"x", {0, 1}, {1}, {0, 0, 0}, false});
  EXPECT_TRUE(RenderChartPng(bad).status().IsInvalidArgument());
  LineChart tiny;
  tiny.width = 10;
  EXPECT_TRUE(RenderChartPng(tiny).status().IsInvalidArgument());
}

TEST(DrawDetectionsTest, BoxesAreDrawnOnACopy) {
  Frame f;
  f.width = 64, f.height = 48;
  f.rgb.assign(64 * 48 * 3, 0);
  Detection d;
  d.box = {10, 10, 40, 30};
  d.score = 0.9f;
  const Frame out = DrawDetections(f, {d});
  EXPECT_EQ(out.width, 64);
  EXPECT_NE(out.rgb, f.rgb);                               // something was drawn
  EXPECT_EQ(f.rgb, std::vector<uint8_t>(64 * 48 * 3, 0));  // the input is untouched
  EXPECT_EQ(DrawDetections(f, {}).rgb, f.rgb);
}

}  // namespace
}  // namespace kd::media
