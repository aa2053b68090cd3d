// Rollout: the staged deployment of one student group's new version (a canary device first, then
// the rest), and the decision to halt it when devices report failures. A pure state machine: no
// I/O, no clock of its own (callers pass now_us), serialisable to JSON for the learner's metadata.
// Thread-compatible: the learner guards it with its state mutex.
#ifndef KD_LEARNER_ROLLOUT_H_
#define KD_LEARNER_ROLLOUT_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"

namespace kd::learner {

struct RolloutOptions {
  std::string canary;              // device id of the canary; "" = the first device of the group to report
  double canary_probation_s = 10;  // after the canary commits, wait this long before the rest follow
  int failure_threshold = 1;       // failure reports (rolled back / rejected) that halt the rollout
};

enum class RolloutStage { kIdle, kCanary, kAll, kHalted };
const char* RolloutStageName(RolloutStage stage);

enum class DeviceOutcome { kCommitted, kRolledBack, kRejected };

class Rollout {
 public:
  explicit Rollout(RolloutOptions options = {}) : options_(std::move(options)) {}

  // Starts deploying `version` to the group. The version to fall back to (what the non-canary
  // devices keep meanwhile, and what a halt returns to) is the last known-good one: the version
  // this rollout replaces when at least one device committed it and it was not halted; otherwise
  // the fallback the replaced rollout had (a version that failed, or that no device has run yet,
  // is never fallen back to); `previous` only for the first rollout (0 = whatever they run).
  // Resets the counters. canary_first = false goes to every device at once (a revert to weights
  // the devices already ran).
  void Start(uint64_t version, uint64_t previous, int64_t now_us, bool canary_first = true);
  // The version `device` should run now (0 = no opinion: keep the running model).
  uint64_t Desired(const std::string& device) const;
  // A device of the group reported (status). The first one becomes the canary when none is configured.
  void NoteDevice(const std::string& device, int64_t now_us);
  // A device's install report for `version` (reports for other versions are ignored).
  void OnReport(const std::string& device, uint64_t version, DeviceOutcome outcome, int64_t now_us);
  // Time-based transitions: canary committed + probation elapsed -> everyone.
  void Tick(int64_t now_us);

  RolloutStage stage() const { return stage_; }
  uint64_t version() const { return version_; }
  uint64_t previous() const { return previous_; }
  const std::string& canary() const { return canary_; }
  int failures() const { return static_cast<int>(failed_.size()); }
  const std::set<std::string>& committed() const { return committed_; }

  std::string ToJson() const;
  static Result<Rollout> FromJson(const std::string& json, RolloutOptions options);

 private:
  RolloutOptions options_;
  RolloutStage stage_ = RolloutStage::kIdle;
  uint64_t version_ = 0, previous_ = 0;
  std::string canary_;
  bool canary_committed_ = false;
  int64_t canary_committed_us_ = 0;
  std::set<std::string> committed_, failed_;
};

}  // namespace kd::learner

#endif  // KD_LEARNER_ROLLOUT_H_
