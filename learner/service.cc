#include "learner/service.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/assets.h"
#include "base/clock.h"
#include "base/log.h"
#include "config/distill_options.h"
#include "learner/dataset.h"
#include "learner/distiller.h"
#include "learner/preflight.h"
#include "learner/rollout.h"
#include "learner/teacher_record.h"
#include "media/image_ops.h"
#include "model/checked_run.h"
#include "model/teacher.h"
#include "model/threads.h"
#include "model/weights_file.h"
#include "storage/replay_sampler.h"
#include "storage/sample_store.h"
#include "wire/admin_commands.h"
#include "wire/curve_keys.h"
#include "wire/endpoint.h"
#include "wire/message.h"

#include "update/delta.h"
#include "update/file_io.h"
#include "update/manifest.h"
#include "update/signing.h"
#include "update/state.h"

namespace kd::learner {
namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::milliseconds;

namespace {

int64_t NowUs() { return SystemClock::Get().WallMicros(); }

// A held-out frame is chosen by a hash of its seq (not a counter), so the split is the same after a
// restart and does not depend on arrival order.
bool IsHoldout(uint64_t seq, int every) {
  uint64_t z = seq + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return z % static_cast<uint64_t>(every) == 0;
}

Result<std::string> ReadRange(const std::string& path, uint64_t offset, uint64_t length) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("artefact " + path);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(length, '\0');
  in.read(out.data(), static_cast<std::streamsize>(length));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

torch::Device PickDevice(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) == 0) return torch::Device(name);
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

// One published student version of a group (persisted as JSON in the store's metadata).
struct VersionInfo {
  uint64_t version = 0;
  uint64_t delta_base = 0;  // the version the delta applies to (0 = no delta)
  uint64_t revert_of = 0;   // != 0: these are the weights of that older version, republished
  std::string digest, arch_hash;
  std::string full_sha, delta_sha;
  uint64_t full_size = 0, delta_size = 0;
  double ap50 = -1, ap50_base = -1;
  uint64_t holdout_frames = 0;
  int64_t created_unix_s = 0;
  update::DeltaStats delta_stats;

  json ToJson() const {
    return json{{"version", version},
                {"delta_base", delta_base},
                {"revert_of", revert_of},
                {"digest", digest},
                {"arch_hash", arch_hash},
                {"full_sha", full_sha},
                {"delta_sha", delta_sha},
                {"full_size", full_size},
                {"delta_size", delta_size},
                {"ap50", ap50},
                {"ap50_base", ap50_base},
                {"holdout_frames", holdout_frames},
                {"created_unix_s", created_unix_s}};
  }
  static VersionInfo FromJson(const json& j) {
    VersionInfo v;
    v.version = j.at("version");
    v.delta_base = j.at("delta_base");
    v.revert_of = j.at("revert_of");
    v.digest = j.at("digest");
    v.arch_hash = j.at("arch_hash");
    v.full_sha = j.at("full_sha");
    v.delta_sha = j.at("delta_sha");
    v.full_size = j.at("full_size");
    v.delta_size = j.at("delta_size");
    v.ap50 = j.at("ap50");
    v.ap50_base = j.at("ap50_base");
    v.holdout_frames = j.at("holdout_frames");
    v.created_unix_s = j.at("created_unix_s");
    return v;
  }
};

struct DeviceInfo {
  std::string group;
  std::string public_key;  // Z85 CURVE key ("" = insecure mode or static without key)
  bool enrolled = false;
  int64_t last_seen_us = 0;
  wire::EdgeStatus status;
  uint64_t running_version = 0;
  // frames_stored: frames held in the store at start-up plus those stored since (retention may
  // have removed some since); duplicates and errors count this process's arrivals.
  uint64_t frames_stored = 0, frames_duplicate = 0, store_errors = 0;
  uint64_t frames_out_of_credit = 0;  // sent beyond the credit window: refused with OUT_OF_CREDIT
  uint64_t uplink_bytes = 0, downlink_bytes = 0;
  uint64_t last_uplink_bytes = 0, last_downlink_bytes = 0;
  double uplink_kbps = 0, downlink_kbps = 0;  // payload kbit/s, EMA over ~30 s
  std::vector<std::string> reports;           // recent install reports (bounded)
};

// The training side of a group: touched by the trainer thread only.
struct Trainer {
  model::Student student{nullptr};
  std::unique_ptr<Distiller> distiller;
  uint64_t rounds = 0;
};

struct Group {
  std::string name;
  std::set<std::string> devices;
  std::optional<storage::ReplaySampler> sampler;
  std::map<std::string, std::deque<uint64_t>> holdout;  // device -> newest held-out seqs
  uint64_t labelled = 0, held_out = 0;
  std::map<uint64_t, VersionInfo> versions;  // with artefacts on disk (the last keep_versions + 1)
  std::map<uint64_t, VersionInfo> history;   // every published version's record (bounded), for status
  uint64_t latest = 0;
  Rollout rollout;
  std::optional<model::StudentOptions> arch;
  std::shared_ptr<const update::TensorMap> deployed_state;                // of `latest`
  std::shared_ptr<const model::FusedStudent> deployed_fused;              // for difficulty at labelling time
  std::map<std::string, std::pair<int64_t, std::string>> manifest_cache;  // key -> (expires, blob)
  std::shared_ptr<Trainer> trainer;
  json last_round;  // the latest gate decision, for status
};

}  // namespace

struct LearnerService::Impl {
  config::LearnerOptions opt;
  config::DistillOptions recipe;
  torch::Device device{torch::kCPU};
  std::string artifacts_dir;
  std::string admin_ep;
  std::optional<update::SigningKeyPair> signing_key;

  std::unique_ptr<storage::SampleStore> store;
  std::unique_ptr<model::CenterNetTeacher> teacher;
  std::optional<model::LoadedStudent> bootstrap;

  std::unique_ptr<wire::Context> ctx;
  std::unique_ptr<wire::Authenticator> auth;
  std::unique_ptr<wire::Server> frames, control;
  std::unique_ptr<wire::AdminServer> admin;

  std::mutex publish_mu;  // serialises Publish (trainer thread vs a kdctl rollback on the admin thread)
  mutable std::mutex mu;  // guards everything below
  std::map<std::string, DeviceInfo> devices;
  std::map<std::string, Group> groups;
  std::map<std::string, uint64_t> label_wm;  // device -> highest labelled seq
  std::map<std::string, std::string> static_group_of;
  uint64_t frames_received = 0, frames_rejected = 0;
  uint64_t ingest_writes = 0, ingest_batched_frames = 0;  // group commit: synced writes and their frames
  int64_t last_rate_us = 0;

  std::atomic<bool> draining{false}, stopping{false};
  std::mutex wake_mu;
  std::condition_variable wake_labeller;
  std::vector<std::thread> threads;
  bool stopped = false;

  // ---- set-up -------------------------------------------------------------------------------
  Status Init();
  Status LoadCatalogue();
  Status RebuildFromStore();
  Status Enroll(const std::string& id, const std::string& key, bool persist);
  Status PersistDevices();
  Group& GroupFor(const std::string& device);  // REQUIRES: mu held
  std::string GroupNameOf(const std::string& device) const;

  // ---- stages -------------------------------------------------------------------------------
  void IngestLoop();
  // Hello/heartbeat (credits) and anything unexpected on the frames socket.
  void HandleIngestMessage(const wire::Incoming& in);
  // One synced write for `batch` (frames only), then an ACK or an ERROR for each.
  void StoreAndAck(const std::vector<wire::Incoming>& batch);
  void LabelLoop();
  void TrainLoop();
  void ControlLoop();
  void AdminLoop();

