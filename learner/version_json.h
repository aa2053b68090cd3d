// VersionInfo as JSON: the record the Catalogue persists and the status document lists (internal to
// kd_learner: nlohmann_json is linked PRIVATE).
#ifndef KD_LEARNER_VERSION_JSON_H_
#define KD_LEARNER_VERSION_JSON_H_

#include <nlohmann/json.hpp>

#include "learner/loop_state.h"

namespace kd::learner {

// The fields every record has. from_json throws nlohmann::json::exception on a record that lacks
// one or has one of the wrong type. Every field is persisted under its own name.
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE(VersionInfo, version, delta_base, revert_of, digest, arch_hash, full_sha, delta_sha,
                                   full_size, delta_size, ap50, ap50_base, holdout_frames, created_unix_s)

inline nlohmann::json VersionToJson(const VersionInfo& info) {
  nlohmann::json j = info;
  j["ap"] = info.ap;
  j["ap_base"] = info.ap_base;
  return j;
}
// `ap` and `ap_base` came later (the gate judged AP50 before): a record without them reads -1
// (not measured); one with them of the wrong type throws.
inline VersionInfo VersionFromJson(const nlohmann::json& j) {
  auto info = j.get<VersionInfo>();
  info.ap = j.contains("ap") ? j.at("ap").get<double>() : -1.0;
  info.ap_base = j.contains("ap_base") ? j.at("ap_base").get<double>() : -1.0;
  return info;
}

}  // namespace kd::learner

#endif  // KD_LEARNER_VERSION_JSON_H_
