// Membership of learner workers in a coordinator's world, over the c10d store (cluster/kv_store.h):
// joining with a shared secret, heartbeats, death and departure, fencing by world generation, and
// the one-job-at-a-time exchange of opaque round jobs and results, each authenticated with a
// per-session key. The keys and values are specified in cluster/PROTOCOL.md.
//
// WorkerPool is the coordinator's side: Poll() admits or refuses joins and declares workers whose
// heartbeat stopped for `worker_timeout_s` dead; the pool's owner calls it periodically. WorkerLink
// is a worker's side: it joins, beats from its own thread, and takes jobs and returns results.
// What a job means (which group, which frames) is the learner's business (learner/round_job.h).
//
// Threading: WorkerPool's methods are thread-safe (one mutex; store requests are loopback or LAN
// round trips, never model work). WorkerLink: NextJob/PutResult from one thread; its heartbeat
// thread is internal.
#ifndef KD_CLUSTER_MEMBERSHIP_H_
#define KD_CLUSTER_MEMBERSHIP_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/status.h"

#include "cluster/kv_store.h"

namespace kd::cluster {

// Shared secrets shorter than this are refused (bytes).
inline constexpr size_t kMinSecretBytes = 16;

// Reads a shared secret file: its bytes with surrounding whitespace removed; InvalidArgument when
// it is shorter than kMinSecretBytes.
Result<std::string> ReadSecretFile(const std::string& path);

struct WorkerPoolOptions {
  std::string secret;            // shared with the workers. REQUIRES: >= kMinSecretBytes
  uint64_t generation = 1;       // this world's generation (the coordinator's start count). REQUIRES: >= 1
  double worker_timeout_s = 10;  // a worker whose heartbeat stops this long is dead. REQUIRES: > 0
};

enum class WorkerState { kAlive, kLeft, kDead };
const char* WorkerStateName(WorkerState state);

// What a worker does for the coordinator, fixed when it joins: train the round jobs of the groups
// placed on it, or label frames with the teacher (learner/label_job.h) and hold no groups.
enum class WorkerRole { kTrain, kLabel };
const char* WorkerRoleName(WorkerRole role);                       // "train" or "label"
std::optional<WorkerRole> ParseWorkerRole(std::string_view name);  // nullopt for any other name

struct WorkerInfo {
  uint64_t id = 0;
  std::string name;  // what the worker calls itself (host:pid); for people
  WorkerRole role = WorkerRole::kTrain;
  WorkerState state = WorkerState::kAlive;
  int64_t joined_us = 0, last_beat_us = 0;  // coordinator monotonic clock (us): joined, last new heartbeat seen
  uint64_t jobs_sent = 0, results = 0;
  bool busy = false;  // a job is in flight
};

class WorkerPool {
 public:
  // Publishes the generation and a fresh join challenge in `store` (served by this process).
  static Result<std::unique_ptr<WorkerPool>> Open(KvStore& store, const WorkerPoolOptions& options, const Clock& clock);

  // Admits or refuses pending joins, notes heartbeats and declares silent workers dead and
  // departing ones left. Returns the ids that stopped being alive in this pass.
  std::vector<uint64_t> Poll();
  std::vector<WorkerInfo> Workers() const;  // every worker seen, in id order
  bool Alive(uint64_t worker) const;

  // Sends `job` to an alive worker that has none in flight. FailedPrecondition otherwise.
  Status SendJob(uint64_t worker, std::string_view job);
  // The result of the worker's job in flight once it has arrived (nullopt before). Unavailable when
  // the worker is no longer alive (its job is abandoned); PermissionDenied when the result fails its
  // authentication (it is dropped and the job abandoned).
  Result<std::optional<std::string>> TakeResult(uint64_t worker);

  uint64_t generation() const { return options_.generation; }

 private:
  struct Member {
    WorkerInfo info;
    std::string session_key;
    int64_t beat_count = -1;
    uint64_t job_seq = 0;  // the last job sent (1, 2, ...)
  };
  WorkerPool(KvStore& store, const WorkerPoolOptions& options, const Clock& clock, std::string challenge);
  void AdmitJoins();  // REQUIRES: mu_

  KvStore& store_;
  const WorkerPoolOptions options_;
  const Clock& clock_;
  const std::string challenge_;
  mutable std::mutex mu_;
  std::map<uint64_t, Member> members_;
  uint64_t joins_seen_ = 0;  // join ids below this one were answered
};

struct WorkerLinkOptions {
  std::string secret;                                 // REQUIRES: >= kMinSecretBytes
  std::string name;                                   // for the coordinator's status (e.g. "host:pid")
  WorkerRole role = WorkerRole::kTrain;               // what this worker does (cluster/PROTOCOL.md)
  std::optional<uint64_t> generation = std::nullopt;  // join only this world (nullopt: the current one)
  double heartbeat_s = 1;                             // REQUIRES: > 0 and well below the coordinator's timeout
  double join_timeout_s = 10;                         // wait for the coordinator's verdict. REQUIRES: > 0
};

class WorkerLink {
 public:
  // Joins the world served by `store` (which must outlive the link) and starts beating.
  // PermissionDenied with the coordinator's reason when refused (wrong secret, wrong generation);
  // Unavailable when no coordinator answers.
  static Result<std::unique_ptr<WorkerLink>> Join(KvStore& store, const WorkerLinkOptions& options);
  ~WorkerLink();  // stops beating (without saying goodbye: call Leave for that)
  WorkerLink(const WorkerLink&) = delete;
  WorkerLink& operator=(const WorkerLink&) = delete;

  uint64_t id() const { return id_; }
  uint64_t generation() const { return generation_; }

  // Waits up to `wait_s` for the next job. FailedPrecondition when the coordinator declared this
  // worker dead (rejoin); PermissionDenied when a job fails its authentication (dropped).
  Result<std::optional<std::string>> NextJob(double wait_s, const std::atomic<bool>& stop);
  // Returns the result of the job last taken.
  Status PutResult(std::string_view result);
  // Tells the coordinator this worker is leaving (its groups move at once) and stops beating.
  Status Leave();

 private:
  WorkerLink(KvStore& store, const WorkerLinkOptions& options, uint64_t id, uint64_t generation,
             std::string session_key);
  void Beat();

  KvStore& store_;
  const WorkerLinkOptions options_;
  const uint64_t id_, generation_;
  const std::string session_key_;
  uint64_t job_seq_ = 0;  // the last job taken
  std::atomic<bool> beating_{true};
  std::thread beat_thread_;
};

}  // namespace kd::cluster

#endif  // KD_CLUSTER_MEMBERSHIP_H_
