#include "learner/admin.h"

#include <chrono>

#include "base/log.h"
#include "learner/version_json.h"
#include "wire/admin_commands.h"

namespace kd::learner {
using json = nlohmann::json;
namespace admin = wire::admin;

namespace {
std::string Fail(const std::string& msg) { return json{{admin::kOk, false}, {admin::kError, msg}}.dump(); }
std::string Ok(json reply = json::object()) {
  reply[admin::kOk] = true;
  return reply.dump();
}
}  // namespace

Status EnrollDevice(LoopState& state, wire::Authenticator* auth, const std::string& id, const std::string& key) {
  if (auth && !key.empty()) KD_RETURN_IF_ERROR(auth->Allow(key, id));
  std::lock_guard lock(state.mu);
  DeviceInfo& d = state.Device(id);
  d.public_key = key;
  d.enrolled = true;
  state.GroupFor(id);
  return Status::Ok();
}

AdminStage::AdminStage(LoopState& state, Catalogue& catalogue, Publisher& publisher, wire::Authenticator* auth,
                       StatusSources sources, const Clock& clock)
    : state_(state), catalogue_(catalogue), publisher_(publisher), auth_(auth), sources_(sources), clock_(clock) {}

void AdminStage::Run(wire::AdminServer& server, const std::atomic<bool>& stopping) {
  while (!stopping) {
    state_.beats.admin.Beat();
    auto r =
        server.ServeOne(std::chrono::milliseconds(100), [this](const std::string& req) { return HandleRequest(req); });
    if (!r.ok() && stopping) break;
  }
}

namespace {
json StatusDoc(const LoopState& state_, const StatusSources& sources_, const Clock& clock_) {
  const int64_t now = clock_.WallMicros();
  const int64_t online_us = kOnlineTimeouts * state_.options.server.timeout_ms * 1000;
  json j{{"daemon", "kdlearnd"},
         {"version", ops::ProjectVersion()},
         {"git", ops::GitCommit()},
         {"now_unix_s", now / 1'000'000},
         {"started_unix_s", sources_.started_unix_s}};
  {
    std::lock_guard lock(state_.mu);
    json devs = json::object();
    for (const auto& [id, d] : state_.devices) {
      auto g = state_.groups.find(d.group);
      devs[id] = {{"group", d.group},
                  {"enrolled", d.enrolled},
                  {"online", d.last_seen_us > 0 && now - d.last_seen_us < online_us},
                  {"last_seen_unix_s", d.last_seen_us / 1'000'000},
                  {"desired_version", g == state_.groups.end() ? 0 : g->second.rollout.Desired(id)},
                  {"inference_ms", d.status.mean_inference_ms},
                  {"unacked_frames", d.status.unacked_frames},
                  {"uplink_budget_kbps", d.status.uplink_budget_kbps},
                  {"frames_unlabelled", d.frames_unlabelled},
                  {"running_version", d.status.running_version},
                  {"committed_version", d.status.committed_version},
                  {"state", d.status.state},
                  {"fps", d.status.fps},
                  {"frames_stored", d.frames_stored},
                  {"frames_duplicate", d.frames_duplicate},
                  {"store_errors", d.store_errors},
                  {"frames_out_of_credit", d.frames_out_of_credit},
                  {"frames_captured", d.status.frames_captured},
                  {"frames_selected", d.status.frames_selected},
                  {"frames_dropped", d.status.frames_dropped},
                  {"uplink_kbps", d.uplink_kbps},
                  {"downlink_kbps", d.downlink_kbps},
                  {"uplink_bytes", d.uplink_bytes},
                  {"downlink_bytes", d.downlink_bytes},
                  {"reports", d.reports}};
    }
    j["devices"] = devs;
    json grs = json::object();
    for (const auto& [name, g] : state_.groups) {
      json versions = json::array();
      for (const auto& [v, info] : g.history) versions.push_back(VersionToJson(info));
      grs[name] = {{"devices", g.devices},
                   {"latest", g.latest},
                   {"labelled", g.labelled},
                   {"held_out", g.held_out},
                   {"rollout",
                    {{"stage", RolloutStageName(g.rollout.stage())},
                     {"version", g.rollout.version()},
                     {"previous", g.rollout.previous()},
                     {"canary", g.rollout.canary()},
                     {"committed", g.rollout.committed()},
                     {"failures", g.rollout.failures()}}},
                   {"last_round", g.last_round_json.empty() ? json() : json::parse(g.last_round_json)},
                   {"versions", versions}};
    }
    j["groups"] = grs;
    uint64_t backlog = 0, rounds = 0;
    for (const auto& [id, d] : state_.devices) backlog += d.frames_unlabelled;
    for (const auto& [name, g] : state_.groups) rounds += g.rounds;
    j["learner"] = {{"frames_received", state_.frames_received},
                    {"frames_labelled", state_.frames_labelled},
                    {"label_backlog", backlog},
                    {"train_steps", state_.train_steps},
                    {"train_rounds", rounds}};
    j["gate"] = {{"margin", state_.options.gate.margin}};
    j["frames_received"] = state_.frames_received;
    j["ingest_writes"] = state_.ingest_writes;
    j["ingest_frames_per_second"] = state_.pressure.FramesPerSecond();
    j["background_yield_s"] = state_.pressure.paused_seconds();
    j["ingest_frames_per_write"] = state_.ingest_writes ? static_cast<double>(state_.ingest_batched_frames) /
                                                              static_cast<double>(state_.ingest_writes)
                                                        : 0.0;
  }
  j["draining"] = sources_.draining ? sources_.draining->load() : false;
  if (sources_.schedule) j["schedule"] = json::parse(sources_.schedule());
  if (sources_.store) {
    if (auto st = sources_.store->Stats(); st.ok()) {
      j["learner"]["store_bytes"] = st->total_sst_bytes;
      j["learner"]["store_budget_bytes"] = st->max_bytes;
      j["store"] = {{"total_sst_bytes", st->total_sst_bytes},
                    {"max_bytes", st->max_bytes},
                    {"background_errors", st->background_errors},
                    {"writes_stopped", st->writes_stopped}};
    }
  }
  if (sources_.frames) {
    auto fs = sources_.frames->stats();
    j["frames_socket"] = {{"received", fs.received},
                          {"malformed", fs.malformed},
                          {"wrong_device", fs.wrong_device},
                          {"send_failed", fs.send_failed}};
  }
  if (sources_.auth) j["zap_denied"] = sources_.auth->denied();
  j["notices"] = LearnerNotices(state_, sources_, now);
  return j;
}
}  // namespace

std::string AdminStage::StatusJson() const { return StatusDoc(state_, sources_, clock_).dump(); }

std::string AdminStage::RoundsJson(const std::string& group, size_t limit) const {
  std::map<std::string, std::vector<VersionInfo>> groups;
  {
    std::lock_guard lock(state_.mu);
    for (const auto& [name, g] : state_.groups) {
      if (!group.empty() && name != group) continue;
      auto& versions = groups[name];
      for (const auto& [v, info] : g.history) versions.push_back(info);
    }
  }
  json out = json::object();
  for (const auto& [name, versions] : groups) {
    json rounds = json::array();
    if (auto log = catalogue_.LoadRounds(name, limit); log.ok()) {
      for (const std::string& r : *log) {
        json parsed = json::parse(r, nullptr, /*allow_exceptions=*/false);
        if (parsed.is_object()) rounds.push_back(std::move(parsed));
      }
    } else {
      KD_LOG(kWarn) << "round log of " << name << ": " << log.status().ToString();
    }
    json vs = json::array();
    for (const VersionInfo& info : versions) vs.push_back(VersionToJson(info));
    out[name] = {{"rounds", std::move(rounds)}, {"versions", std::move(vs)}};
  }
  return json{{"groups", std::move(out)}}.dump();
}

std::string AdminStage::HandleRequest(const std::string& request) {
  json req;
  try {
    req = json::parse(request);
  } catch (const std::exception& e) {
    return Fail(std::string("request is not JSON: ") + e.what());
  }
  if (!req.is_object()) return Fail("request is not a JSON object");
  try {
    const std::string cmd = req.value(admin::kCmd, "");
    if (cmd == admin::kStatusCmd) return Ok(StatusDoc(state_, sources_, clock_));
    if (cmd == admin::kRoundsCmd) {
      const std::string group = req.value(admin::kGroup, "");
      const int64_t limit = req.value(admin::kLimit, int64_t{0});
      if (limit < 0) return Fail("limit must be >= 0");
      return Ok(json::parse(RoundsJson(group, static_cast<size_t>(limit))));
    }
    if (cmd == admin::kEnrollCmd) {
      const std::string id = req.value(admin::kDevice, ""), key = req.value(admin::kKey, "");
      if (id.empty() || key.empty()) return Fail("enroll needs device and key");
      Status st = EnrollDevice(state_, auth_, id, key);
      if (st.ok()) st = catalogue_.PersistDevices();
      if (!st.ok()) return Fail(st.ToString());
      KD_LOG(kInfo) << "enrolled device " << id;
      return Ok();
    }
    if (cmd == admin::kRevokeCmd) {
      const std::string id = req.value(admin::kDevice, "");
      {
        std::lock_guard lock(state_.mu);
        auto it = state_.devices.find(id);
        if (it == state_.devices.end() || !it->second.enrolled) return Fail("unknown device '" + id + "'");
        it->second.enrolled = false;
      }
      if (auth_) auth_->Revoke(id);
      Status st = catalogue_.PersistDevices();
      if (!st.ok()) return Fail(st.ToString());
      KD_LOG(kWarn) << "revoked device " << id;
      return Ok();
    }
    if (cmd == admin::kRolloutCmd) {
      const std::string group = req.value(admin::kGroup, ""), action = req.value(admin::kAction, "");
      if (action == admin::kRolloutRollback) {
        {
          std::lock_guard lock(state_.mu);
          if (!state_.groups.count(group)) return Fail("unknown group '" + group + "'");
        }
        Status st = publisher_.Revert(group);
        if (!st.ok()) return Fail(st.ToString());
        return Ok();
      }
      if (action != admin::kRolloutStart) {
        std::lock_guard lock(state_.mu);
        if (!state_.groups.count(group)) return Fail("unknown group '" + group + "'");
        return Fail("rollout action must be start or rollback");
      }
      uint64_t version = 0;
      {
        std::lock_guard lock(state_.mu);
        auto it = state_.groups.find(group);
        if (it == state_.groups.end()) return Fail("unknown group '" + group + "'");
        Group& g = it->second;
        version = req.value(admin::kVersion, g.latest);
        if (!g.versions.count(version)) return Fail("group " + group + " has no version " + std::to_string(version));
        if (version != g.latest) return Fail("only the latest version can be rolled out (roll back to go back)");
        g.rollout.Start(version, g.rollout.stage() == RolloutStage::kIdle ? 0 : g.rollout.previous(),
                        clock_.WallMicros());
      }
      Status st = catalogue_.PersistGroup(group);
      if (!st.ok()) return Fail(st.ToString());
      return Ok(json{{"version", version}});
    }
    return Fail("unknown cmd '" + cmd + "' (status, rounds, enroll, revoke, rollout)");
  } catch (const std::exception& e) {  // a field of the wrong JSON type
    return Fail(std::string("bad request: ") + e.what());
  }
}

}  // namespace kd::learner
