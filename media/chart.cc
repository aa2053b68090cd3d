#include "media/chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

namespace kd::media {

namespace {

constexpr int kFont = cv::FONT_HERSHEY_SIMPLEX;
// Margins around the plot area, pixels: room for tick labels, axis titles and the legend.
constexpr int kLeft = 80, kRight = 24, kTop = 72, kBottom = 64;

cv::Scalar Bgr(const Rgb& c) {
  return {static_cast<double>(c[2]), static_cast<double>(c[1]), static_cast<double>(c[0])};
}

// A "nice" tick step (1, 2 or 5 x 10^k) giving about `target` ticks over `span`.
double NiceStep(double span, int target) {
  const double raw = span / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

std::string TickLabel(double v, double step) {
  char buf[32];
  const int decimals = step >= 1 ? 0 : std::min(4, static_cast<int>(std::ceil(-std::log10(step))));
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::abs(v) < step * 1e-6 ? 0.0 : v);
  return buf;
}

void Text(cv::Mat& img, const std::string& s, cv::Point at, double scale, const cv::Scalar& colour, int thickness = 1) {
  cv::putText(img, s, at, kFont, scale, colour, thickness, cv::LINE_AA);
}

}  // namespace

Result<std::vector<uint8_t>> RenderChartPng(const LineChart& chart) {
  if (chart.width < 200 || chart.width > 4000 || chart.height < 200 || chart.height > 4000) {
    return Status::InvalidArgument("chart size must be 200..4000 pixels a side");
  }
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const ChartSeries& s : chart.series) {
    if (s.x.size() != s.y.size()) return Status::InvalidArgument("series '" + s.name + "': x and y differ in length");
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      x0 = std::min(x0, s.x[i]), x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  }
  for (const ChartMarker& m : chart.markers) {
    if (std::isfinite(m.x)) x0 = std::min(x0, m.x), x1 = std::max(x1, m.x);
  }
  const bool has_data = std::isfinite(y0);
  if (!std::isfinite(x0)) x0 = 0, x1 = 1;
  if (!has_data) y0 = 0, y1 = 1;
  if (chart.y_min) y0 = *chart.y_min;
  if (chart.y_max) y1 = *chart.y_max;
  if (x1 - x0 < 1e-12) x0 -= 0.5, x1 += 0.5;
  if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
  if (!chart.y_min && !chart.y_max) {  // 5 % headroom so lines do not sit on the frame
    const double pad = (y1 - y0) * 0.05;
    y0 -= pad, y1 += pad;
  }

  cv::Mat img(chart.height, chart.width, CV_8UC3, cv::Scalar(255, 255, 255));
  const int pw = chart.width - kLeft - kRight, ph = chart.height - kTop - kBottom;
  auto px = [&](double x) { return kLeft + static_cast<int>(std::lround((x - x0) / (x1 - x0) * pw)); };
  auto py = [&](double y) { return kTop + ph - static_cast<int>(std::lround((y - y0) / (y1 - y0) * ph)); };
  const cv::Scalar grid(235, 235, 235), axis(90, 90, 90), ink(40, 40, 40);

  // Grid and ticks.
  const double xs = NiceStep(x1 - x0, 8), ys = NiceStep(y1 - y0, 6);
  for (double v = std::ceil(x0 / xs) * xs; v <= x1 + xs * 1e-9; v += xs) {
    cv::line(img, {px(v), kTop}, {px(v), kTop + ph}, grid, 1);
    const std::string t = TickLabel(v, xs);
    int base = 0;
    const cv::Size ts = cv::getTextSize(t, kFont, 0.4, 1, &base);
    Text(img, t, {px(v) - ts.width / 2, kTop + ph + 18}, 0.4, ink);
  }
  for (double v = std::ceil(y0 / ys) * ys; v <= y1 + ys * 1e-9; v += ys) {
    cv::line(img, {kLeft, py(v)}, {kLeft + pw, py(v)}, grid, 1);
    const std::string t = TickLabel(v, ys);
    int base = 0;
    const cv::Size ts = cv::getTextSize(t, kFont, 0.4, 1, &base);
    Text(img, t, {kLeft - 8 - ts.width, py(v) + ts.height / 2}, 0.4, ink);
  }
  cv::rectangle(img, {kLeft, kTop}, {kLeft + pw, kTop + ph}, axis, 1);

  // Markers under the lines.
  for (const ChartMarker& m : chart.markers) {
    if (!std::isfinite(m.x)) continue;
    const int x = px(m.x);
    for (int y = kTop; y < kTop + ph; y += 8) cv::line(img, {x, y}, {x, std::min(y + 4, kTop + ph)}, Bgr(m.colour), 1);
    Text(img, m.label, {x + 3, kTop + 12}, 0.38, Bgr(m.colour));
  }

  // Lines: clipped to the plot area; a dashed series draws every other segment piece.
  cv::Mat plot = img(cv::Rect(kLeft, kTop, pw + 1, ph + 1));
  for (const ChartSeries& s : chart.series) {
    const cv::Scalar c = Bgr(s.colour);
    std::optional<cv::Point> prev;
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) {
        prev.reset();
        continue;
      }
      const cv::Point p(px(s.x[i]) - kLeft, py(s.y[i]) - kTop);
      if (prev) {
        if (s.dashed) {
          const double len = std::hypot(p.x - prev->x, p.y - prev->y);
          const int pieces = std::max(1, static_cast<int>(len / 6));
          for (int k = 0; k < pieces; k += 2) {
            const double a = static_cast<double>(k) / pieces, b = static_cast<double>(k + 1) / pieces;
            cv::line(plot,
                     *prev + cv::Point(static_cast<int>((p.x - prev->x) * a), static_cast<int>((p.y - prev->y) * a)),
                     *prev + cv::Point(static_cast<int>((p.x - prev->x) * b), static_cast<int>((p.y - prev->y) * b)), c,
                     2, cv::LINE_AA);
          }
        } else {
          cv::line(plot, *prev, p, c, 2, cv::LINE_AA);
        }
      }
      if (s.x.size() < 60) cv::circle(plot, p, 3, c, cv::FILLED, cv::LINE_AA);
      prev = p;
    }
  }
  if (!has_data) Text(img, "no data", {kLeft + pw / 2 - 30, kTop + ph / 2}, 0.6, axis);

  // Title, axis titles, legend.
  Text(img, chart.title, {kLeft, 24}, 0.6, ink, 1);
  {
    int base = 0;
    const cv::Size ts = cv::getTextSize(chart.x_label, kFont, 0.45, 1, &base);
    Text(img, chart.x_label, {kLeft + pw / 2 - ts.width / 2, chart.height - 14}, 0.45, ink);
  }
  Text(img, chart.y_label, {8, kTop - 8}, 0.45, ink);
  int lx = kLeft + pw;
  for (auto it = chart.series.rbegin(); it != chart.series.rend(); ++it) {
    int base = 0;
    const cv::Size ts = cv::getTextSize(it->name, kFont, 0.42, 1, &base);
    lx -= ts.width + 34;
    // The legend is a row of its own under the title, right-aligned.
    cv::line(img, {lx, 44}, {lx + 22, 44}, Bgr(it->colour), 2, cv::LINE_AA);
    Text(img, it->name, {lx + 26, 49}, 0.42, ink);
  }

  std::vector<uint8_t> png;
  try {
    if (!cv::imencode(".png", img, png)) return Status::Internal("PNG encoder failed");
  } catch (const std::exception& e) {
    return Status::Internal(std::string("PNG encoder: ") + e.what());
  }
  return png;
}

}  // namespace kd::media
