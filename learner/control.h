// ControlStage: the learner's side of updates (wire/PROTOCOL.md, control socket). A device's STATUS
// gets the version its group's rollout wants it to run, with the signed manifest when it should
// change (a delta when it runs the delta's base and did not ask for a full snapshot); a
// CHUNK_REQUEST gets a range of an artefact of its group; an UPDATE_REPORT feeds the rollout
// (committed / rolled back / rejected: failures halt it, and the trainer then reverts it). Tick()
// advances the rollouts' canary timers and the per-device bandwidth meters.
//
// Threading: Run() is the stage's thread and the only user of the control socket; Handle and
// Tick may be called from a test instead. LoopState under its mu; signing, file reads and
// persisting happen without it.
#ifndef KD_LEARNER_CONTROL_H_
#define KD_LEARNER_CONTROL_H_

#include <atomic>
#include <optional>

#include "base/clock.h"
#include "learner/catalogue.h"
#include "learner/ingest.h"
#include "learner/loop_state.h"
#include "learner/publisher.h"
#include "wire/endpoint.h"

namespace kd::learner {

class ControlStage {
 public:
  // Bandwidth meters: updated every kRateIntervalUs, exponential moving average with a time
  // constant of kRateTimeConstantS (downloads are bursts; a status line should not flicker).
  static constexpr int64_t kRateIntervalUs = 2'000'000;
  static constexpr double kRateTimeConstantS = 30.0;
  // Install reports kept per device for status.
  static constexpr size_t kReportsKept = 10;

  ControlStage(LoopState& state, Publisher& publisher, Catalogue& catalogue, const Clock& clock);

  // The reply to one request (every request gets one).
  Outgoing Handle(const wire::Incoming& in);
  // Rollout timers and bandwidth meters at the clock's now.
  void Tick();

  void Run(wire::Server& control, const std::atomic<bool>& stopping);

 private:
  wire::Message HandleStatus(const wire::Header& h, int64_t now);
  wire::Message HandleChunkRequest(const wire::Header& h, int64_t now);
  wire::Message HandleUpdateReport(const wire::Header& h, int64_t now);

  LoopState& state_;
  Publisher& publisher_;
  Catalogue& catalogue_;
  const Clock& clock_;
  int64_t last_rate_us_ = 0;  // Tick's thread only
};

}  // namespace kd::learner

#endif  // KD_LEARNER_CONTROL_H_
