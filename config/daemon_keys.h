// Private to kd_config and its tests: the keys of the daemons' configs as their tables list them,
// so that a test covers every key, including one added later, without being edited.
#ifndef KD_CONFIG_DAEMON_KEYS_H_
#define KD_CONFIG_DAEMON_KEYS_H_

#include <vector>

#include "config/option_table.h"

namespace kd::config::internal {

std::vector<KeyInfo> EdgeKeys();     // EdgeOptions, in file order
std::vector<KeyInfo> LearnerKeys();  // LearnerOptions, in file order

}  // namespace kd::config::internal

#endif  // KD_CONFIG_DAEMON_KEYS_H_
