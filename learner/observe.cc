#include "learner/observe.h"

#include <algorithm>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "learner/gate.h"
#include "learner/rollout.h"

namespace kd::learner {
using json = nlohmann::json;

namespace {

// What one scrape or one status reads from LoopState, copied under its lock.
struct DeviceView {
  std::string id, group;
  bool enrolled = false;
  int64_t last_seen_us = 0;
  uint64_t desired = 0;
  wire::EdgeStatus status;
  uint64_t stored = 0, duplicate = 0, store_errors = 0, out_of_credit = 0, unlabelled = 0;
  uint64_t uplink_bytes = 0, downlink_bytes = 0;
  double uplink_kbps = 0, downlink_kbps = 0;
  std::vector<std::string> reports;
};

struct GroupView {
  std::string name;
  uint64_t latest = 0, rounds = 0, publishes = 0, reverts = 0;
  RolloutStage stage = RolloutStage::kIdle;
  uint64_t rollout_version = 0, rollout_failures = 0;
  std::map<std::string, uint64_t> gate_decisions;
  std::string last_round_json;
  std::vector<VersionInfo> history;
};

struct View {
  std::vector<DeviceView> devices;
  std::vector<GroupView> groups;
  uint64_t frames_received = 0, frames_labelled = 0, train_steps = 0, ingest_writes = 0;
  ops::HistogramValue step_seconds;
  double yielded_seconds = 0;  // the labeller's and trainer's waits for ingest (learner/ingest_pressure.h)
};

View Snapshot(const LoopState& state) {
  View v;
  std::lock_guard lock(state.mu);
  for (const auto& [id, d] : state.devices) {
    DeviceView dv{.id = id,
                  .group = d.group,
                  .enrolled = d.enrolled,
                  .last_seen_us = d.last_seen_us,
                  .desired = 0,
                  .status = d.status,
                  .stored = d.frames_stored,
                  .duplicate = d.frames_duplicate,
                  .store_errors = d.store_errors,
                  .out_of_credit = d.frames_out_of_credit,
                  .unlabelled = d.frames_unlabelled,
                  .uplink_bytes = d.uplink_bytes,
                  .downlink_bytes = d.downlink_bytes,
                  .uplink_kbps = d.uplink_kbps,
                  .downlink_kbps = d.downlink_kbps,
                  .reports = d.reports};  // desired: below, from the group's rollout
    if (auto g = state.groups.find(d.group); g != state.groups.end()) dv.desired = g->second.rollout.Desired(id);
    v.devices.push_back(std::move(dv));
  }
  for (const auto& [name, g] : state.groups) {
    GroupView gv{.name = name,
                 .latest = g.latest,
                 .rounds = g.rounds,
                 .publishes = g.publishes,
                 .reverts = g.reverts,
                 .stage = g.rollout.stage(),
                 .rollout_version = g.rollout.version(),
                 .rollout_failures = static_cast<uint64_t>(g.rollout.failures()),
                 .gate_decisions = g.gate_decisions,
                 .last_round_json = g.last_round_json,
                 .history = {}};
    for (const auto& [ver, info] : g.history) gv.history.push_back(info);
    v.groups.push_back(std::move(gv));
  }
  v.frames_received = state.frames_received;
  v.frames_labelled = state.frames_labelled;
  v.train_steps = state.train_steps;
  v.ingest_writes = state.ingest_writes;
  v.step_seconds = state.train_step_seconds.value();
  v.yielded_seconds = state.pressure.paused_seconds();
  return v;
}

bool Online(const DeviceView& d, const LoopState& state, int64_t now_us) {
  return d.last_seen_us > 0 && now_us - d.last_seen_us < kOnlineTimeouts * state.options.server.timeout_ms * 1000;
}

double Seconds(int64_t us) { return static_cast<double>(us) / 1e6; }

// The last round's gate figures (-1 when absent).
double RoundNumber(const std::string& round_json, const char* key) {
  if (round_json.empty()) return -1;
  const json r = json::parse(round_json, nullptr, /*allow_exceptions=*/false);
  return r.is_object() && r.contains(key) && r[key].is_number() ? r[key].get<double>() : -1;
}

constexpr RolloutStage kStages[] = {RolloutStage::kIdle, RolloutStage::kCanary, RolloutStage::kAll,
                                    RolloutStage::kHalted};

}  // namespace

namespace {

// The round scheduler's ledger and signals per group, and (with [cluster]) the workers, from
// TrainStage::ScheduleJson.
void ScheduleMetrics(const nlohmann::json& schedule, std::vector<ops::MetricFamily>& out) {
  if (!schedule.is_object()) return;
  auto seconds = ops::Counter("kd_learner_group_trainer_seconds_total",
                              "Trainer time used by the group's rounds (the scheduler's ledger), per group.");
  auto share = ops::Gauge("kd_learner_group_schedule_share",
                          "The group's share of trainer time at its last pick (1 + drift and staleness terms).");
  auto drift = ops::Gauge("kd_learner_group_drift",
                          "Relative rise of the deployed student's disagreement with the teacher on fresh frames.");
  auto backoff = ops::Gauge("kd_learner_group_backoff_seconds", "Seconds the group still backs off (0 = none).");
  const nlohmann::json groups = schedule.value("groups", nlohmann::json::object());
  for (const auto& [name, g] : groups.items()) {
    const ops::Labels grp{{"group", name}};
    seconds.Add(grp, g.value("trainer_seconds", 0.0));
    share.Add(grp, g.value("share", 1.0));
    drift.Add(grp, g.value("drift", 0.0));
    backoff.Add(grp, g.value("backoff_s", 0.0));
  }
  for (auto* f : {&seconds, &share, &drift, &backoff}) out.push_back(std::move(*f));
  if (!schedule.contains("workers")) return;
  std::map<std::string, double> by_state{{"alive", 0}, {"left", 0}, {"dead", 0}};
  for (const auto& w : schedule["workers"]) by_state[w.value("state", "alive")] += 1;
  auto workers = ops::Gauge("kd_learner_cluster_workers", "Workers of this world generation, by state.");
  for (const auto& [state, n] : by_state) workers.Add({{"state", state}}, n);
  out.push_back(std::move(workers));
}

}  // namespace

std::vector<ops::MetricFamily> LearnerMetrics(const LoopState& state, const StatusSources& sources, int64_t now_us) {
  const View v = Snapshot(state);
  using ops::Counter;
  using ops::Gauge;
  std::vector<ops::MetricFamily> out;

  auto stored = Counter("kd_learner_frames_stored_total",
                        "Frames stored durably and acknowledged, per camera (those held at start-up included).");
  auto duplicate = Counter("kd_learner_frames_duplicate_total",
                           "Frames received again after their acknowledgement was lost (acked, not stored twice).");
  auto refused =
      Counter("kd_learner_frames_refused_total",
              "Frames not stored, by reason: beyond the credit window, or a store error (the edge resends those).");
  auto unlabelled =
      Gauge("kd_learner_label_backlog_frames", "Stored frames the teacher has not labelled yet, per camera.");
  auto last_seen =
      Gauge("kd_learner_device_last_seen_timestamp_seconds", "When the camera was last heard from (Unix time).");
  auto online = Gauge("kd_learner_device_online", "1 while the camera was heard from within 3 heartbeat timeouts.");
  auto version =
      Gauge("kd_learner_device_model_version",
            "Model versions of a camera: running and committed as it reports them, desired as the rollout says.");
  auto fps = Gauge("kd_learner_device_inference_fps",
                   "Inference frames per second the camera reported for its last interval.");
  auto infer = Gauge("kd_learner_device_inference_seconds",
                     "Mean inference time per frame the camera reported for its last interval.");
  auto unacked =
      Gauge("kd_learner_device_unacked_frames", "Uploads the camera holds that are not yet acknowledged (its report).");
  auto up = Counter("kd_learner_device_uplink_bytes_total", "Frame payload bytes received from the camera.");
  auto down = Counter("kd_learner_device_downlink_bytes_total", "Update bytes sent to the camera.");
  auto budget =
      Gauge("kd_learner_device_uplink_budget_bytes_per_second", "The camera's configured upload budget (uplink.kbps).");
  for (const DeviceView& d : v.devices) {
    const ops::Labels cam{{"camera", d.id}};
    stored.Add(cam, static_cast<double>(d.stored));
    duplicate.Add(cam, static_cast<double>(d.duplicate));
    refused.Add({{"camera", d.id}, {"reason", "out_of_credit"}}, static_cast<double>(d.out_of_credit));
    refused.Add({{"camera", d.id}, {"reason", "store_error"}}, static_cast<double>(d.store_errors));
    unlabelled.Add(cam, static_cast<double>(d.unlabelled));
    if (d.last_seen_us > 0) last_seen.Add(cam, Seconds(d.last_seen_us));
    online.Add(cam, Online(d, state, now_us) ? 1 : 0);
    version.Add({{"camera", d.id}, {"slot", "running"}}, static_cast<double>(d.status.running_version));
    version.Add({{"camera", d.id}, {"slot", "committed"}}, static_cast<double>(d.status.committed_version));
    version.Add({{"camera", d.id}, {"slot", "desired"}}, static_cast<double>(d.desired));
    fps.Add(cam, d.status.fps);
    infer.Add(cam, d.status.mean_inference_ms / 1e3);
    unacked.Add(cam, static_cast<double>(d.status.unacked_frames));
    up.Add(cam, static_cast<double>(d.uplink_bytes));
    down.Add(cam, static_cast<double>(d.downlink_bytes));
    budget.Add(cam, d.status.uplink_budget_kbps * 1e3 / 8);
  }
  for (auto* f : {&stored, &duplicate, &refused, &unlabelled, &last_seen, &online, &version, &fps, &infer, &unacked,
                  &up, &down, &budget}) {
    out.push_back(std::move(*f));
  }

  out.push_back(Counter("kd_learner_frames_received_total", "Frames stored or acknowledged again, all cameras.")
                    .Add({}, static_cast<double>(v.frames_received)));
  out.push_back(Counter("kd_learner_ingest_synced_writes_total",
                        "Synced store writes of ingest (group commit: many frames per write).")
                    .Add({}, static_cast<double>(v.ingest_writes)));
  out.push_back(Counter("kd_learner_frames_labelled_total", "Frames labelled by the teacher.")
                    .Add({}, static_cast<double>(v.frames_labelled)));
  out.push_back(Counter("kd_learner_train_steps_total", "Optimiser steps, all groups.")
                    .Add({}, static_cast<double>(v.train_steps)));
  out.push_back(Counter("kd_learner_background_yield_seconds_total",
                        "Seconds the labeller and trainer waited while ingest stored a flood of frames.")
                    .Add({}, v.yielded_seconds));
  out.push_back(ops::Histogram("kd_learner_train_step_duration_seconds",
                               "Time of one training step (forward, losses, backward, update).")
                    .AddHistogram({}, v.step_seconds));
  if (sources.frames) {
    const auto fs = sources.frames->stats();
    out.push_back(
        Counter("kd_learner_messages_refused_total", "Messages on the frame socket refused before ingest, by reason.")
            .Add({{"reason", "malformed"}}, static_cast<double>(fs.malformed))
            .Add({{"reason", "wrong_device"}}, static_cast<double>(fs.wrong_device)));
  }
  if (sources.auth) {
    out.push_back(Counter("kd_learner_connections_denied_total", "CURVE connections refused by the allowlist (ZAP).")
                      .Add({}, static_cast<double>(sources.auth->denied())));
  }
  if (sources.store) {
    if (auto st = sources.store->Stats(); st.ok()) {
      out.push_back(Gauge("kd_learner_store_bytes", "Bytes of the store's table files.")
                        .Add({}, static_cast<double>(st->total_sst_bytes)));
      out.push_back(Gauge("kd_learner_store_budget_bytes", "The store's disk budget (store.max_bytes).")
                        .Add({}, static_cast<double>(st->max_bytes)));
      out.push_back(Gauge("kd_learner_store_writes_stopped", "1 while the store refuses writes (budget or disk full).")
                        .Add({}, st->writes_stopped ? 1 : 0));
    }
  }
  out.push_back(Gauge("kd_learner_draining", "1 while the learner drains for a stop.")
                    .Add({}, sources.draining && sources.draining->load() ? 1 : 0));
  if (sources.schedule) ScheduleMetrics(nlohmann::json::parse(sources.schedule(), nullptr, false), out);

  auto rounds = Counter("kd_learner_train_rounds_total", "Training rounds, per group.");
  auto decisions = Counter("kd_learner_gate_decisions_total", "The gate's decisions on candidates, per group.");
  auto publishes =
      Counter("kd_learner_publishes_total", "Versions published, per group (republished older weights included).");
  auto rollbacks = Counter("kd_learner_rollbacks_total", "Rollouts rolled back to earlier weights, per group.");
  auto latest = Gauge("kd_learner_latest_version", "The newest published version, per group.");
  auto ap = Gauge("kd_learner_heldout_ap_ratio",
                  "COCO AP .50:.95 on the group's held-out frames (refined teacher labels) at the last round.");
  auto ap50 = Gauge("kd_learner_heldout_ap50_ratio", "AP at IoU .50 beside it.");
  auto stage = Gauge("kd_learner_rollout_stage", "1 for the group's current rollout stage, 0 for the others.");
  auto failures = Gauge("kd_learner_rollout_failures", "Device failure reports against the current rollout.");
  for (const GroupView& g : v.groups) {
    const ops::Labels grp{{"group", g.name}};
    rounds.Add(grp, static_cast<double>(g.rounds));
    for (const auto& [verdict, label] : {std::pair{GateVerdict::kPass, "pass"}, std::pair{GateVerdict::kFail, "fail"},
                                         std::pair{GateVerdict::kWaiting, "waiting"}}) {
      auto it = g.gate_decisions.find(GateVerdictName(verdict));
      decisions.Add({{"group", g.name}, {"decision", label}},
                    it == g.gate_decisions.end() ? 0 : static_cast<double>(it->second));
    }
    publishes.Add(grp, static_cast<double>(g.publishes));
    rollbacks.Add(grp, static_cast<double>(g.reverts));
    latest.Add(grp, static_cast<double>(g.latest));
    for (const auto& [model, key, key50] : {std::tuple{"candidate", "ap_candidate", "ap50_candidate"},
                                            std::tuple{"deployed", "ap_deployed", "ap50_deployed"}}) {
      const double a = RoundNumber(g.last_round_json, key), a50 = RoundNumber(g.last_round_json, key50);
      if (a >= 0) ap.Add({{"group", g.name}, {"model", model}}, a);
      if (a50 >= 0) ap50.Add({{"group", g.name}, {"model", model}}, a50);
    }
    for (const RolloutStage s : kStages) {
      stage.Add({{"group", g.name}, {"stage", RolloutStageName(s)}}, s == g.stage ? 1 : 0);
    }
    failures.Add(grp, static_cast<double>(g.rollout_failures));
  }
  for (auto* f : {&rounds, &decisions, &publishes, &rollbacks, &latest, &ap, &ap50, &stage, &failures}) {
    out.push_back(std::move(*f));
  }
  return out;
}

ops::HealthReport LearnerLiveness(const LoopState& state) {
  ops::HealthReport r;
  const StageBeats& b = state.beats;
  r.checks.push_back(b.ingest.Fresh("ingest-loop", kPollingLoopMaxSilenceS));
  r.checks.push_back(b.control.Fresh("control-loop", kPollingLoopMaxSilenceS));
  r.checks.push_back(b.admin.Fresh("admin-loop", kPollingLoopMaxSilenceS));
  r.checks.push_back(b.labeller.Fresh("labeller-loop", kWorkLoopMaxSilenceS));
  r.checks.push_back(b.trainer.Fresh("trainer-loop", kWorkLoopMaxSilenceS));
  return r;
}

ops::HealthReport LearnerReadiness(const LoopState& state, const StatusSources& sources) {
  ops::HealthReport r;
  if (!sources.store) {
    r.Add("store", false, "not open");
  } else if (auto st = sources.store->Stats(); !st.ok()) {
    r.Add("store", false, st.status().ToString());
  } else {
    r.Add("store", !st->writes_stopped && st->background_errors == 0,
          st->writes_stopped ? "writes stopped (budget or disk full)"
                             : (st->background_errors ? "RocksDB background errors" : "open and writable"));
  }
  r.Add("teacher", sources.teacher_loaded, sources.teacher_loaded ? "loaded" : "not loaded");
  r.Add("sockets", sources.frames != nullptr, sources.frames ? "bound" : "not bound");
  const bool draining = sources.draining && sources.draining->load();
  r.Add("not-draining", !draining, draining ? "draining for a stop" : "");
  // A stuck loop also means not ready: readiness implies liveness.
  for (ops::Check& c : LearnerLiveness(state).checks) r.checks.push_back(std::move(c));
  return r;
}

json LearnerNotices(const LoopState& state, const StatusSources& sources, int64_t now_us) {
  const View v = Snapshot(state);
  json errors = json::array(), warnings = json::array();
  auto notice = [](const char* level, const char* kind, const std::string& subject, const std::string& text) {
    return json{{"level", level}, {"kind", kind}, {"subject", subject}, {"text", text}};
  };
  for (const DeviceView& d : v.devices) {
    if (!d.enrolled) continue;
    if (!Online(d, state, now_us)) {
      warnings.push_back(notice("warn", "camera_offline", d.id,
                                d.last_seen_us > 0 ? d.id + " not heard from for " +
                                                         std::to_string((now_us - d.last_seen_us) / 1'000'000) + " s"
                                                   : d.id + " has never connected"));
      continue;
    }
    if (d.desired != 0 && d.status.running_version != 0 && d.desired != d.status.running_version) {
      warnings.push_back(notice("warn", "version_mismatch", d.id,
                                d.id + " runs v" + std::to_string(d.status.running_version) + ", the rollout wants v" +
                                    std::to_string(d.desired) + " (" + d.status.state + ")"));
    }
    // The device's latest install report (learner/control.cc: "vN committed|rolled back|rejected:
    // why"), while it is the latest: a rollback on probation, or a refused update (self-test,
    // signature, digest).
    if (!d.reports.empty()) {
      const std::string& rep = d.reports.back();
      if (rep.find(" rolled back") != std::string::npos) {
        errors.push_back(notice("error", "rollback", d.id, d.id + ": " + rep));
      } else if (rep.find(" rejected") != std::string::npos) {
        warnings.push_back(notice("warn", "self_test_failed", d.id, d.id + ": " + rep));
      }
    }
  }
  for (const GroupView& g : v.groups) {
    if (g.stage == RolloutStage::kHalted) {
      errors.push_back(notice("error", "rollout_halted", g.name,
                              "group " + g.name + ": the rollout of v" + std::to_string(g.rollout_version) +
                                  " halted after " + std::to_string(g.rollout_failures) + " device failure(s)"));
    }
    for (const VersionInfo& info : g.history) {
      if (info.revert_of != 0) {
        warnings.push_back(notice("warn", "rollback", g.name,
                                  "group " + g.name + ": v" + std::to_string(info.version) +
                                      " republished the weights of v" + std::to_string(info.revert_of)));
      }
    }
  }
  if (sources.store) {
    if (auto st = sources.store->Stats(); st.ok() && st->max_bytes > 0) {
      const double used = static_cast<double>(st->total_sst_bytes) / static_cast<double>(st->max_bytes);
      if (st->writes_stopped) {
        errors.push_back(notice("error", "store_full", "store", "the store refuses writes: budget or disk full"));
      } else if (used >= kStoreNearBudget) {
        warnings.push_back(notice("warn", "store_near_budget", "store",
                                  "the store uses " + std::to_string(static_cast<int>(used * 100)) +
                                      " % of its budget (retention drops the oldest frames)"));
      }
    }
  }
  for (auto& w : warnings) errors.push_back(std::move(w));
  return errors;
}

void LearnerSeriesSample(const LoopState& state, const StatusSources& sources, std::map<std::string, double>* gauges,
                         std::map<std::string, double>* counters) {
  const View v = Snapshot(state);
  uint64_t backlog = 0;
  for (const DeviceView& d : v.devices) {
    const std::string p = "cameras/" + d.id + "/";
    (*counters)[p + "uplink_bits"] = static_cast<double>(d.uplink_bytes) * 8;
    (*counters)[p + "downlink_bits"] = static_cast<double>(d.downlink_bytes) * 8;
    (*gauges)[p + "uplink_kbps"] = d.uplink_kbps;
    (*gauges)[p + "downlink_kbps"] = d.downlink_kbps;
    (*gauges)[p + "fps"] = d.status.fps;
    (*gauges)[p + "uplink_budget_kbps"] = d.status.uplink_budget_kbps;
    backlog += d.unlabelled;
  }
  (*counters)["learner/ingest_fps"] = static_cast<double>(v.frames_received);
  (*counters)["learner/labelled_fps"] = static_cast<double>(v.frames_labelled);
  (*counters)["learner/train_steps_per_s"] = static_cast<double>(v.train_steps);
  (*gauges)["learner/label_backlog"] = static_cast<double>(backlog);
  if (sources.store) {
    if (auto st = sources.store->Stats(); st.ok()) {
      (*gauges)["learner/store_bytes"] = static_cast<double>(st->total_sst_bytes);
      (*gauges)["learner/store_budget_bytes"] = static_cast<double>(st->max_bytes);
    }
  }
}

}  // namespace kd::learner