  Status LabelSome(const std::string& device, bool* did_work);
  bool TrainRound(const std::string& group_name);
  Result<DistillDataset> Assemble(const std::vector<std::pair<std::string, uint64_t>>& keys);
  Result<double> EvaluateState(const model::StudentOptions& arch, const update::TensorMap& state,
                               const DistillDataset& data);
  // Publishes `state` as the group's next version. `delta`: the delta from the deployed version that
  // produced `state` (its reconstruction), or nullptr to encode one here (used only if exact).
  // `based_on`: the latest version the candidate was made and gated against; if another publish
  // (a rollback from kdctl) came in between, the candidate is stale: FailedPrecondition, nothing
  // published. Publishes are serialised (publish_mu), so version numbers are never shared.
  Status Publish(const std::string& group_name, const update::TensorMap& state, uint64_t revert_of, double ap50,
                 double ap50_base, uint64_t holdout_frames, const update::EncodedDelta* delta = nullptr,
                 std::optional<uint64_t> based_on = std::nullopt);
  Status PersistGroup(const Group& g);  // REQUIRES: mu held
  Status RevertRollout(const std::string& group_name);
  Result<std::string> ManifestFor(Group& g, uint64_t version, bool full);  // REQUIRES: mu held

  wire::Message Reply(const wire::Header& req, wire::MsgType type) const {
    wire::Message m;
    m.header.type = type;
    m.header.device_id = req.device_id;
    m.header.seq = req.seq;
    m.header.send_time_us = NowUs();
    return m;
  }
  std::string HandleAdmin(const std::string& request);
  json StatusDoc() const;
  void Stop();
};

// ---------------------------------------------------------------------------------------------
// Set-up

Status LearnerService::Impl::Init() {
  model::SetComputeThreads(opt.training.threads);
  model::TuneAllocatorForTensors();
  device = PickDevice(opt.training.device);
  if (!opt.training.recipe.empty()) {
    KD_ASSIGN_OR_RETURN(recipe, config::LoadDistillOptions(opt.training.recipe));
  }
  for (const auto& g : opt.groups) {
    for (const auto& d : g.devices) static_group_of[d] = g.name;
  }

  storage::StoreOptions so;
  so.path = opt.store.path;
  so.max_bytes = opt.store.max_bytes;
  so.ttl_seconds = opt.store.ttl_seconds;
  so.sync_writes = opt.store.sync_writes;
  KD_ASSIGN_OR_RETURN(store, storage::SampleStore::Open(so));
  artifacts_dir = (fs::path(opt.store.path) / "artifacts").string();
  std::error_code ec;
  fs::create_directories(artifacts_dir, ec);
  if (ec) return Status::IOError("cannot create " + artifacts_dir + ": " + ec.message());

  // Updates are always signed (the config requires the key, insecure or not).
  KD_ASSIGN_OR_RETURN(signing_key, update::ReadSigningKey(opt.publish.signing_key));

  const std::string teacher_path = TeacherModelPath(opt);
  auto teacher_or = model::CenterNetTeacher::Load(teacher_path, device);
  if (!teacher_or.ok()) return teacher_or.status().WithContext("teacher " + teacher_path);
  teacher = std::move(teacher_or).value();

  if (!opt.training.bootstrap.empty()) {
    KD_ASSIGN_OR_RETURN(auto b, model::LoadWeights(opt.training.bootstrap));
    bootstrap = std::move(b);
    // The student's classes and its one-to-one branch come from the bootstrap model. CAKD trains
    // the one-to-one branch on cross-head predictions, so an NMS-free bootstrap needs CrossKD too.
    recipe.cakd = bootstrap->student->options().one_to_one;
    if (recipe.cakd && !recipe.crosskd) {
      KD_LOG(kWarn) << "training.bootstrap is NMS-free (one-to-one branch): CAKD trains that branch on cross-head "
                       "predictions, so crosskd is turned on for this learner";
      recipe.crosskd = true;
    }
    KD_RETURN_IF_ERROR(recipe.Validate().WithContext("training.recipe with training.bootstrap"));
  }
  KD_RETURN_IF_ERROR(LoadCatalogue());
  KD_RETURN_IF_ERROR(RebuildFromStore());

  // Sockets: the ZAP handler first (a CURVE server without one accepts any client key).
  ctx = std::make_unique<wire::Context>();
  std::optional<wire::CurveKeyPair> server_keys;
  if (!opt.server.insecure) {
    KD_ASSIGN_OR_RETURN(auto keys, wire::ReadCurveKeyPair(opt.server.secret_key));
    server_keys = keys;
    KD_ASSIGN_OR_RETURN(auth, wire::Authenticator::Start(*ctx));
  }
  for (const auto& d : opt.devices) {
    std::string key;
    if (!d.key.empty()) {
      KD_ASSIGN_OR_RETURN(key, wire::ReadCurvePublicKey(d.key));
    }
    KD_RETURN_IF_ERROR(Enroll(d.id, key, /*persist=*/false));
  }
  {
    auto persisted = store->GetMeta("registry/devices");
    if (!persisted.ok()) return persisted.status();
    if (*persisted) {
      try {
        // The parsed document must outlive the loop (a temporary in the range would not, in C++20).
        const json registry = json::parse(**persisted);
        for (const auto& [id, v] : registry.items()) {
          if (v.value("revoked", false)) {
            // A kdctl revocation outlives restarts, also for devices listed in the config file.
            std::lock_guard lock(mu);
            devices[id].enrolled = false;
            devices[id].public_key = v.at("key").get<std::string>();
            if (auth) auth->Revoke(id);
            continue;
          }
          KD_RETURN_IF_ERROR(Enroll(id, v.at("key").get<std::string>(), false));
        }
      } catch (const std::exception& e) {
        return Status::Corruption(std::string("registry/devices: ") + e.what());
      }
    }
  }
  wire::Limits limits;
  limits.max_payload_bytes = static_cast<size_t>(opt.server.max_frame_bytes);
  wire::ServerOptions fo;
  fo.endpoint = opt.server.frames_endpoint;
  fo.curve = server_keys;
  fo.limits = limits;
  fo.heartbeat_ivl_ms = opt.server.heartbeat_ms;
  fo.heartbeat_timeout_ms = opt.server.timeout_ms;
  fo.heartbeat_ttl_ms = opt.server.timeout_ms;
  fo.authenticator = auth.get();
  KD_ASSIGN_OR_RETURN(frames, wire::Server::Bind(*ctx, fo));
  wire::ServerOptions co = fo;
  co.endpoint = opt.server.control_endpoint;
  co.limits.max_payload_bytes = std::max<size_t>(1 << 20, static_cast<size_t>(opt.publish.chunk_bytes) * 2);
  co.linger_ms = 1000;
  KD_ASSIGN_OR_RETURN(control, wire::Server::Bind(*ctx, co));
  admin_ep = opt.server.admin_endpoint.empty() ? "ipc://" + (fs::path(opt.store.path) / "admin.sock").string()
                                               : opt.server.admin_endpoint;
  KD_ASSIGN_OR_RETURN(admin, wire::AdminServer::Bind(*ctx, admin_ep));

  threads.emplace_back([this] { IngestLoop(); });
  threads.emplace_back([this] { LabelLoop(); });
  threads.emplace_back([this] { TrainLoop(); });
  threads.emplace_back([this] { ControlLoop(); });
  threads.emplace_back([this] { AdminLoop(); });
  KD_LOG(kInfo) << "kdlearnd ready: frames " << frames->bound_endpoint() << ", control " << control->bound_endpoint()
                << ", admin " << admin_ep << ", device " << device.str() << ", "
                << (opt.server.insecure ? "INSECURE (no CURVE)" : "CURVE + ZAP allowlist");
  if (opt.server.insecure) {
    KD_LOG(kWarn) << "INSECURE: server.insecure = true: frames and control travel in plaintext and any process "
                     "that reaches "
                  << opt.server.frames_endpoint << " can send frames as any device (loopback only; for tests and labs)";
  }
  return Status::Ok();
}

std::string LearnerService::Impl::GroupNameOf(const std::string& device_id) const {
  auto it = static_group_of.find(device_id);
  return it != static_group_of.end() ? it->second : device_id;  // default: one student per camera
}

