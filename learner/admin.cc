#include "learner/admin.h"

#include <chrono>

#include "base/log.h"
#include "learner/version_json.h"
#include "wire/admin_commands.h"

namespace kd::learner {
using json = nlohmann::json;
namespace admin = wire::admin;

namespace {
// A device is online while it was heard from within this many heartbeat timeouts.
constexpr int64_t kOnlineTimeouts = 3;

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
    auto r =
        server.ServeOne(std::chrono::milliseconds(100), [this](const std::string& req) { return HandleRequest(req); });
    if (!r.ok() && stopping) break;
  }
}

namespace {
json StatusDoc(const LoopState& state_, const StatusSources& sources_, const Clock& clock_) {
  const int64_t now = clock_.WallMicros();
  const int64_t online_us = kOnlineTimeouts * state_.options.server.timeout_ms * 1000;
  json j;
  {
    std::lock_guard lock(state_.mu);
    json devs = json::object();
    for (const auto& [id, d] : state_.devices) {
      devs[id] = {{"group", d.group},
                  {"enrolled", d.enrolled},
                  {"online", d.last_seen_us > 0 && now - d.last_seen_us < online_us},
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
    j["frames_received"] = state_.frames_received;
    j["ingest_writes"] = state_.ingest_writes;
    j["ingest_frames_per_write"] = state_.ingest_writes ? static_cast<double>(state_.ingest_batched_frames) /
                                                              static_cast<double>(state_.ingest_writes)
                                                        : 0.0;
  }
  j["draining"] = sources_.draining ? sources_.draining->load() : false;
  if (sources_.store) {
    if (auto st = sources_.store->Stats(); st.ok()) {
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
  return j;
}
}  // namespace

std::string AdminStage::StatusJson() const { return StatusDoc(state_, sources_, clock_).dump(); }

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
    return Fail("unknown cmd '" + cmd + "' (status, enroll, revoke, rollout)");
  } catch (const std::exception& e) {  // a field of the wrong JSON type
    return Fail(std::string("bad request: ") + e.what());
  }
}

}  // namespace kd::learner
