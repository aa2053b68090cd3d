// Preflight of a kdlearnd configuration: every file the options name is read and checked for what
// it must be (the learner's CURVE secret key, the ed25519 signing key, each device's CURVE public
// key, the recipe, a bootstrap model devices can run, the teacher model file), so `--check-config`
// catches what `serve` would otherwise fail on later, and both exit 2 for it.
// Reads files only; opens no store or socket and loads no teacher. Thread-safe.
#ifndef KD_LEARNER_PREFLIGHT_H_
#define KD_LEARNER_PREFLIGHT_H_

#include <string>

#include "base/status.h"
#include "config/daemon_options.h"

namespace kd::learner {

// OK, or the first problem with its config key as context ("publish.signing_key: ...").
Status PreflightLearner(const config::LearnerOptions& options);

// The teacher's graph file that `teacher.model` names ("" = the fetched asset; a folder = its
// centernet.json).
std::string TeacherModelPath(const config::LearnerOptions& options);

}  // namespace kd::learner

#endif  // KD_LEARNER_PREFLIGHT_H_
