// LineChart: a plain line chart rendered to PNG (axes with round ticks, a grid, lines, vertical
// event markers, a legend), for run reports that a person opens after a run (`kdctl report`).
// Stateless and thread-safe; OpenCV stays private to kd_media.
#ifndef KD_MEDIA_CHART_H_
#define KD_MEDIA_CHART_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace kd::media {

using Rgb = std::array<uint8_t, 3>;

struct ChartSeries {
  std::string name;
  std::vector<double> x, y;  // same length; non-finite y values break the line
  Rgb colour{31, 119, 180};
  bool dashed = false;
};

// A vertical line at x with a short label at its top (a publish, a rollback).
struct ChartMarker {
  double x = 0;
  std::string label;
  Rgb colour{120, 120, 120};
};

struct LineChart {
  std::string title, x_label, y_label;
  std::vector<ChartSeries> series;
  std::vector<ChartMarker> markers;
  int width = 960, height = 540;       // pixels. REQUIRES: 200..4000
  std::optional<double> y_min, y_max;  // default: the data's range, padded
};

// The chart as PNG bytes. InvalidArgument for a bad size or mismatched x/y lengths; a chart with no
// finite point draws its axes and says "no data".
Result<std::vector<uint8_t>> RenderChartPng(const LineChart& chart);

}  // namespace kd::media

#endif  // KD_MEDIA_CHART_H_
