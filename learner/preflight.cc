#include "learner/preflight.h"

#include <filesystem>

#include "base/assets.h"
#include "config/distill_options.h"
#include "model/checked_run.h"
#include "model/weights_file.h"
#include "update/signing.h"
#include "wire/curve_keys.h"

namespace kd::learner {
namespace fs = std::filesystem;

std::string TeacherModelPath(const config::LearnerOptions& o) {
  if (o.teacher.model.empty()) return AssetPath("centernet.json");
  if (fs::is_directory(o.teacher.model)) return (fs::path(o.teacher.model) / "centernet.json").string();
  return o.teacher.model;
}

Status PreflightLearner(const config::LearnerOptions& o) {
  if (!o.server.secret_key.empty()) {
    KD_RETURN_IF_ERROR(wire::ReadCurveKeyPair(o.server.secret_key).status().WithContext("server.secret_key"));
  }
  if (!o.publish.signing_key.empty()) {
    KD_RETURN_IF_ERROR(update::ReadSigningKey(o.publish.signing_key).status().WithContext("publish.signing_key"));
  }
  for (const auto& d : o.devices) {
    if (d.key.empty()) continue;
    KD_RETURN_IF_ERROR(wire::ReadCurvePublicKey(d.key).status().WithContext("devices[" + d.id + "].key"));
  }
  if (!o.training.recipe.empty()) {
    KD_RETURN_IF_ERROR(config::LoadDistillOptions(o.training.recipe).status().WithContext("training.recipe"));
  }
  if (!o.training.bootstrap.empty()) {
    auto loaded = model::LoadWeights(o.training.bootstrap);
    if (!loaded.ok()) return loaded.status().WithContext("training.bootstrap");
    KD_RETURN_IF_ERROR(model::CheckDeployable(*loaded->student).WithContext("training.bootstrap"));
  }
  const std::string teacher = TeacherModelPath(o);
  std::error_code ec;
  if (!fs::is_regular_file(teacher, ec)) {
    return Status::NotFound("teacher.model: no teacher graph at '" + teacher + "' (scripts/fetch_assets.sh)");
  }
  return Status::Ok();
}

}  // namespace kd::learner
