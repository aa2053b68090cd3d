// What the learner tells its operators beyond `kdctl status`: Prometheus metric families, the
// liveness and readiness checks (/livez, /readyz, the systemd watchdog), the notices the dashboard
// and status show (a camera offline, a rollback, a failed self-test, the store near its budget, a
// device not running what it should), and the numbers sampled for the dashboard's charts.
//
// Threading: every function copies what it needs under LoopState::mu and renders without it; the
// heartbeats are atomics. Call from any thread.
#ifndef KD_LEARNER_OBSERVE_H_
#define KD_LEARNER_OBSERVE_H_

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "learner/loop_state.h"
#include "storage/sample_store.h"
#include "wire/endpoint.h"

#include "ops/health.h"
#include "ops/metrics.h"

namespace kd::learner {

// What the status document, the metrics and the checks read besides LoopState; null members are
// left out (a stage test builds a status without sockets).
struct StatusSources {
  const storage::SampleStore* store = nullptr;
  const wire::Server* frames = nullptr;
  const wire::Authenticator* auth = nullptr;
  const std::atomic<bool>* draining = nullptr;
  bool teacher_loaded = false;
  int64_t started_unix_s = 0;  // when the daemon started (status "uptime")
  // The training schedule as a JSON object (TrainStage::ScheduleJson: ledger, placement, workers);
  // null = not reported.
  std::function<std::string()> schedule = nullptr;
};

// Liveness limits: a loop that has not beaten for this long is stuck. The polling loops (ingest,
// control, admin) beat every 100 ms; the labeller once per batch and the trainer once per step,
// both of which can take minutes on a CPU beside other work.
inline constexpr double kPollingLoopMaxSilenceS = 30;
inline constexpr double kWorkLoopMaxSilenceS = 900;
// A device is online while it was heard from within this many heartbeat timeouts.
inline constexpr int64_t kOnlineTimeouts = 3;
// Store use at or above this fraction of its budget is a notice.
inline constexpr double kStoreNearBudget = 0.9;

std::vector<ops::MetricFamily> LearnerMetrics(const LoopState& state, const StatusSources& sources, int64_t now_us);
ops::HealthReport LearnerLiveness(const LoopState& state);
ops::HealthReport LearnerReadiness(const LoopState& state, const StatusSources& sources);
// [{"level": "warn"|"error", "kind", "subject", "text"}], most severe first.
nlohmann::json LearnerNotices(const LoopState& state, const StatusSources& sources, int64_t now_us);
// One sample of the dashboard's series: gauges and counters by path (ops/series.h).
void LearnerSeriesSample(const LoopState& state, const StatusSources& sources, std::map<std::string, double>* gauges,
                         std::map<std::string, double>* counters);

}  // namespace kd::learner

#endif  // KD_LEARNER_OBSERVE_H_
