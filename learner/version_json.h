// VersionInfo as JSON: the record the Catalogue persists and the status document lists (internal to
// kd_learner: nlohmann_json is linked PRIVATE).
#ifndef KD_LEARNER_VERSION_JSON_H_
#define KD_LEARNER_VERSION_JSON_H_

#include <nlohmann/json.hpp>

#include "learner/loop_state.h"

namespace kd::learner {

nlohmann::json VersionToJson(const VersionInfo& info);
VersionInfo VersionFromJson(const nlohmann::json& j);  // throws nlohmann::json::exception on a bad record

}  // namespace kd::learner

#endif  // KD_LEARNER_VERSION_JSON_H_
