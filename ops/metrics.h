// Metric families: what a daemon reports to Prometheus, as plain values. The engines build these
// from their own counters at scrape time (learner/metrics.h, edge/metrics.h); RenderPrometheus
// turns them into the text exposition format 0.0.4 with prometheus-cpp's serializer, so the engines
// never see prometheus-cpp.
//
// Conventions (https://prometheus.io/docs/practices/naming): the `kd_` prefix, base units
// (`_seconds`, `_bytes`), ratios 0..1, counters end in `_total`, no high-cardinality labels
// (camera and group are bounded by enrolment and config; versions only as values).
// Threading: plain values; RenderPrometheus is thread-safe.
#ifndef KD_OPS_METRICS_H_
#define KD_OPS_METRICS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace kd::ops {

enum class MetricType { kCounter, kGauge, kHistogram };

using Labels = std::vector<std::pair<std::string, std::string>>;

// Cumulative bucket counts: bucket_counts[i] = observations <= upper_bounds[i] (+Inf is `count`).
struct HistogramValue {
  std::vector<double> upper_bounds;
  std::vector<uint64_t> bucket_counts;  // same length as upper_bounds, non-decreasing, <= count
  double sum = 0;
  uint64_t count = 0;
};

struct Sample {
  Labels labels;
  double value = 0;          // counter, gauge
  HistogramValue histogram;  // histogram
};

struct MetricFamily {
  std::string name;  // kd_..., [a-zA-Z_:][a-zA-Z0-9_:]*
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<Sample> samples;

  MetricFamily& Add(Labels labels, double value);
  MetricFamily& AddHistogram(Labels labels, HistogramValue h);
};

// Shorthands that read like the exposition: Counter("kd_x_total", "help").Add({{"camera","c"}}, 3).
MetricFamily Counter(std::string name, std::string help);
MetricFamily Gauge(std::string name, std::string help);
MetricFamily Histogram(std::string name, std::string help);

// `kd_build_info{daemon,version,git} 1`: which binary answers (the project version and git commit
// are compiled in).
MetricFamily BuildInfo(const std::string& daemon);
std::string ProjectVersion();
std::string GitCommit();

// The text exposition format 0.0.4 of `families`, in order.
std::string RenderPrometheus(const std::vector<MetricFamily>& families);

// A fixed-bucket histogram to observe into (not thread-safe: guard it with the owner's lock).
class HistogramAccumulator {
 public:
  explicit HistogramAccumulator(std::vector<double> upper_bounds);
  void Observe(double value);
  const HistogramValue& value() const { return v_; }

 private:
  HistogramValue v_;
};

// Buckets for latencies from 1 ms to 10 s, in seconds.
std::vector<double> LatencyBucketsSeconds();

}  // namespace kd::ops

#endif  // KD_OPS_METRICS_H_