Group& LearnerService::Impl::GroupFor(const std::string& device_id) {
  const std::string name = GroupNameOf(device_id);
  auto it = groups.find(name);
  if (it == groups.end()) {
    Group g;
    g.name = name;
    storage::ReplaySamplerOptions ro;
    ro.reservoir_capacity = static_cast<size_t>(opt.training.replay_capacity);
    ro.fresh_window = static_cast<size_t>(opt.training.fresh_window);
    ro.fresh_fraction = opt.training.fresh_fraction;
    ro.seed = opt.training.seed;
    g.sampler = storage::ReplaySampler::Create(ro).value();
    RolloutOptions rop;
    rop.canary = opt.rollout.canary;
    rop.canary_probation_s = opt.rollout.canary_probation_s;
    rop.failure_threshold = opt.rollout.failure_threshold;
    g.rollout = Rollout(rop);
    it = groups.emplace(name, std::move(g)).first;
  }
  it->second.devices.insert(device_id);
  return it->second;
}

Status LearnerService::Impl::Enroll(const std::string& id, const std::string& key, bool persist) {
  if (auth && !key.empty()) KD_RETURN_IF_ERROR(auth->Allow(key, id));
  {
    std::lock_guard lock(mu);
    auto& d = devices[id];
    d.group = GroupNameOf(id);
    d.public_key = key;
    d.enrolled = true;
    GroupFor(id);
  }
  if (persist) return PersistDevices();
  return Status::Ok();
}

Status LearnerService::Impl::PersistDevices() {
  json j = json::object();
  {
    std::lock_guard lock(mu);
    for (const auto& [id, d] : devices) {
      if (!d.public_key.empty()) j[id] = {{"key", d.public_key}, {"revoked", !d.enrolled}};
    }
  }
  return store->PutMeta("registry/devices", j.dump());
}

Status LearnerService::Impl::LoadCatalogue() {
  KD_ASSIGN_OR_RETURN(auto names, store->GetMeta("catalogue/groups"));
  if (!names) return Status::Ok();
  try {
    for (const auto& name : json::parse(*names).get<std::vector<std::string>>()) {
      KD_ASSIGN_OR_RETURN(auto doc, store->GetMeta("catalogue/group/" + name));
      if (!doc) return Status::Corruption("catalogue lists group '" + name + "' but has no record of it");
      auto j = json::parse(*doc);
      std::lock_guard lock(mu);
      Group& g = GroupFor(name);
      g.devices.erase(name);  // GroupFor registers its argument as a device; this was a group name
      for (const auto& d : j.at("devices")) g.devices.insert(d.get<std::string>());
      g.latest = j.at("latest");
      for (const auto& v : j.at("versions")) {
        auto info = VersionInfo::FromJson(v);
        g.versions[info.version] = info;
      }
      for (const auto& v : j.value("history", json::array())) {
        auto info = VersionInfo::FromJson(v);
        g.history[info.version] = info;
      }
      KD_ASSIGN_OR_RETURN(auto ro, store->GetMeta("rollout/" + name));
      if (ro) {
        KD_ASSIGN_OR_RETURN(g.rollout,
                            Rollout::FromJson(*ro, RolloutOptions{opt.rollout.canary, opt.rollout.canary_probation_s,
                                                                  opt.rollout.failure_threshold}));
      }
      // The deployed (latest) model, from its full artefact: also the trainer's starting point.
      if (g.latest > 0) {
        const auto& info = g.versions.at(g.latest);
        KD_ASSIGN_OR_RETURN(auto loaded,
                            model::LoadWeights((fs::path(artifacts_dir) / (info.full_sha + ".kdw")).string()));
        auto state = update::StateOf(*loaded.student);
        if (update::StateDigest(state) != info.digest) {
          return Status::Corruption("artefact of " + name + " v" + std::to_string(g.latest) +
                                    " does not match its digest");
        }
        g.arch = loaded.student->options();
        g.deployed_state = std::make_shared<update::TensorMap>(std::move(state));
        g.deployed_fused = std::make_shared<model::FusedStudent>(*loaded.student);
      }
    }
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("catalogue: ") + e.what());
  }
  return Status::Ok();
}

Status LearnerService::Impl::PersistGroup(const Group& g) {
  json versions = json::array();
  for (const auto& [v, info] : g.versions) versions.push_back(info.ToJson());
  json history = json::array();
  for (const auto& [v, info] : g.history) history.push_back(info.ToJson());
  json doc{{"latest", g.latest}, {"devices", g.devices}, {"versions", versions}, {"history", history}};
  KD_RETURN_IF_ERROR(store->PutMeta("catalogue/group/" + g.name, doc.dump()));
  KD_RETURN_IF_ERROR(store->PutMeta("rollout/" + g.name, g.rollout.ToJson()));
  std::vector<std::string> names;
  for (const auto& [name, other] : groups) {
    if (!other.versions.empty()) names.push_back(name);
  }
  return store->PutMeta("catalogue/groups", json(names).dump());
}

