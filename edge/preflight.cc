#include "edge/preflight.h"

#include <filesystem>
#include <string>

#include "media/video_source.h"
#include "model/checked_run.h"
#include "model/weights_file.h"
#include "update/signing.h"
#include "wire/curve_keys.h"

namespace kd::edge {
namespace {

bool IsLocalPath(const std::string& uri) {
  return uri.find("://") == std::string::npos && uri.rfind("v4l2:", 0) != 0 && uri.rfind("/dev/video", 0) != 0;
}

}  // namespace

Status PreflightEdge(const config::EdgeOptions& o) {
  if (!o.learner.client_key.empty()) {
    KD_RETURN_IF_ERROR(wire::ReadCurveKeyPair(o.learner.client_key).status().WithContext("learner.client_key"));
  }
  if (!o.learner.server_key.empty()) {
    KD_RETURN_IF_ERROR(wire::ReadCurvePublicKey(o.learner.server_key).status().WithContext("learner.server_key"));
  }
  for (size_t i = 0; i < o.update.trusted_keys.size(); ++i) {
    KD_RETURN_IF_ERROR(update::ReadVerifyKey(o.update.trusted_keys[i])
                           .status()
                           .WithContext("update.trusted_keys[" + std::to_string(i) + "]"));
  }
  if (!o.model.bootstrap.empty()) {
    auto loaded = model::LoadWeights(o.model.bootstrap);
    if (!loaded.ok()) return loaded.status().WithContext("model.bootstrap");
    KD_RETURN_IF_ERROR(model::CheckDeployable(*loaded->student).WithContext("model.bootstrap"));
  }
  if (IsLocalPath(o.source.uri)) {  // cameras and streams may come up later; files must be there now
    media::SourceOptions so;
    so.begin = o.source.begin;
    so.end = o.source.end > 0 ? o.source.end : -1;
    KD_RETURN_IF_ERROR(media::OpenSource(o.source.uri, so).status().WithContext("source.uri"));
  }
  return Status::Ok();
}

}  // namespace kd::edge
