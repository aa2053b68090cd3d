#include "learner/catalogue.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "learner/deployed_model.h"
#include "learner/version_json.h"
#include "model/weights_file.h"
#include "update/state.h"

namespace kd::learner {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
// Metadata keys (storage/FORMAT.md, "What kdlearnd keeps here").
constexpr char kGroupsKey[] = "catalogue/groups";       // JSON list of groups with versions
constexpr char kGroupKeyPrefix[] = "catalogue/group/";  // + name: {latest, devices, versions, history}
constexpr char kRolloutKeyPrefix[] = "rollout/";        // + name: Rollout::ToJson
constexpr char kDevicesKey[] = "registry/devices";      // {id: {key, revoked}}
constexpr char kLabelWatermarkPrefix[] = "label_wm/";   // + device: decimal seq
constexpr char kRoundKeyPrefix[] = "round/";            // + group + "/" + 20-digit unix us: round JSON
// Pruning scans the group's round keys: do it once per this many appends, not on every one.
constexpr size_t kPruneEvery = 100;

std::string RoundPrefix(const std::string& group) { return kRoundKeyPrefix + group + "/"; }
}  // namespace

std::string FullArtifactPath(const std::string& artifacts_dir, const VersionInfo& info) {
  return (fs::path(artifacts_dir) / (info.full_sha + ".kdw")).string();
}

std::string DeltaArtifactPath(const std::string& artifacts_dir, const VersionInfo& info) {
  return (fs::path(artifacts_dir) / (info.delta_sha + ".kdd")).string();
}

Catalogue::Catalogue(LoopState& state, storage::SampleStore& store, std::string artifacts_dir)
    : state_(state), store_(store), artifacts_dir_(std::move(artifacts_dir)) {}

Status Catalogue::Load() {
  KD_ASSIGN_OR_RETURN(auto names, store_.GetMeta(kGroupsKey));
  if (!names) return Status::Ok();
  try {
    for (const auto& name : json::parse(*names).get<std::vector<std::string>>()) {
      KD_ASSIGN_OR_RETURN(auto doc, store_.GetMeta(kGroupKeyPrefix + name));
      if (!doc) return Status::Corruption("catalogue lists group '" + name + "' but has no record of it");
      const json j = json::parse(*doc);
      KD_ASSIGN_OR_RETURN(auto rollout_doc, store_.GetMeta(kRolloutKeyPrefix + name));
      std::optional<Rollout> rollout;
      if (rollout_doc) {
        KD_ASSIGN_OR_RETURN(rollout, Rollout::FromJson(*rollout_doc, state_.rollout_options()));
      }
      const uint64_t latest = j.at("latest");
      std::map<uint64_t, VersionInfo> versions, history;
      for (const auto& v : j.at("versions")) {
        auto info = VersionFromJson(v);
        versions[info.version] = info;
      }
      for (const auto& v : j.value("history", json::array())) {
        auto info = VersionFromJson(v);
        history[info.version] = info;
      }
      // The deployed (latest) model, from its full artefact: also the trainer's starting point.
      std::shared_ptr<const DeployedModel> deployed;
      std::shared_ptr<const model::StudentOptions> arch;
      if (latest > 0) {
        auto info = versions.find(latest);
        if (info == versions.end()) {
          return Status::Corruption("catalogue of " + name + ": latest v" + std::to_string(latest) + " has no record");
        }
        KD_ASSIGN_OR_RETURN(auto loaded, model::LoadWeights(FullArtifactPath(artifacts_dir_, info->second)));
        auto weights = update::StateOf(*loaded.student);
        if (update::StateDigest(weights) != info->second.digest) {
          return Status::Corruption("artefact of " + name + " v" + std::to_string(latest) +
                                    " does not match its digest");
        }
        arch = std::make_shared<const model::StudentOptions>(loaded.student->options());
        deployed = std::make_shared<const DeployedModel>(std::move(weights), *loaded.student);
      }
      std::lock_guard lock(state_.mu);
      Group& g = state_.GroupFor(name);
      g.devices.erase(name);  // GroupFor registers its argument as a device; this was a group name
      for (const auto& d : j.at("devices")) g.devices.insert(d.get<std::string>());
      g.latest = latest;
      g.versions = std::move(versions);
      g.history = std::move(history);
      if (rollout) g.rollout = std::move(*rollout);
      if (arch) g.arch = std::move(arch);
      g.deployed = std::move(deployed);
    }
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("catalogue: ") + e.what());
  }
  return Status::Ok();
}

