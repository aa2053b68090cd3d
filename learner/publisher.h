// Publisher: makes a trained state a group's next version. It writes the full artefact (.kdw, fp16
// when lossless) and the delta from the deployed version (.kdd) under their SHA-256 names, checks
// that devices could run it, records the version, signs its manifests, starts its rollout and
// prunes old artefacts. It also serves what the control stage sends: signed manifests (re-signed
// once half their validity has passed) and artefact byte ranges.
//
// Threading: any thread. Publishes are serialised (publish_mu_: the trainer and a kdctl rollback
// may publish at once, and version numbers must never be shared). Artefact writes, encoding and
// signing happen without LoopState::mu; lock order publish_mu_ -> Catalogue -> mu.
#ifndef KD_LEARNER_PUBLISHER_H_
#define KD_LEARNER_PUBLISHER_H_

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/file_system.h"
#include "base/status.h"
#include "learner/catalogue.h"
#include "learner/loop_state.h"
#include "update/delta.h"
#include "update/signing.h"
#include "update/state.h"

namespace kd::learner {

// What the gate measured for a version (-1 = not measured, e.g. the factory model).
struct PublishScore {
  double ap = -1, ap_base = -1;      // COCO AP .50:.95, the version's and the one it replaced
  double ap50 = -1, ap50_base = -1;  // AP50, the same two
  uint64_t holdout_frames = 0;
};

// The delta encoding the config asks for (publish.delta_*): what the trainer's candidate and the
// published delta must agree on.
update::DeltaOptions DeltaOptionsOf(const config::LearnerOptions& options);
// The fraction of each parameter tensor a round may train away from the deployed version:
// publish.delta_max_fraction with training.sparse_rounds (so the top-k delta carries the round
// whole), else 1 (RoundSettings::update_fraction).
double UpdateFractionOf(const config::LearnerOptions& options);

class Publisher {
 public:
  Publisher(LoopState& state, Catalogue& catalogue, update::SigningKeyPair signing_key, const Clock& clock,
            FileSystem& file_system = FileSystem::Default());

  // Publishes `weights` as the group's next version. `delta`: the delta from the deployed version
  // that produced `weights` (its reconstruction), or nullptr to encode one here (shipped only if it
  // reproduces `weights` exactly). `based_on`: the latest version the candidate was made and gated
  // against; if another publish (a rollback) came in between, the candidate is stale:
  // FailedPrecondition, nothing published. `revert_of` != 0 republishes that older version's
  // weights (rolled out to every device at once: they ran it successfully).
  Status Publish(const std::string& group, const update::TensorMap& weights, const PublishScore& score,
                 const update::EncodedDelta* delta = nullptr, std::optional<uint64_t> based_on = std::nullopt,
                 uint64_t revert_of = 0);
  // Republishes the group's rollout fallback version as a new version (FailedPrecondition when
  // there is none) and tells the trainer to restart from it (Group::reverts).
  Status Revert(const std::string& group);

  // The signed manifest of `version` (the delta one unless `full` or there is no delta).
  Result<std::string> ManifestFor(const std::string& group, uint64_t version, bool full);
  // Bytes [offset, offset + length) of artefact `object_id` (its SHA-256) of the group, length
  // clipped to the file. NotFound when the group has no such artefact or offset is beyond it;
  // InvalidArgument for length 0 or over publish.chunk_bytes.
  Result<std::string> ReadChunk(const std::string& group, const std::string& object_id, uint64_t offset,
                                uint64_t length);

 private:
  Result<std::string> SignManifest(const std::string& group, const VersionInfo& info, bool full, int64_t now_s);

  LoopState& state_;
  Catalogue& catalogue_;
  const update::SigningKeyPair signing_key_;
  const Clock& clock_;
  FileSystem& fs_;
  std::mutex publish_mu_;
};

}  // namespace kd::learner

#endif  // KD_LEARNER_PUBLISHER_H_
