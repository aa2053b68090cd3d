#include "ops/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include <prometheus/check_names.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "base/check.h"

#ifndef KD_GIT_COMMIT
#define KD_GIT_COMMIT "unknown"
#endif
#ifndef KD_PROJECT_VERSION
#define KD_PROJECT_VERSION "0.0.0"
#endif

namespace kd::ops {

MetricFamily& MetricFamily::Add(Labels labels, double value) {
  Sample s;
  s.labels = std::move(labels);
  s.value = value;
  samples.push_back(std::move(s));
  return *this;
}

MetricFamily& MetricFamily::AddHistogram(Labels labels, HistogramValue h) {
  Sample s;
  s.labels = std::move(labels);
  s.histogram = std::move(h);
  samples.push_back(std::move(s));
  return *this;
}

MetricFamily Counter(std::string name, std::string help) {
  return {std::move(name), std::move(help), MetricType::kCounter, {}};
}
MetricFamily Gauge(std::string name, std::string help) {
  return {std::move(name), std::move(help), MetricType::kGauge, {}};
}
MetricFamily Histogram(std::string name, std::string help) {
  return {std::move(name), std::move(help), MetricType::kHistogram, {}};
}

std::string ProjectVersion() { return KD_PROJECT_VERSION; }
std::string GitCommit() { return KD_GIT_COMMIT; }

MetricFamily BuildInfo(const std::string& daemon) {
  return Gauge("kd_build_info", "Which binary answers: always 1, the facts are the labels.")
      .Add({{"daemon", daemon}, {"version", ProjectVersion()}, {"git", GitCommit()}}, 1);
}

namespace {
prometheus::MetricType ToPrometheus(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return prometheus::MetricType::Counter;
    case MetricType::kGauge:
      return prometheus::MetricType::Gauge;
    case MetricType::kHistogram:
      return prometheus::MetricType::Histogram;
  }
  return prometheus::MetricType::Untyped;
}
}  // namespace

std::string RenderPrometheus(const std::vector<MetricFamily>& families) {
  std::vector<prometheus::MetricFamily> out;
  out.reserve(families.size());
  for (const MetricFamily& f : families) {
    // Names are compile-time constants of the engines: a bad one is a programming error.
    KD_CHECK_MSG(prometheus::CheckMetricName(f.name), "bad metric name " + f.name);
    prometheus::MetricFamily pf;
    pf.name = f.name;
    pf.help = f.help;
    pf.type = ToPrometheus(f.type);
    for (const Sample& s : f.samples) {
      prometheus::ClientMetric m;
      for (const auto& [k, v] : s.labels) {
        KD_CHECK_MSG(prometheus::CheckLabelName(k), "bad label name " + k + " of " + f.name);
        m.label.push_back({k, v});
      }
      switch (f.type) {
        case MetricType::kCounter:
          m.counter.value = s.value;
          break;
        case MetricType::kGauge:
          m.gauge.value = s.value;
          break;
        case MetricType::kHistogram: {
          const HistogramValue& h = s.histogram;
          KD_CHECK_MSG(h.upper_bounds.size() == h.bucket_counts.size(), f.name);
          m.histogram.sample_count = h.count;
          m.histogram.sample_sum = h.sum;
          for (size_t i = 0; i < h.upper_bounds.size(); ++i) {
            m.histogram.bucket.push_back({h.bucket_counts[i], h.upper_bounds[i]});
          }
          m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
          break;
        }
      }
      pf.metric.push_back(std::move(m));
    }
    out.push_back(std::move(pf));
  }
  std::ostringstream os;
  prometheus::TextSerializer().Serialize(os, out);
  return os.str();
}

HistogramAccumulator::HistogramAccumulator(std::vector<double> upper_bounds) {
  KD_CHECK(std::is_sorted(upper_bounds.begin(), upper_bounds.end()));
  v_.bucket_counts.assign(upper_bounds.size(), 0);
  v_.upper_bounds = std::move(upper_bounds);
}

void HistogramAccumulator::Observe(double value) {
  if (!std::isfinite(value)) return;
  ++v_.count;
  v_.sum += value;
  // Cumulative: every bucket whose bound is >= value counts it.
  for (size_t i = 0; i < v_.upper_bounds.size(); ++i) {
    if (value <= v_.upper_bounds[i]) ++v_.bucket_counts[i];
  }
}

std::vector<double> LatencyBucketsSeconds() {
  return {0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10};
}

}  // namespace kd::ops