// Replay and hold-out state are derived data: rebuilt from the teacher records after a restart.
Status LearnerService::Impl::RebuildFromStore() {
  KD_ASSIGN_OR_RETURN(auto devs, store->ListDevices());
  size_t n = 0;
  for (const auto& dev : devs) {
    KD_ASSIGN_OR_RETURN(auto wm, store->GetMeta("label_wm/" + dev));
    // The STORED column counts what the store holds for the device (then new frames), not what this
    // process happened to receive: a restart must not look like lost frames.
    KD_ASSIGN_OR_RETURN(const uint64_t held, store->CountFrames(dev));
    std::lock_guard lock(mu);
    if (wm) label_wm[dev] = std::stoull(*wm);
    {
      auto& d = devices[dev];
      d.frames_stored = held;
      if (d.group.empty()) d.group = GroupNameOf(dev);
    }
    Group& g = GroupFor(dev);
    KD_RETURN_IF_ERROR(store->ScanTeacher(dev, 0, 0, [&](const storage::TeacherRecord& r) {
      if (IsHoldout(r.seq, opt.gate.holdout_every)) {
        auto& h = g.holdout[dev];
        h.push_back(r.seq);
        while (h.size() > static_cast<size_t>(opt.gate.holdout_window)) h.pop_front();
        ++g.held_out;
      } else {
        (void)g.sampler->Add({dev, r.seq, r.difficulty});
        ++g.labelled;
      }
      ++n;
      return true;
    }));
  }
  // Bootstrap: the factory model is version 1 of every group that has no catalogue yet (devices
  // ship with it). Groups created later get it on their first use (TrainRound).
  if (n > 0) {
    KD_LOG(kInfo) << "rebuilt replay and hold-out sets from " << n << " stored teacher records";
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Ingest: store first, then acknowledge.

void LearnerService::Impl::IngestLoop() {
  // Group commit: the frames already waiting on the socket are stored with one synced write and
  // acknowledged after it, so many frames become durable per fdatasync. At most kMaxBatch frames
  // per write keep the first frame's ack latency bounded.
  constexpr size_t kMaxBatch = 256;
  std::vector<wire::Incoming> batch;
  while (!stopping) {
    auto in = frames->Receive(milliseconds(100));
    if (!in.ok()) {
      if (stopping) break;
      KD_LOG(kWarn) << "ingest: " << in.status().ToString();
      continue;
    }
    if (!*in) continue;
    batch.clear();
    for (;;) {
      if ((*in)->message.header.type == wire::MsgType::kFrame) {
        batch.push_back(std::move(**in));
      } else {
        HandleIngestMessage(**in);
      }
      if (batch.size() >= kMaxBatch) break;
      in = frames->Receive(milliseconds(0));  // only what is already here: never wait to fill a batch
      if (!in.ok() || !*in) break;
    }
    if (!batch.empty()) StoreAndAck(batch);
  }
}

void LearnerService::Impl::HandleIngestMessage(const wire::Incoming& in) {
  const auto& h = in.message.header;
  const uint32_t credits = draining ? 0u : static_cast<uint32_t>(opt.server.credits);
  switch (h.type) {
    case wire::MsgType::kHello:
    case wire::MsgType::kHeartbeat: {
      {
        std::lock_guard lock(mu);
        auto& d = devices[h.device_id];
        d.last_seen_us = NowUs();
        if (d.group.empty()) d.group = GroupNameOf(h.device_id);
      }
      auto r = Reply(h, h.type == wire::MsgType::kHello ? wire::MsgType::kCredit : wire::MsgType::kHeartbeat);
      r.header.credits = credits;
      (void)frames->Send(in.peer, r);
      break;
    }
    default:
      ++frames_rejected;
      (void)frames->Send(in.peer,
                         wire::MakeError(h, wire::ErrorCode::kBadHeader,
                                         std::string("unexpected on the frames socket: ") + wire::MsgTypeName(h.type)));
  }
}

void LearnerService::Impl::StoreAndAck(const std::vector<wire::Incoming>& batch) {
  const uint32_t credits = draining ? 0u : static_cast<uint32_t>(opt.server.credits);
  // Credits are a window of un-acknowledged frames per device. Every frame of this batch is
  // un-acknowledged until its write returns, so a device with more than its window in one batch
  // sent beyond its credits: those frames get OUT_OF_CREDIT (not stored, not acked; the edge keeps
  // and resends them).
  std::map<std::string, uint32_t> in_window;
  std::vector<storage::FrameRecord> records;
  std::vector<size_t> record_of(batch.size(), SIZE_MAX);
  const int64_t now = NowUs();
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& h = batch[i].message.header;
    if (++in_window[h.device_id] > static_cast<uint32_t>(opt.server.credits)) continue;  // the window granted
    storage::FrameRecord rec;
    rec.device_id = h.device_id;
    rec.seq = h.seq;
    rec.capture_time_us = h.capture_time_us;
    rec.received_time_us = now;
    rec.jpeg.assign(batch[i].message.payload.begin(), batch[i].message.payload.end());
    record_of[i] = records.size();
    records.push_back(std::move(rec));
  }
  const std::vector<storage::SampleStore::PutResult> results = store->PutFrames(records);  // the one sync
  {
    std::lock_guard lock(mu);
    ++ingest_writes;
    ingest_batched_frames += records.size();
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto& h = batch[i].message.header;
      auto& d = devices[h.device_id];
      d.last_seen_us = now;
      d.uplink_bytes += batch[i].message.payload.size();
      if (d.group.empty()) d.group = GroupNameOf(h.device_id);
      if (record_of[i] == SIZE_MAX) {
        ++d.frames_out_of_credit;
        continue;
      }
      const auto& r = results[record_of[i]];
      if (r.status.ok()) {
        ++(r.duplicate ? d.frames_duplicate : d.frames_stored);
        ++frames_received;
      } else {
        ++d.store_errors;
      }
    }
  }
  bool stored_any = false;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& h = batch[i].message.header;
    const std::string& peer = batch[i].peer;
    if (record_of[i] == SIZE_MAX) {
      (void)frames->Send(peer, wire::MakeError(h, wire::ErrorCode::kOutOfCredit,
                                               "more than " + std::to_string(credits) + " frames un-acknowledged"));
      continue;
    }
    const Status& st = results[record_of[i]].status;
    if (!st.ok()) {
      // No ack: the edge keeps the frame and resends it once we can store again.
      KD_LOG(kWarn) << "ingest: " << h.device_id << " seq " << h.seq << ": " << st.ToString();
      const auto code = st.IsNoSpace() ? wire::ErrorCode::kStorageFull : wire::ErrorCode::kStorageError;
      (void)frames->Send(peer, wire::MakeError(h, code, st.message()));
      continue;
    }
    auto ack = Reply(h, wire::MsgType::kAck);
    ack.header.ack_seq = h.seq;
    ack.header.credits = credits;
    (void)frames->Send(peer, ack);
    stored_any = true;
  }
  if (stored_any) wake_labeller.notify_one();
}

// ---------------------------------------------------------------------------------------------
// Labelling: the teacher runs over stored frames beyond each camera's watermark, in batches.

void LearnerService::Impl::LabelLoop() {
  while (!stopping) {
    bool did_work = false;
    auto devs = store->ListDevices();
    if (devs.ok()) {
      for (const auto& dev : *devs) {
        if (stopping) break;
        Status st;
        try {
          st = LabelSome(dev, &did_work);
        } catch (const std::exception& e) {  // a LibTorch failure: logged, never the end of the daemon
          std::string what = e.what();
          what.resize(std::min(what.size(), what.find('\n')));
          st = Status::Internal(what);
        }
        if (!st.ok()) {
          KD_LOG(kWarn) << "labeller: " << dev << ": " << st.ToString();
        }
      }
    }
    if (!did_work) {
      std::unique_lock lock(wake_mu);
      wake_labeller.wait_for(lock, milliseconds(500));
    }
  }
}

