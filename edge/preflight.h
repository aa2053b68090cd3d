// Preflight of a kdedge configuration: every file the options name is read and checked for what it
// must be (this device's CURVE secret key, the learner's public key, ed25519 verify keys, a
// bootstrap model the edge can run, a local video or image folder that opens), so `--check-config`
// catches what `run` would otherwise fail on later, and both exit 2 for it.
// Reads files only; opens no socket and starts no thread. Thread-safe.
#ifndef KD_EDGE_PREFLIGHT_H_
#define KD_EDGE_PREFLIGHT_H_

#include "base/status.h"
#include "config/daemon_options.h"

namespace kd::edge {

// OK, or the first problem with its config key as context ("learner.client_key: ...").
Status PreflightEdge(const config::EdgeOptions& options);

}  // namespace kd::edge

#endif  // KD_EDGE_PREFLIGHT_H_
