// The run report of `kdctl report`: from the learner's round log and version records (the admin
// "rounds" reply, wire/admin_commands.h), per group a results.csv (one row per training round, the
// Ultralytics habit: losses, the gate's AP of candidate and deployed, decision, versions) and PNG
// plots: accuracy per round over time with a marker at each publish and rollback, uplink and
// downlink, and the label backlog. Writes under out_dir/<group>/.
#ifndef KD_DAEMON_KDCTL_REPORT_H_
#define KD_DAEMON_KDCTL_REPORT_H_

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/status.h"

namespace kd::kdctl {

// `rounds_reply` is {"groups": {group: {"rounds": [...], "versions": [...]}}}. Returns the paths
// written. Errors: a malformed reply (Corruption), files that cannot be written (IOError).
Result<std::vector<std::string>> WriteRunReport(const nlohmann::json& rounds_reply, const std::string& out_dir);

// The CSV of one group's rounds (header line first), columns in kResultsColumns order.
std::string ResultsCsv(const nlohmann::json& rounds);

}  // namespace kd::kdctl

#endif  // KD_DAEMON_KDCTL_REPORT_H_