Status LearnerService::Impl::LabelSome(const std::string& dev, bool* did_work) {
  uint64_t wm = 0;
  std::shared_ptr<const model::FusedStudent> student;
  {
    std::lock_guard lock(mu);
    wm = label_wm[dev];
    student = GroupFor(dev).deployed_fused;
  }
  std::vector<media::Frame> frames_batch;
  std::vector<uint64_t> seqs;
  uint64_t last = wm;
  KD_RETURN_IF_ERROR(
      store->ScanFrames(dev, wm + 1, static_cast<size_t>(opt.teacher.batch), [&](const storage::FrameRecord& f) {
        last = f.seq;
        auto frame = media::DecodeJpeg(f.jpeg);
        if (!frame.ok()) {
          KD_LOG(kWarn) << "labeller: " << dev << " seq " << f.seq << " is not a decodable JPEG; skipped";
          return true;
        }
        frame->index = static_cast<int64_t>(f.seq);
        if (!frames_batch.empty() &&
            (frame->width != frames_batch[0].width || frame->height != frames_batch[0].height)) {
          last = seqs.back();  // a size change starts the next batch
          return false;
        }
        frames_batch.push_back(std::move(frame).value());
        seqs.push_back(f.seq);
        return true;
      }));
  if (last == wm) return Status::Ok();
  *did_work = true;
  if (!frames_batch.empty()) {
    DatasetOptions dopt;
    dopt.student_long_side = opt.training.student_long_side;
    dopt.teacher_long_side = opt.teacher.long_side;
    dopt.teacher_min_score = static_cast<float>(opt.teacher.min_score);
    if (student) {
      dopt.labels = student->options().labels;
      // The teacher targets live on the deployed student's grid.
      const auto& so = student->options();
      dopt.student_long_side = std::max(so.input_width, so.input_height);
    }
    DatasetBuilder builder(*teacher, dopt);
    KD_RETURN_IF_ERROR(builder.AddBatch(frames_batch));
    KD_ASSIGN_OR_RETURN(auto data, std::move(builder).Finish());
    std::vector<size_t> rows(data.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
    std::vector<float> difficulty =
        student ? StudentDisagreement(*student, data, rows) : std::vector<float>(rows.size(), 1.f);
    for (size_t i = 0; i < rows.size(); ++i) {
      auto blob = EncodeTeacherRow(data, i);
      KD_RETURN_IF_ERROR(store->PutTeacher(dev, seqs[i], blob, difficulty[i], kTeacherBlobSchema));
    }
    std::lock_guard lock(mu);
    Group& g = GroupFor(dev);
    for (size_t i = 0; i < rows.size(); ++i) {
      if (IsHoldout(seqs[i], opt.gate.holdout_every)) {
        auto& h = g.holdout[dev];
        h.push_back(seqs[i]);
        while (h.size() > static_cast<size_t>(opt.gate.holdout_window)) h.pop_front();
        ++g.held_out;
      } else {
        (void)g.sampler->Add({dev, seqs[i], difficulty[i]});
        ++g.labelled;
      }
    }
  }
  {
    std::lock_guard lock(mu);
    label_wm[dev] = last;
  }
  return store->PutMeta("label_wm/" + dev, std::to_string(last));
}

// ---------------------------------------------------------------------------------------------
// Training rounds, the gate and publishing.

Result<DistillDataset> LearnerService::Impl::Assemble(const std::vector<std::pair<std::string, uint64_t>>& keys) {
  DatasetAssembler as;
  for (const auto& [dev, seq] : keys) {
    KD_ASSIGN_OR_RETURN(auto frame, store->GetFrame(dev, seq));
    KD_ASSIGN_OR_RETURN(auto rec, store->GetTeacher(dev, seq));
    if (!frame || !rec) continue;  // aged out by retention since it was sampled
    auto image = media::DecodeJpeg(frame->jpeg);
    if (!image.ok()) continue;
    auto row = DecodeTeacherRow(rec->blob);
    if (!row.ok()) {
      KD_LOG(kWarn) << "teacher record " << dev << "/" << seq << ": " << row.status().ToString();
      continue;
    }
    Status st = as.Add(*image, std::move(row).value());
    if (!st.ok()) continue;  // another camera size or class set than the group's student
  }
  return std::move(as).Finish();
}

Result<double> LearnerService::Impl::EvaluateState(const model::StudentOptions& arch, const update::TensorMap& state,
                                                   const DistillDataset& data) {
  model::Student s(arch);
  KD_RETURN_IF_ERROR(update::LoadState(*s, state));
  s->eval();
  std::vector<size_t> rows(data.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  KD_ASSIGN_OR_RETURN(auto m, EvaluateStudent(*s, data, rows, static_cast<float>(opt.gate.gt_min_score)));
  return m.ap50;
}

bool LearnerService::Impl::TrainRound(const std::string& name) {
  std::shared_ptr<Trainer> trainer;
  std::vector<std::pair<std::string, uint64_t>> train_keys, holdout_keys;
  std::optional<model::StudentOptions> arch;
  std::shared_ptr<const update::TensorMap> deployed;
  uint64_t latest = 0;
  {
    std::lock_guard lock(mu);
    Group& g = groups.at(name);
    if (g.labelled < static_cast<uint64_t>(opt.training.min_frames)) return false;
    auto batch = g.sampler->Sample(static_cast<size_t>(opt.training.round_frames));
    for (const auto& c : batch.items) train_keys.emplace_back(c.device_id, c.seq);
    for (const auto& [dev, seqs] : g.holdout) {
      for (uint64_t s : seqs) holdout_keys.emplace_back(dev, s);
    }
    trainer = g.trainer;
    arch = g.arch;
    deployed = g.deployed_state;
    latest = g.latest;
  }
  auto data = Assemble(train_keys);
  if (!data.ok()) return false;
  if (!trainer) {
    // First round of this group: start from the deployed model, else the bootstrap, else scratch.
    trainer = std::make_shared<Trainer>();
    if (deployed && arch) {
      trainer->student = model::Student(*arch);
      (void)update::LoadState(*trainer->student, *deployed);
    } else if (bootstrap) {
      trainer->student = model::Student(bootstrap->student->options());
      (void)update::LoadState(*trainer->student, update::StateOf(*bootstrap->student));
    } else {
      auto so = StudentOptionsFor(recipe, *data);
      if (!so.ok()) {
        KD_LOG(kError) << "group " << name << ": " << so.status().ToString();
        return false;
      }
      trainer->student = model::Student(*so);
    }
    config::DistillOptions r = recipe;
    r.batch_size = std::min<int>(r.batch_size, static_cast<int>(data->size()));
    trainer->distiller = std::make_unique<Distiller>(r, trainer->student, *teacher, device);
    trainer->distiller->SetContinual(0.3);
    std::lock_guard lock(mu);
    groups.at(name).trainer = trainer;
    if (!arch) arch = trainer->student->options();
    groups.at(name).arch = arch;
  }
  if (data->student_width != arch->input_width || data->student_height != arch->input_height) {
    KD_LOG(kWarn) << "group " << name << ": frames do not match the student's input size; round skipped";
    return false;
  }
  // The round: random batches from the replay mix.
  Stopwatch sw;
  std::mt19937_64 rng(opt.training.seed + trainer->rounds);
  std::uniform_int_distribution<size_t> pick(0, data->size() - 1);
  const size_t bs = std::min<size_t>(static_cast<size_t>(recipe.batch_size), data->size());
  double loss_sum = 0;
  int steps = 0;
  for (int i = 0; i < opt.training.round_iterations && !stopping; ++i) {
    std::vector<size_t> rows;
    while (rows.size() < bs) rows.push_back(pick(rng));
    auto st = trainer->distiller->Step(*data, rows);
    if (!st.skipped && st.losses.count("total")) loss_sum += st.losses["total"], ++steps;
  }
  ++trainer->rounds;
  if (stopping) return true;
  trainer->student->eval();
  auto state = update::StateOf(*trainer->student);
  // The candidate as devices would run it: a delta from the deployed version, reconstructed.
  std::optional<update::EncodedDelta> delta;
  update::TensorMap candidate;
  if (deployed) {
    update::DeltaOptions dopt;
    dopt.min_abs_change = static_cast<float>(opt.publish.delta_min_abs_change);
    dopt.max_fraction = opt.publish.delta_max_fraction;
    auto enc = update::EncodeDelta(*deployed, state, update::ParameterNames(*trainer->student), dopt);
    if (!enc.ok()) {
      KD_LOG(kError) << "group " << name << ": delta: " << enc.status().ToString();
      return true;
    }
    delta = std::move(enc).value();
    candidate = delta->reconstructed;
  } else {
    candidate = update::RoundParametersToF16(state, update::ParameterNames(*trainer->student));
  }
  auto hold = Assemble(holdout_keys);
  json round{{"round", trainer->rounds},
             {"frames", data->size()},
             {"steps", steps},
             {"loss", steps ? loss_sum / steps : 0.0},
             {"seconds", sw.ElapsedSeconds()}};
  if (!hold.ok() || hold->size() < static_cast<size_t>(opt.gate.min_holdout)) {
    round["gate"] = "waiting for held-out frames";
    std::lock_guard lock(mu);
    groups.at(name).last_round = round;
    return true;
  }
  auto ap_new = EvaluateState(*arch, candidate, *hold);
  double ap_old = 0;
  if (deployed) {
    auto r = EvaluateState(*arch, *deployed, *hold);
    ap_old = r.ok() ? *r : 0;
  }
  if (!ap_new.ok()) {
    KD_LOG(kError) << "group " << name << ": evaluation: " << ap_new.status().ToString();
    return true;
  }
  const bool pass = *ap_new >= ap_old + opt.gate.margin;
  if (delta) {
    // The trained weights before the delta's top-k and fp16: what the compression costs this round
    // (the gate judges the candidate, i.e. what devices will run).
    if (auto trained = EvaluateState(*arch, state, *hold); trained.ok()) round["ap50_trained"] = *trained;
  }
  round["ap50_candidate"] = *ap_new;
  round["ap50_deployed"] = ap_old;
  round["holdout_frames"] = hold->size();
  round["gate"] = pass ? "pass" : "fail";
  KD_LOG(kInfo) << "group " << name << " round " << trainer->rounds << ": " << data->size() << " frames, " << steps
                << " steps in " << sw.ElapsedSeconds() << " s, loss " << (steps ? loss_sum / steps : 0.0)
                << "; held-out AP50 candidate " << *ap_new
                << (round.contains("ap50_trained")
                        ? " (trained " + std::to_string(round["ap50_trained"].get<double>()) + ")"
                        : std::string())
                << " vs deployed v" << latest << " " << ap_old << " on " << hold->size() << " frames -> "
                << (pass ? "publish" : "keep");
  {
    std::lock_guard lock(mu);
    groups.at(name).last_round = round;
  }
  if (pass && signing_key) {
    Status st = Publish(name, candidate, 0, *ap_new, ap_old, hold->size(), delta ? &*delta : nullptr, latest);
    if (!st.ok()) {
      KD_LOG(kError) << "group " << name << ": publish: " << st.ToString();
    }
  }
  return true;
}

Status LearnerService::Impl::Publish(const std::string& name, const update::TensorMap& state, uint64_t revert_of,
                                     double ap50, double ap50_base, uint64_t holdout_frames,
                                     const update::EncodedDelta* given_delta, std::optional<uint64_t> based_on) {
  std::lock_guard publishing(publish_mu);
  std::optional<model::StudentOptions> arch;
  std::shared_ptr<const update::TensorMap> deployed;
  uint64_t latest = 0;
  {
    std::lock_guard lock(mu);
    Group& g = groups.at(name);
    arch = g.arch;
    deployed = g.deployed_state;
    latest = g.latest;
  }
  if (based_on && *based_on != latest) {
    return Status::FailedPrecondition("candidate made against v" + std::to_string(*based_on) + " but v" +
                                      std::to_string(latest) + " was published meanwhile");
  }
  if (!arch) return Status::FailedPrecondition("group " + name + " has no student architecture yet");
  model::Student s(*arch);
  KD_RETURN_IF_ERROR(update::LoadState(*s, state));
  s->eval();
  const auto params = update::ParameterNames(*s);
  VersionInfo info;
  info.version = latest + 1;
  info.revert_of = revert_of;
  info.digest = update::StateDigest(state);
  const std::string arch_json = arch->ArchJson();
  info.arch_hash = model::Sha256Hex(reinterpret_cast<const uint8_t*>(arch_json.data()), arch_json.size());
  info.ap50 = ap50;
  info.ap50_base = ap50_base;
  info.holdout_frames = holdout_frames;
  info.created_unix_s = NowUs() / 1000000;
  // Full snapshot: fp16 when that is lossless for this state, else fp32 (e.g. an fp32 factory model).
  const bool f16_exact = update::StateDigest(update::RoundParametersToF16(state, params)) == info.digest;
  model::WeightsMeta meta;
  meta.model_version = info.version;
  meta.base_version = latest;
  meta.created_by = "kdlearnd";
  meta.created_unix_s = info.created_unix_s;
  KD_ASSIGN_OR_RETURN(auto full,
                      model::EncodeWeights(*s, meta, f16_exact ? model::WeightDtype::kF16 : model::WeightDtype::kF32));
  // Never publish what a device could not run: the artefact is decoded and run exactly as the edge
  // does (architecture, head, shapes, finite outputs on a grey frame).
  KD_RETURN_IF_ERROR(model::CheckDeployableWeights(full).WithContext("v" + std::to_string(info.version) +
                                                                     " not published: devices could not run it"));
  info.full_sha = model::Sha256Hex(full.data(), full.size());
  info.full_size = full.size();
  KD_RETURN_IF_ERROR(
      update::internal::WriteFileAtomic((fs::path(artifacts_dir) / (info.full_sha + ".kdw")).string(), full));
  if (deployed) {
    // Re-encoding a reconstruction would round twice and may not reproduce it: use the delta that
    // made it when there is one.
    std::optional<update::EncodedDelta> encoded;
    if (!given_delta) {
      update::DeltaOptions dopt;
      dopt.min_abs_change = static_cast<float>(opt.publish.delta_min_abs_change);
      dopt.max_fraction = opt.publish.delta_max_fraction;
      KD_ASSIGN_OR_RETURN(auto d, update::EncodeDelta(*deployed, state, params, dopt));
      encoded = std::move(d);
      given_delta = &*encoded;
    }
    if (update::StateDigest(given_delta->reconstructed) == info.digest) {
      info.delta_base = latest;
      info.delta_sha = model::Sha256Hex(given_delta->bytes.data(), given_delta->bytes.size());
      info.delta_size = given_delta->bytes.size();
      info.delta_stats = given_delta->stats;
      KD_RETURN_IF_ERROR(update::internal::WriteFileAtomic(
          (fs::path(artifacts_dir) / (info.delta_sha + ".kdd")).string(), given_delta->bytes));
    }
  }
  auto fused = std::make_shared<model::FusedStudent>(*s);
  {
    std::lock_guard lock(mu);
    Group& g = groups.at(name);
    g.versions[info.version] = info;
    g.history[info.version] = info;
    while (g.history.size() > 500) g.history.erase(g.history.begin());
    const uint64_t previous = g.latest;
    g.latest = info.version;
    g.deployed_state = std::make_shared<update::TensorMap>(state);
    g.deployed_fused = fused;
    // A halted rollout waits for its revert (TrainLoop): a version trained meanwhile is published
    // but not rolled out, or it would replace the halt and send devices to an unproven version.
    const bool halted = g.rollout.stage() == RolloutStage::kHalted;
    if ((opt.rollout.auto_start && !halted) || revert_of != 0) {
      // A revert goes to every device at once: it is a model they already ran successfully.
      g.rollout.Start(info.version, previous, NowUs(), /*canary_first=*/revert_of == 0);
    }
    // Keep the last keep_versions artefacts (and whatever is being rolled out).
    while (g.versions.size() > static_cast<size_t>(opt.publish.keep_versions) + 1) {
      auto oldest = g.versions.begin();
      if (oldest->first == g.rollout.previous() || oldest->first == g.latest) break;
      std::error_code ec;
      fs::remove(fs::path(artifacts_dir) / (oldest->second.full_sha + ".kdw"), ec);
      if (!oldest->second.delta_sha.empty())
        fs::remove(fs::path(artifacts_dir) / (oldest->second.delta_sha + ".kdd"), ec);
      g.versions.erase(oldest);
    }
    KD_RETURN_IF_ERROR(PersistGroup(g));
  }
  KD_LOG(kInfo) << "published " << name << " v" << info.version
                << (revert_of ? " (revert to v" + std::to_string(revert_of) + ")" : "") << ": held-out AP50 " << ap50
                << " (was " << ap50_base << "), full " << info.full_size << " B" << (f16_exact ? " fp16" : " fp32")
                << ", delta " << (info.delta_size ? std::to_string(info.delta_size) + " B" : std::string("none"));
  return Status::Ok();
}

Status LearnerService::Impl::RevertRollout(const std::string& name) {
  update::TensorMap state;
  uint64_t revert_to = 0;
  {
    std::lock_guard lock(mu);
    Group& g = groups.at(name);
    revert_to = g.rollout.previous();
    if (revert_to == 0 || !g.versions.count(revert_to)) {
      return Status::FailedPrecondition("group " + name + " has no previous version to return to");
    }
  }
  const auto info = [&] {
    std::lock_guard lock(mu);
    return groups.at(name).versions.at(revert_to);
  }();
  KD_ASSIGN_OR_RETURN(auto loaded, model::LoadWeights((fs::path(artifacts_dir) / (info.full_sha + ".kdw")).string()));
  state = update::StateOf(*loaded.student);
  KD_LOG(kWarn) << "group " << name << ": rollout halted; republishing v" << revert_to << " as a new version";
  KD_RETURN_IF_ERROR(Publish(name, state, revert_to, info.ap50, info.ap50, info.holdout_frames));
  // Training continues from the reverted weights.
  std::lock_guard lock(mu);
  groups.at(name).trainer.reset();
  return Status::Ok();
}

void LearnerService::Impl::TrainLoop() {
  std::map<std::string, int64_t> retry_after_us;  // group -> no round before (after a failed one)
  // Version 1 of every group is the factory model the devices ship with.
  while (!stopping) {
    std::vector<std::string> names;
    {
      std::lock_guard lock(mu);
      for (auto& [name, g] : groups) {
        if (g.latest == 0 && bootstrap && !g.devices.empty()) {
          g.arch = bootstrap->student->options();
        }
        names.push_back(name);
      }
    }
    for (const auto& name : names) {
      bool needs_bootstrap = false;
      {
        std::lock_guard lock(mu);
        needs_bootstrap = groups.at(name).latest == 0 && bootstrap && signing_key;
      }
      if (needs_bootstrap) {
        Status st = Publish(name, update::StateOf(*bootstrap->student), 0, -1, -1, 0);
        if (!st.ok()) {
          KD_LOG(kError) << "group " << name << ": bootstrap: " << st.ToString();
        }
      }
    }
    bool trained = false;
    for (const auto& name : names) {
      if (stopping) break;
      if (auto r = retry_after_us.find(name); r != retry_after_us.end() && NowUs() < r->second) continue;
      try {
        trained |= TrainRound(name);
      } catch (const std::exception& e) {
        // LibTorch reports failures as exceptions; one must not end the daemon. The deployed model
        // and everything stored stay as they were; the group tries again after a pause.
        std::string what = e.what();
        what.resize(std::min(what.size(), what.find('\n')));
        KD_LOG(kError) << "group " << name << ": training round failed: " << what << " (retrying in 60 s)";
        retry_after_us[name] = NowUs() + 60 * 1000000LL;
      }
      bool halted = false;
      {
        std::lock_guard lock(mu);
        halted = groups.at(name).rollout.stage() == RolloutStage::kHalted;
      }
      if (halted) {
        Status st = RevertRollout(name);
        if (!st.ok()) {
          KD_LOG(kError) << st.ToString();
        }
      }
    }
    if (!trained) std::this_thread::sleep_for(milliseconds(300));
  }
}

// ---------------------------------------------------------------------------------------------
// Control: status -> desired version + manifest; chunks; install reports.

Result<std::string> LearnerService::Impl::ManifestFor(Group& g, uint64_t version, bool full) {
  if (!signing_key) return Status::FailedPrecondition("no signing key");
  auto it = g.versions.find(version);
  if (it == g.versions.end()) return Status::NotFound("version " + std::to_string(version));
  const VersionInfo& info = it->second;
  if (!full && info.delta_sha.empty()) full = true;
  const std::string key = std::to_string(version) + (full ? "/full" : "/delta");
  const int64_t now_s = NowUs() / 1000000;
  auto cached = g.manifest_cache.find(key);
  // Re-signed once half the validity has passed, so a device never gets a nearly expired one.
  if (cached != g.manifest_cache.end() && cached->second.first - now_s > opt.publish.manifest_ttl_s / 2) {
    return cached->second.second;
  }
  update::Manifest m;
  m.model_id = g.name;
  m.version = version;
  m.base_version = full ? 0 : info.delta_base;
  m.kind = full ? update::ArtifactKind::kFull : update::ArtifactKind::kDelta;
  m.arch_hash = info.arch_hash;
  m.target_digest = info.digest;
  m.artifact_size = full ? info.full_size : info.delta_size;
  m.artifact_sha256 = full ? info.full_sha : info.delta_sha;
  m.chunk_size = static_cast<uint32_t>(opt.publish.chunk_bytes);
  m.created_unix_s = now_s;
  m.expires_unix_s = now_s + opt.publish.manifest_ttl_s;
  m.rollout_id = g.name + "-v" + std::to_string(version);
  KD_ASSIGN_OR_RETURN(auto signed_m, update::SignManifest(m, *signing_key));
  std::string blob = update::EncodeSignedManifest(signed_m);
  g.manifest_cache[key] = {m.expires_unix_s, blob};
  return blob;
}

void LearnerService::Impl::ControlLoop() {
  while (!stopping) {
    auto in = control->Receive(milliseconds(100));
    const int64_t now = NowUs();
    {
      std::lock_guard lock(mu);
      for (auto& [name, g] : groups) g.rollout.Tick(now);
      if (now - last_rate_us >= 2000000) {
        const double dt = last_rate_us ? (now - last_rate_us) / 1e6 : 0;
        for (auto& [id, d] : devices) {
          if (dt > 0) {
            // Exponential moving averages with a 30 s time constant: downloads are bursts.
            const double a = 1 - std::exp(-dt / 30.0);
            d.uplink_kbps += a * ((d.uplink_bytes - d.last_uplink_bytes) * 8 / 1000.0 / dt - d.uplink_kbps);
            d.downlink_kbps += a * ((d.downlink_bytes - d.last_downlink_bytes) * 8 / 1000.0 / dt - d.downlink_kbps);
          }
          d.last_uplink_bytes = d.uplink_bytes;
          d.last_downlink_bytes = d.downlink_bytes;
        }
        last_rate_us = now;
      }
    }
    if (!in.ok()) {
      if (stopping) break;
      KD_LOG(kWarn) << "control: " << in.status().ToString();
      continue;
    }
    if (!*in) continue;
    const auto& msg = (*in)->message;
    const auto& h = msg.header;
    switch (h.type) {
      case wire::MsgType::kStatus: {
        auto r = Reply(h, wire::MsgType::kStatusReply);
        {
          std::lock_guard lock(mu);
          auto& d = devices[h.device_id];
          d.last_seen_us = now;
          d.status = h.status;
          d.running_version = h.status.running_version;
          Group& g = GroupFor(h.device_id);
          d.group = g.name;
          g.rollout.NoteDevice(h.device_id, now);
          const uint64_t desired = g.rollout.Desired(h.device_id);
          r.header.desired_version = desired;
          if (desired != 0 && desired != h.status.running_version && desired > h.status.floor_version) {
            const auto& info = g.versions.count(desired) ? g.versions.at(desired) : VersionInfo{};
            const bool full = h.status.want_full || info.delta_base == 0 || info.delta_base != h.status.running_version;
            auto blob = ManifestFor(g, desired, full);
            if (blob.ok()) {
              r.payload = *blob;
            } else {
              KD_LOG(kWarn) << "manifest for " << g.name << " v" << desired << ": " << blob.status().ToString();
            }
          }
        }
        (void)control->Send((*in)->peer, r);
        break;
      }
      case wire::MsgType::kChunkRequest: {
        std::string path;
        uint64_t size = 0;
        {
          std::lock_guard lock(mu);
          const std::string& grp = GroupNameOf(h.device_id);
          auto git = groups.find(grp);
          if (git != groups.end()) {
            for (const auto& [v, info] : git->second.versions) {
              if (info.full_sha == h.object_id) path = info.full_sha + ".kdw", size = info.full_size;
              if (!info.delta_sha.empty() && info.delta_sha == h.object_id) {
                path = info.delta_sha + ".kdd", size = info.delta_size;
              }
            }
          }
        }
        if (path.empty() || h.offset >= size || h.length == 0 ||
            h.length > static_cast<uint64_t>(opt.publish.chunk_bytes)) {
          (void)control->Send((*in)->peer,
                              wire::MakeError(h, wire::ErrorCode::kUnknownObject,
                                              "no artefact " + h.object_id + " range for this device's group"));
          break;
        }
        auto bytes =
            ReadRange((fs::path(artifacts_dir) / path).string(), h.offset, std::min(h.length, size - h.offset));
        if (!bytes.ok()) {
          (void)control->Send((*in)->peer, wire::MakeError(h, wire::ErrorCode::kInternal, bytes.status().message()));
          break;
        }
        auto r = Reply(h, wire::MsgType::kChunk);
        r.header.object_id = h.object_id;
        r.header.offset = h.offset;
        r.header.length = bytes->size();
        r.payload = std::move(bytes).value();
        {
          std::lock_guard lock(mu);
          devices[h.device_id].downlink_bytes += r.payload.size();
        }
        (void)control->Send((*in)->peer, r);
        break;
      }
      case wire::MsgType::kUpdateReport: {
        std::lock_guard lock(mu);
        auto& d = devices[h.device_id];
        const char* what = h.outcome == wire::UpdateOutcome::kCommitted    ? "committed"
                           : h.outcome == wire::UpdateOutcome::kRolledBack ? "rolled back"
                                                                           : "rejected";
        std::string line =
            "v" + std::to_string(h.model_version) + " " + what + (h.error_text.empty() ? "" : ": " + h.error_text);
        if (h.outcome == wire::UpdateOutcome::kCommitted) {
          KD_LOG(kInfo) << "device " << h.device_id << ": " << line;
        } else {
          KD_LOG(kWarn) << "device " << h.device_id << ": " << line;
        }
        d.reports.push_back(line);
        if (d.reports.size() > 10) d.reports.erase(d.reports.begin());
        Group& g = GroupFor(h.device_id);
        const auto outcome = h.outcome == wire::UpdateOutcome::kCommitted    ? DeviceOutcome::kCommitted
                             : h.outcome == wire::UpdateOutcome::kRolledBack ? DeviceOutcome::kRolledBack
                                                                             : DeviceOutcome::kRejected;
        g.rollout.OnReport(h.device_id, h.model_version, outcome, now);
        (void)PersistGroup(g);
        auto ack = Reply(h, wire::MsgType::kAck);
        (void)control->Send((*in)->peer, ack);
        break;
      }
      default:
        (void)control->Send((*in)->peer, wire::MakeError(h, wire::ErrorCode::kBadHeader,
                                                         std::string("unexpected on the control socket: ") +
                                                             wire::MsgTypeName(h.type)));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Operator requests (kdctl) and status.

json LearnerService::Impl::StatusDoc() const {
  std::lock_guard lock(mu);
  const int64_t now = NowUs();
  json j;
  json devs = json::object();
  for (const auto& [id, d] : devices) {
    devs[id] = {{"group", d.group},
                {"enrolled", d.enrolled},
                {"online", d.last_seen_us > 0 && now - d.last_seen_us < 3LL * opt.server.timeout_ms * 1000},
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
  for (const auto& [name, g] : groups) {
    json versions = json::array();
    for (const auto& [v, info] : g.history) versions.push_back(info.ToJson());
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
                 {"last_round", g.last_round},
                 {"versions", versions}};
  }
  j["groups"] = grs;
  j["frames_received"] = frames_received;
  j["ingest_writes"] = ingest_writes;
  j["ingest_frames_per_write"] =
      ingest_writes ? static_cast<double>(ingest_batched_frames) / static_cast<double>(ingest_writes) : 0.0;
  j["draining"] = draining.load();
  if (auto st = store->Stats(); st.ok()) {
    j["store"] = {{"total_sst_bytes", st->total_sst_bytes},
                  {"max_bytes", st->max_bytes},
                  {"background_errors", st->background_errors},
                  {"writes_stopped", st->writes_stopped}};
  }
  if (frames) {
    auto fs_ = frames->stats();
    j["frames_socket"] = {{"received", fs_.received},
                          {"malformed", fs_.malformed},
                          {"wrong_device", fs_.wrong_device},
                          {"send_failed", fs_.send_failed}};
  }
  if (auth) j["zap_denied"] = auth->denied();
  return j;
}

std::string LearnerService::Impl::HandleAdmin(const std::string& request) {
  auto fail = [](const std::string& msg) { return json{{wire::admin::kOk, false}, {wire::admin::kError, msg}}.dump(); };
  json req;
  try {
    req = json::parse(request);
  } catch (const std::exception& e) {
    return fail(std::string("request is not JSON: ") + e.what());
  }
  namespace admin = wire::admin;
  const std::string cmd = req.value(admin::kCmd, "");
  if (cmd == admin::kStatusCmd) {
    json j = StatusDoc();
    j[admin::kOk] = true;
    return j.dump();
  }
  if (cmd == admin::kEnrollCmd) {
    const std::string id = req.value(admin::kDevice, ""), key = req.value(admin::kKey, "");
    if (id.empty() || key.empty()) return fail("enroll needs device and key");
    Status st = Enroll(id, key, true);
    if (!st.ok()) return fail(st.ToString());
    KD_LOG(kInfo) << "enrolled device " << id;
    return json{{"ok", true}}.dump();
  }
  if (cmd == admin::kRevokeCmd) {
    const std::string id = req.value(admin::kDevice, "");
    {
      std::lock_guard lock(mu);
      auto it = devices.find(id);
      if (it == devices.end() || !it->second.enrolled) return fail("unknown device '" + id + "'");
      it->second.enrolled = false;
    }
    if (auth) auth->Revoke(id);
    Status st = PersistDevices();
    if (!st.ok()) return fail(st.ToString());
    KD_LOG(kWarn) << "revoked device " << id;
    return json{{"ok", true}}.dump();
  }
  if (cmd == admin::kRolloutCmd) {
    const std::string group = req.value(admin::kGroup, ""), action = req.value(admin::kAction, "");
    std::unique_lock lock(mu);
    auto it = groups.find(group);
    if (it == groups.end()) return fail("unknown group '" + group + "'");
    Group& g = it->second;
    if (action == admin::kRolloutStart) {
      const uint64_t version = req.value(admin::kVersion, g.latest);
      if (!g.versions.count(version)) return fail("group " + group + " has no version " + std::to_string(version));
      if (version != g.latest) return fail("only the latest version can be rolled out (roll back to go back)");
      g.rollout.Start(version, g.rollout.stage() == RolloutStage::kIdle ? 0 : g.rollout.previous(), NowUs());
      Status st = PersistGroup(g);
      if (!st.ok()) return fail(st.ToString());
      return json{{"ok", true}, {"version", version}}.dump();
    }
    if (action == admin::kRolloutRollback) {
      lock.unlock();
      Status st = RevertRollout(group);
      if (!st.ok()) return fail(st.ToString());
      return json{{"ok", true}}.dump();
    }
    return fail("rollout action must be start or rollback");
  }
  return fail("unknown cmd '" + cmd + "' (status, enroll, revoke, rollout)");
}

void LearnerService::Impl::AdminLoop() {
  while (!stopping) {
    auto r = admin->ServeOne(milliseconds(100), [this](const std::string& req) { return HandleAdmin(req); });
    if (!r.ok() && stopping) break;
  }
}

void LearnerService::Impl::Stop() {
  if (stopped) return;
  stopped = true;
  draining = true;
  // Let edges see credits drop to zero and in-flight frames land before the sockets close.
  std::this_thread::sleep_for(milliseconds(200));
  stopping = true;
  wake_labeller.notify_all();
  if (ctx) ctx->Shutdown();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  threads.clear();
  admin.reset();
  frames.reset();
  control.reset();
  auth.reset();
  ctx.reset();
  if (store) {
    Status st = store->Flush();
    if (!st.ok()) {
      KD_LOG(kWarn) << "flush on shutdown: " << st.ToString();
    }
    store.reset();
  }
  KD_LOG(kInfo) << "kdlearnd stopped (ingest: " << frames_received << " frames stored or acked again in "
                << ingest_writes << " synced writes)";
}

// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<LearnerService>> LearnerService::Start(const config::LearnerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  Status st = impl->Init();
  if (!st.ok()) {
    impl->Stop();
    return st;
  }
  return std::unique_ptr<LearnerService>(new LearnerService(std::move(impl)));
}

LearnerService::LearnerService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LearnerService::~LearnerService() { Drain(); }
void LearnerService::Drain() { impl_->Stop(); }
std::string LearnerService::StatusJson() const { return impl_->StatusDoc().dump(); }
std::string LearnerService::frames_endpoint() const { return impl_->frames ? impl_->frames->bound_endpoint() : ""; }
std::string LearnerService::control_endpoint() const { return impl_->control ? impl_->control->bound_endpoint() : ""; }
std::string LearnerService::admin_endpoint() const { return impl_->admin_ep; }

}  // namespace kd::learner
