// What a camera tells its operators beyond its status line: Prometheus metric families, liveness
// (frames keep being inferred) and readiness (a model runs and frames flow), from a snapshot of
// the edge's counters. The learner link is reported, never a gate: a camera keeps detecting when
// the learner is away.
//
// Threading: pure functions of their arguments.
#ifndef KD_EDGE_OBSERVE_H_
#define KD_EDGE_OBSERVE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "edge/edge_stats.h"

#include "ops/health.h"
#include "ops/metrics.h"

namespace kd::edge {

// A camera whose source is open but has inferred nothing for this long is stuck (a live camera
// delivers frames many times a second; a file source ends and says so).
inline constexpr double kInferenceMaxSilenceS = 30;
// Readiness wants a frame inferred this recently.
inline constexpr double kReadyMaxSilenceS = 10;

struct EdgeHealthInput {
  EdgeCounters counters;
  int64_t now_us = 0;             // on the stats clock (monotonic µs)
  int64_t started_us = 0;         // when the agent started, same clock
  int64_t last_inferred_us = -1;  // EdgeStats::last_inferred_us
  bool model_loaded = false;
};

std::vector<ops::MetricFamily> EdgeMetrics(const std::string& camera, const EdgeCounters& c,
                                           const ops::HistogramValue& inference_seconds);
ops::HealthReport EdgeLiveness(const EdgeHealthInput& in);
ops::HealthReport EdgeReadiness(const EdgeHealthInput& in);

}  // namespace kd::edge

#endif  // KD_EDGE_OBSERVE_H_