Result<size_t> Catalogue::RebuildFromStore() {
  KD_ASSIGN_OR_RETURN(auto devs, store_.ListDevices());
  size_t n = 0;
  for (const auto& dev : devs) {
    KD_ASSIGN_OR_RETURN(auto wm, store_.GetMeta(kLabelWatermarkPrefix + dev));
    // The STORED column counts what the store holds for the device (then new frames), not what this
    // process happened to receive: a restart must not look like lost frames.
    KD_ASSIGN_OR_RETURN(const uint64_t held, store_.CountFrames(dev));
    std::vector<std::pair<uint64_t, float>> labelled;
    KD_RETURN_IF_ERROR(store_.ScanTeacher(dev, 0, 0, [&](const storage::TeacherRecord& r) {
      labelled.emplace_back(r.seq, r.difficulty);
      return true;
    }));
    std::lock_guard lock(state_.mu);
    if (wm) {
      try {
        state_.label_wm[dev] = std::stoull(*wm);
      } catch (const std::exception&) {
        return Status::Corruption("label watermark of " + dev + " is not a number: '" + *wm + "'");
      }
    }
    state_.Device(dev).frames_stored = held;
    state_.Device(dev).frames_unlabelled = held > labelled.size() ? held - labelled.size() : 0;
    state_.GroupFor(dev);
    for (const auto& [seq, difficulty] : labelled) state_.AddLabelled(dev, seq, difficulty);
    n += labelled.size();
  }
  return n;
}

Status Catalogue::PersistGroup(const std::string& name) {
  std::lock_guard persisting(persist_mu_);
  std::string group_doc, rollout_doc, names_doc;
  {
    std::lock_guard lock(state_.mu);
    auto it = state_.groups.find(name);
    if (it == state_.groups.end()) return Status::NotFound("group " + name);
    const Group& g = it->second;
    json versions = json::array();
    for (const auto& [v, info] : g.versions) versions.push_back(VersionToJson(info));
    json history = json::array();
    for (const auto& [v, info] : g.history) history.push_back(VersionToJson(info));
    group_doc = json{{"latest", g.latest}, {"devices", g.devices}, {"versions", versions}, {"history", history}}.dump();
    rollout_doc = g.rollout.ToJson();
    std::vector<std::string> names;
    for (const auto& [other_name, other] : state_.groups) {
      if (!other.versions.empty()) names.push_back(other_name);
    }
    names_doc = json(names).dump();
  }
  KD_RETURN_IF_ERROR(store_.PutMeta(kGroupKeyPrefix + name, group_doc));
  KD_RETURN_IF_ERROR(store_.PutMeta(kRolloutKeyPrefix + name, rollout_doc));
  return store_.PutMeta(kGroupsKey, names_doc);
}

Status Catalogue::PersistDevices() {
  std::lock_guard persisting(persist_mu_);
  json j = json::object();
  {
    std::lock_guard lock(state_.mu);
    for (const auto& [id, d] : state_.devices) {
      if (!d.public_key.empty()) j[id] = {{"key", d.public_key}, {"revoked", !d.enrolled}};
    }
  }
  return store_.PutMeta(kDevicesKey, j.dump());
}

Result<std::vector<DeviceRecord>> Catalogue::LoadDevices() const {
  KD_ASSIGN_OR_RETURN(auto persisted, store_.GetMeta(kDevicesKey));
  std::vector<DeviceRecord> out;
  if (!persisted) return out;
  try {
    const json registry = json::parse(*persisted);
    for (const auto& [id, v] : registry.items()) {
      out.push_back({id, v.at("key").get<std::string>(), v.value("revoked", false)});
    }
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("registry/devices: ") + e.what());
  }
  return out;
}

Status Catalogue::PersistLabelWatermark(const std::string& device_id, uint64_t seq) {
  return store_.PutMeta(kLabelWatermarkPrefix + device_id, std::to_string(seq));
}

}  // namespace kd::learner

namespace kd::learner {

Status Catalogue::AppendRound(const std::string& group, int64_t time_us, const std::string& round_json) {
  char stamp[24];
  std::snprintf(stamp, sizeof stamp, "%020lld", static_cast<long long>(std::max<int64_t>(0, time_us)));
  KD_RETURN_IF_ERROR(store_.PutMeta(RoundPrefix(group) + stamp, round_json));
  std::lock_guard lock(rounds_mu_);
  if (++rounds_since_prune_[group] < kPruneEvery) return Status::Ok();
  rounds_since_prune_[group] = 0;
  std::vector<std::string> keys;
  KD_RETURN_IF_ERROR(store_.ScanMeta(RoundPrefix(group), [&](std::string_view key, std::string_view) {
    keys.emplace_back(key);
    return true;
  }));
  for (size_t i = 0; i + kMaxRoundsPerGroup < keys.size(); ++i) KD_RETURN_IF_ERROR(store_.DeleteMeta(keys[i]));
  return Status::Ok();
}

Result<std::vector<std::string>> Catalogue::LoadRounds(const std::string& group, size_t limit) const {
  std::vector<std::string> rounds;
  KD_RETURN_IF_ERROR(store_.ScanMeta(RoundPrefix(group), [&](std::string_view, std::string_view bytes) {
    rounds.emplace_back(bytes);
    return true;
  }));
  if (limit > 0 && rounds.size() > limit) rounds.erase(rounds.begin(), rounds.end() - static_cast<long>(limit));
  return rounds;
}

}  // namespace kd::learner
