#include "learner/rollout.h"

#include <iterator>

#include <nlohmann/json.hpp>

namespace kd::learner {

const char* RolloutStageName(RolloutStage stage) {
  // Indexed by RolloutStage (kIdle, kCanary, kAll, kHalted): the names status and the catalogue use.
  static constexpr const char* kNames[] = {"idle", "canary", "all", "halted"};
  const auto i = static_cast<size_t>(stage);
  return i < std::size(kNames) ? kNames[i] : "unknown";
}

void Rollout::Start(uint64_t version, uint64_t previous, int64_t now_us, bool canary_first) {
  (void)now_us;
  if (version_ != 0 && stage_ != RolloutStage::kHalted && !committed_.empty()) {
    previous_ = version_;  // proven: a device committed it and nobody's failure halted it
  } else if (previous_ == 0) {
    previous_ = previous;  // the first rollout
  }
  version_ = version;
  stage_ = canary_first ? RolloutStage::kCanary : RolloutStage::kAll;
  canary_ = options_.canary;
  canary_committed_ = false;
  canary_committed_us_ = 0;
  committed_.clear();
  failed_.clear();
}

uint64_t Rollout::Desired(const std::string& device) const {
  switch (stage_) {
    case RolloutStage::kIdle:
      return 0;
    case RolloutStage::kCanary:
      return device == canary_ ? version_ : previous_;
    case RolloutStage::kAll:
      return version_;
    case RolloutStage::kHalted:
      // Devices that did not take the version stay where they were; the learner publishes a revert.
      return previous_;
  }
  return 0;
}

void Rollout::NoteDevice(const std::string& device, int64_t now_us) {
  (void)now_us;
  if (stage_ == RolloutStage::kCanary && canary_.empty()) canary_ = device;
}

void Rollout::OnReport(const std::string& device, uint64_t version, DeviceOutcome outcome, int64_t now_us) {
  if (version != version_ || stage_ == RolloutStage::kIdle || stage_ == RolloutStage::kHalted) return;
  if (outcome == DeviceOutcome::kCommitted) {
    committed_.insert(device);
    failed_.erase(device);
    if (device == canary_ && !canary_committed_) canary_committed_ = true, canary_committed_us_ = now_us;
  } else {
    failed_.insert(device);
    if (static_cast<int>(failed_.size()) >= options_.failure_threshold) stage_ = RolloutStage::kHalted;
  }
  Tick(now_us);
}

void Rollout::Tick(int64_t now_us) {
  if (stage_ == RolloutStage::kCanary && canary_committed_ &&
      static_cast<double>(now_us - canary_committed_us_) >= options_.canary_probation_s * 1e6) {
    stage_ = RolloutStage::kAll;
  }
}

std::string Rollout::ToJson() const {
  nlohmann::json j;
  j["stage"] = RolloutStageName(stage_);
  j["version"] = version_;
  j["previous"] = previous_;
  j["canary"] = canary_;
  j["canary_committed"] = canary_committed_;
  j["canary_committed_us"] = canary_committed_us_;
  j["committed"] = committed_;
  j["failed"] = failed_;
  return j.dump();
}

Result<Rollout> Rollout::FromJson(const std::string& json, RolloutOptions options) {
  try {
    auto j = nlohmann::json::parse(json);
    Rollout r(std::move(options));
    const std::string stage = j.at("stage").get<std::string>();
    if (stage == "idle") {
      r.stage_ = RolloutStage::kIdle;
    } else if (stage == "canary") {
      r.stage_ = RolloutStage::kCanary;
    } else if (stage == "all") {
      r.stage_ = RolloutStage::kAll;
    } else if (stage == "halted") {
      r.stage_ = RolloutStage::kHalted;
    } else {
      return Status::Corruption("rollout state: unknown stage '" + stage + "'");
    }
    r.version_ = j.at("version").get<uint64_t>();
    r.previous_ = j.at("previous").get<uint64_t>();
    r.canary_ = j.at("canary").get<std::string>();
    r.canary_committed_ = j.at("canary_committed").get<bool>();
    r.canary_committed_us_ = j.at("canary_committed_us").get<int64_t>();
    r.committed_ = j.at("committed").get<std::set<std::string>>();
    r.failed_ = j.at("failed").get<std::set<std::string>>();
    return r;
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("rollout state: ") + e.what());
  }
}

}  // namespace kd::learner
