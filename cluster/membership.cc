#include "cluster/membership.h"

#include <cctype>
#include <chrono>
#include <random>

#include <nlohmann/json.hpp>

#include "base/file_system.h"
#include "base/hex.h"
#include "base/log.h"
#include "base/sha256.h"

namespace kd::cluster {
namespace {

// Keys (cluster/PROTOCOL.md).
constexpr char kGenerationKey[] = "kd/generation";
constexpr char kChallengeKey[] = "kd/challenge";
constexpr char kNextWorkerKey[] = "kd/next_worker";
std::string JoinKey(uint64_t id) { return "kd/join/" + std::to_string(id); }
std::string VerdictKey(uint64_t id) { return JoinKey(id) + "/verdict"; }
std::string WorkerKey(uint64_t generation, uint64_t id, const std::string& leaf) {
  return "kd/g" + std::to_string(generation) + "/w/" + std::to_string(id) + "/" + leaf;
}

// The role is inside the MAC: nobody without the secret can turn a trainer into a labeller.
std::string JoinMac(const std::string& secret, uint64_t id, uint64_t generation, const std::string& role,
                    const std::string& challenge) {
  return ToHex(HmacSha256(
      secret, "kd-join|" + std::to_string(id) + "|" + std::to_string(generation) + "|" + role + "|" + challenge));
}
std::string SessionKey(const std::string& secret, uint64_t id, uint64_t generation, const std::string& challenge) {
  return HmacSha256(secret, "kd-session|" + std::to_string(id) + "|" + std::to_string(generation) + "|" + challenge);
}

// A job or result value: the payload, then HMAC-SHA256 under the session key over the kind, the
// worker, the sequence number and the payload (so a value cannot be replayed under another key).
std::string Seal(const std::string& key, const char* kind, uint64_t id, uint64_t seq, std::string_view payload) {
  std::string out(payload);
  const std::string label = std::string(kind) + "|" + std::to_string(id) + "|" + std::to_string(seq) + "|";
  out += HmacSha256(key, label + std::string(payload));
  return out;
}

Result<std::string> Unseal(const std::string& key, const char* kind, uint64_t id, uint64_t seq, std::string sealed) {
  if (sealed.size() < kSha256Bytes) return Status::PermissionDenied(std::string(kind) + " shorter than its MAC");
  const std::string mac = sealed.substr(sealed.size() - kSha256Bytes);
  sealed.resize(sealed.size() - kSha256Bytes);
  const std::string label = std::string(kind) + "|" + std::to_string(id) + "|" + std::to_string(seq) + "|";
  if (!ConstantTimeEquals(mac, HmacSha256(key, label + sealed))) {
    return Status::PermissionDenied(std::string(kind) + " " + std::to_string(seq) + " of worker " + std::to_string(id) +
                                    " fails its authentication");
  }
  return sealed;
}

Result<uint64_t> ParseU64(const std::string& s, const char* what) {
  try {
    size_t used = 0;
    const uint64_t v = std::stoull(s, &used);
    if (used == s.size()) return v;
  } catch (const std::exception&) {
  }
  return Status::Corruption(std::string("cluster store: ") + what + " is not a number: \"" + s + "\"");
}

}  // namespace

Result<std::string> ReadSecretFile(const std::string& path) {
  KD_ASSIGN_OR_RETURN(const auto bytes, FileSystem::Default().ReadFile(path));
  std::string s(bytes.begin(), bytes.end());
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  s.erase(0, start);
  if (s.size() < kMinSecretBytes) {
    return Status::InvalidArgument("cluster secret " + path + ": " + std::to_string(s.size()) + " bytes; at least " +
                                   std::to_string(kMinSecretBytes) +
                                   " needed (e.g. `head -c 32 /dev/urandom | base64 > " + path + "`)");
  }
  return s;
}

const char* WorkerStateName(WorkerState state) {
  switch (state) {
    case WorkerState::kAlive:
      return "alive";
    case WorkerState::kLeft:
      return "left";
    case WorkerState::kDead:
      return "dead";
  }
  return "?";
}

const char* WorkerRoleName(WorkerRole role) { return role == WorkerRole::kLabel ? "label" : "train"; }

std::optional<WorkerRole> ParseWorkerRole(std::string_view name) {
  if (name == "train") return WorkerRole::kTrain;
  if (name == "label") return WorkerRole::kLabel;
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// WorkerPool
// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<WorkerPool>> WorkerPool::Open(KvStore& store, const WorkerPoolOptions& options,
                                                     const Clock& clock) {
  if (options.secret.size() < kMinSecretBytes) return Status::InvalidArgument("cluster secret too short");
  if (options.generation == 0 || !(options.worker_timeout_s > 0)) {
    return Status::InvalidArgument("cluster: generation >= 1 and worker_timeout_s > 0 required");
  }
  std::random_device rd;
  std::string raw(16, '\0');
  for (auto& c : raw) c = static_cast<char>(rd());
  const std::string challenge = ToHex(raw);
  // Join ids continue across coordinator restarts only within one store: a new store starts at 1.
  KD_RETURN_IF_ERROR(store.Set(kChallengeKey, challenge));
  KD_RETURN_IF_ERROR(store.Set(kGenerationKey, std::to_string(options.generation)));
  auto pool = std::unique_ptr<WorkerPool>(new WorkerPool(store, options, clock, challenge));
  KD_ASSIGN_OR_RETURN(const int64_t next, store.Add(kNextWorkerKey, 0));
  pool->joins_seen_ = static_cast<uint64_t>(next) + 1;  // ids handed out before this world are not ours
  return pool;
}

WorkerPool::WorkerPool(KvStore& store, const WorkerPoolOptions& options, const Clock& clock, std::string challenge)
    : store_(store), options_(options), clock_(clock), challenge_(std::move(challenge)) {}

void WorkerPool::AdmitJoins() {
  auto next = store_.Add(kNextWorkerKey, 0);
  if (!next.ok()) return;
  for (uint64_t id = joins_seen_; id <= static_cast<uint64_t>(*next); ++id) {
    auto hello = store_.Get(JoinKey(id));
    if (!hello.ok()) return;
    if (!hello->has_value()) {
      // An id taken but not written yet: look again next pass (the worker is mid-join).
      return;
    }
    joins_seen_ = id + 1;
    (void)store_.Delete(JoinKey(id));
    std::string verdict;
    std::string name;
    uint64_t generation = 0;
    std::string mac;
    std::string role_name;
    std::optional<WorkerRole> role;
    try {
      const auto j = nlohmann::json::parse(**hello);
      name = j.at("name").get<std::string>();
      generation = j.at("generation").get<uint64_t>();
      mac = j.at("mac").get<std::string>();
      role_name = j.at("role").get<std::string>();
      role = ParseWorkerRole(role_name);
    } catch (const std::exception&) {
      verdict = "refused: malformed join request";
    }
    if (verdict.empty() && !role) verdict = "refused: unknown role \"" + role_name + "\"";
    if (verdict.empty() && generation != options_.generation) {
      verdict = "refused: generation " + std::to_string(generation) + " is not this world's (" +
                std::to_string(options_.generation) + ")";
    }
    if (verdict.empty() && !ConstantTimeEquals(mac, JoinMac(options_.secret, id, generation, role_name, challenge_))) {
      verdict = "refused: wrong shared secret";
    }
    if (verdict.empty()) {
      Member m;
      m.info.id = id;
      m.info.name = name;
      m.info.role = *role;
      m.info.joined_us = m.info.last_beat_us = clock_.MonotonicNanos() / 1000;
      m.session_key = SessionKey(options_.secret, id, generation, challenge_);
      members_[id] = std::move(m);
      verdict = "admitted";
      KD_LOG(kInfo) << "cluster: worker " << id << " (" << name << ", " << role_name << ") joined generation "
                    << options_.generation;
    } else {
      KD_LOG(kWarn) << "cluster: worker " << id << " (" << name << ") " << verdict;
    }
    (void)store_.Set(VerdictKey(id), verdict);
  }
}

std::vector<uint64_t> WorkerPool::Poll() {
  std::lock_guard lock(mu_);
  AdmitJoins();
  std::vector<uint64_t> gone;
  const int64_t now = clock_.MonotonicNanos() / 1000;
  for (auto& [id, m] : members_) {
    if (m.info.state != WorkerState::kAlive) continue;
    auto state = store_.Get(WorkerKey(options_.generation, id, "state"));
    if (state.ok() && state->has_value() && **state == "left") {
      m.info.state = WorkerState::kLeft;
      gone.push_back(id);
      KD_LOG(kInfo) << "cluster: worker " << id << " (" << m.info.name << ") left";
      continue;
    }
    auto beats = store_.Add(WorkerKey(options_.generation, id, "beat"), 0);
    if (beats.ok() && *beats != m.beat_count) {
      m.beat_count = *beats;
      m.info.last_beat_us = now;
    } else if (static_cast<double>(now - m.info.last_beat_us) / 1e6 > options_.worker_timeout_s) {
      // Fencing: the state moves from absent to "dead" only if the worker has not said goodbye in
      // the meantime (compareSet: one of the two wins). A worker that was only slow finds "dead"
      // and rejoins as a new member; whatever it returns under this id is never read again.
      auto now_state = store_.CompareSet(WorkerKey(options_.generation, id, "state"), "", "dead");
      const bool left = now_state.ok() && *now_state == "left";
      m.info.state = left ? WorkerState::kLeft : WorkerState::kDead;
      gone.push_back(id);
      KD_LOG(kWarn) << "cluster: worker " << id << " (" << m.info.name << ") silent for "
                    << static_cast<double>(now - m.info.last_beat_us) / 1e6 << " s: " << (left ? "left" : "dead");
    }
  }
  return gone;
}

std::vector<WorkerInfo> WorkerPool::Workers() const {
  std::lock_guard lock(mu_);
  std::vector<WorkerInfo> out;
  for (const auto& [id, m] : members_) out.push_back(m.info);
  return out;
}

bool WorkerPool::Alive(uint64_t worker) const {
  std::lock_guard lock(mu_);
  auto it = members_.find(worker);
  return it != members_.end() && it->second.info.state == WorkerState::kAlive;
}

Status WorkerPool::SendJob(uint64_t worker, std::string_view job) {
  std::lock_guard lock(mu_);
  auto it = members_.find(worker);
  if (it == members_.end() || it->second.info.state != WorkerState::kAlive) {
    return Status::FailedPrecondition("worker " + std::to_string(worker) + " is not alive");
  }
  Member& m = it->second;
  if (m.info.busy) return Status::FailedPrecondition("worker " + std::to_string(worker) + " has a job in flight");
  const uint64_t seq = m.job_seq + 1;
  KD_RETURN_IF_ERROR(store_.Set(WorkerKey(options_.generation, worker, "job/" + std::to_string(seq)),
                                Seal(m.session_key, "job", worker, seq, job)));
  m.job_seq = seq;
  m.info.busy = true;
  ++m.info.jobs_sent;
  return Status::Ok();
}

Result<std::optional<std::string>> WorkerPool::TakeResult(uint64_t worker) {
  std::lock_guard lock(mu_);
  auto it = members_.find(worker);
  if (it == members_.end()) return Status::NotFound("no worker " + std::to_string(worker));
  Member& m = it->second;
  if (m.info.state != WorkerState::kAlive) {
    m.info.busy = false;
    return Status::Unavailable("worker " + std::to_string(worker) + " is " + WorkerStateName(m.info.state));
  }
  if (!m.info.busy) return Status::FailedPrecondition("worker " + std::to_string(worker) + " has no job in flight");
  const std::string key = WorkerKey(options_.generation, worker, "result/" + std::to_string(m.job_seq));
  KD_ASSIGN_OR_RETURN(auto sealed, store_.Get(key));
  if (!sealed) return std::optional<std::string>();
  (void)store_.Delete(key);
  m.info.busy = false;
  ++m.info.results;
  KD_ASSIGN_OR_RETURN(std::string payload, Unseal(m.session_key, "result", worker, m.job_seq, std::move(*sealed)));
  return std::optional<std::string>(std::move(payload));
}

// ---------------------------------------------------------------------------------------------
// WorkerLink
// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<WorkerLink>> WorkerLink::Join(KvStore& store, const WorkerLinkOptions& options) {
  if (options.secret.size() < kMinSecretBytes) return Status::InvalidArgument("cluster secret too short");
  if (!(options.heartbeat_s > 0) || !(options.join_timeout_s > 0)) {
    return Status::InvalidArgument("cluster: heartbeat_s and join_timeout_s must be > 0");
  }
  KD_ASSIGN_OR_RETURN(auto current, store.Get(kGenerationKey));
  KD_ASSIGN_OR_RETURN(auto challenge, store.Get(kChallengeKey));
  if (!current || !challenge) return Status::Unavailable("no coordinator has opened this store yet");
  KD_ASSIGN_OR_RETURN(const uint64_t current_generation, ParseU64(*current, "generation"));
  const uint64_t generation = options.generation.value_or(current_generation);
  KD_ASSIGN_OR_RETURN(const int64_t id_signed, store.Add(kNextWorkerKey, 1));
  const auto id = static_cast<uint64_t>(id_signed);
  const std::string role = WorkerRoleName(options.role);
  nlohmann::json hello{{"name", options.name},
                       {"generation", generation},
                       {"role", role},
                       {"mac", JoinMac(options.secret, id, generation, role, *challenge)}};
  KD_RETURN_IF_ERROR(store.Set(JoinKey(id), hello.dump()));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(options.join_timeout_s);
  while (true) {
    KD_ASSIGN_OR_RETURN(auto verdict, store.Get(VerdictKey(id)));
    if (verdict) {
      (void)store.Delete(VerdictKey(id));
      if (*verdict != "admitted") return Status::PermissionDenied("coordinator: " + *verdict);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Status::Unavailable("the coordinator did not answer the join request within " +
                                 std::to_string(options.join_timeout_s) + " s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::unique_ptr<WorkerLink>(
      new WorkerLink(store, options, id, generation, SessionKey(options.secret, id, generation, *challenge)));
}

WorkerLink::WorkerLink(KvStore& store, const WorkerLinkOptions& options, uint64_t id, uint64_t generation,
                       std::string session_key)
    : store_(store), options_(options), id_(id), generation_(generation), session_key_(std::move(session_key)) {
  beat_thread_ = std::thread([this] { Beat(); });
}

WorkerLink::~WorkerLink() {
  beating_ = false;
  if (beat_thread_.joinable()) beat_thread_.join();
}

void WorkerLink::Beat() {
  const std::string key = WorkerKey(generation_, id_, "beat");
  const auto period = std::chrono::duration<double>(options_.heartbeat_s);
  auto next = std::chrono::steady_clock::now();
  while (beating_) {
    (void)store_.Add(key, 1);  // a lost beat is made up by the next; the coordinator allows many
    next += std::chrono::duration_cast<std::chrono::steady_clock::duration>(period);
    while (beating_ && std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
}

Result<std::optional<std::string>> WorkerLink::NextJob(double wait_s, const std::atomic<bool>& stop) {
  const uint64_t seq = job_seq_ + 1;
  const std::string key = WorkerKey(generation_, id_, "job/" + std::to_string(seq));
  const std::string state_key = WorkerKey(generation_, id_, "state");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
  while (!stop) {
    KD_ASSIGN_OR_RETURN(auto sealed, store_.Get(key));
    if (sealed) {
      (void)store_.Delete(key);
      job_seq_ = seq;
      KD_ASSIGN_OR_RETURN(std::string job, Unseal(session_key_, "job", id_, seq, std::move(*sealed)));
      return std::optional<std::string>(std::move(job));
    }
    KD_ASSIGN_OR_RETURN(auto state, store_.Get(state_key));
    if (state && *state == "dead") {
      return Status::FailedPrecondition("the coordinator declared worker " + std::to_string(id_) +
                                        " dead (heartbeats missed): rejoin");
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::optional<std::string>();
}

Status WorkerLink::PutResult(std::string_view result) {
  return store_.Set(WorkerKey(generation_, id_, "result/" + std::to_string(job_seq_)),
                    Seal(session_key_, "result", id_, job_seq_, result));
}

Status WorkerLink::Leave() {
  beating_ = false;
  if (beat_thread_.joinable()) beat_thread_.join();
  // Only from alive: a worker the coordinator already declared dead stays dead (compareSet).
  return store_.CompareSet(WorkerKey(generation_, id_, "state"), "", "left").status();
}

}  // namespace kd::cluster
