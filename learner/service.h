// LearnerService: the kdlearnd daemon's engine. Receives frames from enrolled edges over ZeroMQ
// (wire/PROTOCOL.md), stores them durably in the SampleStore before acknowledging, labels them with
// the teacher in batches, trains one student per group of cameras continually on a replay mix of
// fresh and hard past frames, gates each candidate on recent held-out frames of the group's cameras,
// publishes winners as signed full + delta artefacts and rolls them out (canary first).
//
// The service owns the resources (store, teacher, sockets) and the stages, and orders them: it
// loads the catalogue, binds, starts ingest, labeller, trainer, control and admin, one thread each
// (learner/ingest.h ... learner/admin.h), and stops them in reverse. What the stages share is
// learner/loop_state.h. Start() returns once everything is bound and loaded ("ready"); Drain()
// stops granting credits, lets in-flight work finish and stops; the destructor drains. Durable state
// (frames, teacher records, catalogue, rollout, enrolled devices) survives kill -9: see
// docs/ARCHITECTURE.md ("The continual loop") and storage/FORMAT.md ("What kdlearnd keeps here").
#ifndef KD_LEARNER_SERVICE_H_
#define KD_LEARNER_SERVICE_H_

#include <memory>
#include <string>

#include "base/clock.h"
#include "base/status.h"
#include "config/daemon_options.h"

#include "ops/health.h"
#include "ops/metrics.h"

namespace kd::learner {

class LearnerService {
 public:
  // `clock` must outlive the service (timestamps, rollout timers, bandwidth meters).
  static Result<std::unique_ptr<LearnerService>> Start(const config::LearnerOptions& options,
                                                       const Clock& clock = SystemClock::Get());
  ~LearnerService();
  LearnerService(const LearnerService&) = delete;
  LearnerService& operator=(const LearnerService&) = delete;

  // Ordered shutdown: stop granting credits, finish the frame being stored and the training step in
  // progress, close sockets, flush and close the store. Idempotent.
  void Drain();
  // The admin "status" reply (JSON): devices, groups, versions with their AP50, rollout, rates.
  std::string StatusJson() const;
  // For the management HTTP server and the systemd watchdog (learner/observe.h): metric families,
  // liveness (every stage's loop beats), readiness (store, teacher, sockets, not draining), the
  // dashboard's series (ops/series.h, sampled every kSeriesIntervalS) and round log.
  static constexpr double kSeriesIntervalS = 5;
  std::vector<ops::MetricFamily> Metrics() const;
  ops::HealthReport Live() const;
  ops::HealthReport Ready() const;
  std::string SeriesJson() const;
  std::string RoundsJson(const std::string& group, size_t limit) const;
  // The endpoints actually bound (port 0 / "*" resolved), for tests and logs.
  std::string frames_endpoint() const;
  std::string control_endpoint() const;
  std::string admin_endpoint() const;

  struct Impl;

 private:
  explicit LearnerService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kd::learner

#endif  // KD_LEARNER_SERVICE_H_
