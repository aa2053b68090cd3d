// VersionInfo as JSON: the record the Catalogue persists and the status document lists (internal to
// kd_learner: nlohmann_json is linked PRIVATE).
#ifndef KD_LEARNER_VERSION_JSON_H_
#define KD_LEARNER_VERSION_JSON_H_

#include <nlohmann/json.hpp>

#include "learner/loop_state.h"

namespace kd::learner {

// to_json / from_json for VersionInfo (from_json throws nlohmann::json::exception on a record that
// lacks a field or has one of the wrong type). Every field is persisted under its own name.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(VersionInfo, version, delta_base, revert_of, digest, arch_hash, full_sha, delta_sha,
                                   full_size, delta_size, ap50, ap50_base, holdout_frames, created_unix_s)

inline nlohmann::json VersionToJson(const VersionInfo& info) { return info; }
inline VersionInfo VersionFromJson(const nlohmann::json& j) { return j.get<VersionInfo>(); }

}  // namespace kd::learner

#endif  // KD_LEARNER_VERSION_JSON_H_
