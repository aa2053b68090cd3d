// Catalogue: the learner's durable records in the store's metadata (storage/FORMAT.md, "What
// kdlearnd keeps here"): per group the published versions, the latest one and the rollout; the
// enrolled devices and revocations; each camera's label watermark. It loads them at start-up and
// rebuilds the derived state (replay sampler, hold-out windows, stored counts) from the teacher
// records. Artefact files live in `artifacts_dir`, named by their SHA-256.
//
// Threading: any thread. Writes of a group's records are serialised (persist_mu_) and take a
// snapshot under LoopState::mu, then write without it (lock order persist_mu_ -> mu).
#ifndef KD_LEARNER_CATALOGUE_H_
#define KD_LEARNER_CATALOGUE_H_

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "learner/loop_state.h"
#include "storage/sample_store.h"

namespace kd::learner {

// Paths of a version's artefacts in `artifacts_dir`: <full_sha>.kdw and <delta_sha>.kdd.
std::string FullArtifactPath(const std::string& artifacts_dir, const VersionInfo& info);
std::string DeltaArtifactPath(const std::string& artifacts_dir, const VersionInfo& info);

// An enrolled (or revoked) device as persisted by kdctl enroll/revoke.
struct DeviceRecord {
  std::string id;
  std::string public_key;  // Z85
  bool revoked = false;
};

class Catalogue {
 public:
  Catalogue(LoopState& state, storage::SampleStore& store, std::string artifacts_dir);

  // Groups, their versions and rollouts, and each group's deployed model from its full artefact
  // (Corruption when the artefact does not match the recorded digest).
  Status Load();
  // Label watermarks, per-camera stored counts, and the replay and hold-out sets (derived data,
  // rebuilt from the teacher records). Returns the number of teacher records read.
  Result<size_t> RebuildFromStore();

  // Writes the group's records (catalogue entry, rollout, the list of groups).
  Status PersistGroup(const std::string& group);
  // Writes the device registry (devices with a CURVE key: enrolled or revoked).
  Status PersistDevices();
  Result<std::vector<DeviceRecord>> LoadDevices() const;
  Status PersistLabelWatermark(const std::string& device_id, uint64_t seq);

  // The round log: one JSON object per training round of a group (storage/FORMAT.md, `round/`),
  // keyed by `time_us` so that they read back in order. The newest kMaxRoundsPerGroup are kept.
  static constexpr size_t kMaxRoundsPerGroup = 5000;
  Status AppendRound(const std::string& group, int64_t time_us, const std::string& round_json);
  // The group's rounds, oldest first; at most the newest `limit` (0 = all kept).
  Result<std::vector<std::string>> LoadRounds(const std::string& group, size_t limit = 0) const;

  const std::string& artifacts_dir() const { return artifacts_dir_; }

 private:
  LoopState& state_;
  storage::SampleStore& store_;
  const std::string artifacts_dir_;
  std::mutex persist_mu_;
  std::mutex rounds_mu_;                              // serialises AppendRound's pruning
  std::map<std::string, size_t> rounds_since_prune_;  // group -> appends since the last prune
};

}  // namespace kd::learner

#endif  // KD_LEARNER_CATALOGUE_H_
