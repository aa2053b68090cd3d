#include "learner/publisher.h"

#include <fstream>
#include <utility>

#include "base/log.h"
#include "base/sha256.h"
#include "learner/deployed_model.h"
#include "model/checked_run.h"
#include "model/weights_file.h"
#include "update/manifest.h"

namespace kd::learner {

namespace {
// Published records kept for status (every version's, not only those with artefacts on disk).
constexpr size_t kHistoryVersions = 500;

std::string ManifestKey(uint64_t version, bool full) { return std::to_string(version) + (full ? "/full" : "/delta"); }
}  // namespace

update::DeltaOptions DeltaOptionsOf(const config::LearnerOptions& options) {
  update::DeltaOptions d;
  d.min_abs_change = static_cast<float>(options.publish.delta_min_abs_change);
  d.max_fraction = options.publish.delta_max_fraction;
  return d;
}

double UpdateFractionOf(const config::LearnerOptions& options) {
  return options.training.sparse_rounds ? options.publish.delta_max_fraction : 1.0;
}

Publisher::Publisher(LoopState& state, Catalogue& catalogue, update::SigningKeyPair signing_key, const Clock& clock,
                     FileSystem& file_system)
    : state_(state), catalogue_(catalogue), signing_key_(std::move(signing_key)), clock_(clock), fs_(file_system) {}

Status Publisher::Publish(const std::string& name, const update::TensorMap& weights, const PublishScore& score,
                          const update::EncodedDelta* given_delta, std::optional<uint64_t> based_on,
                          uint64_t revert_of) {
  std::lock_guard publishing(publish_mu_);
  std::shared_ptr<const model::StudentOptions> arch;
  std::shared_ptr<const DeployedModel> deployed;
  uint64_t latest = 0;
  {
    std::lock_guard lock(state_.mu);
    auto it = state_.groups.find(name);
    if (it == state_.groups.end()) return Status::NotFound("group " + name);
    arch = it->second.arch;
    deployed = it->second.deployed;
    latest = it->second.latest;
  }
  if (based_on && *based_on != latest) {
    return Status::FailedPrecondition("candidate made against v" + std::to_string(*based_on) + " but v" +
                                      std::to_string(latest) + " was published meanwhile");
  }
  if (!arch) return Status::FailedPrecondition("group " + name + " has no student architecture yet");
  model::Student s(*arch);
  KD_RETURN_IF_ERROR(update::LoadState(*s, weights));
  s->eval();
  const auto params = update::ParameterNames(*s);
  const auto& opt = state_.options;
  VersionInfo info;
  info.version = latest + 1;
  info.revert_of = revert_of;
  info.digest = update::StateDigest(weights);
  info.arch_hash = update::ArchHash(*arch);
  info.ap = score.ap;
  info.ap_base = score.ap_base;
  info.ap50 = score.ap50;
  info.ap50_base = score.ap50_base;
  info.holdout_frames = score.holdout_frames;
  info.created_unix_s = clock_.WallMicros() / 1000000;
  // Full snapshot: fp16 when that is lossless for this state, else fp32 (e.g. an fp32 factory model).
  const bool f16_exact = update::StateDigest(update::RoundParametersToF16(weights, params)) == info.digest;
  model::WeightsMeta meta;
  meta.model_version = info.version;
  meta.base_version = latest;
  meta.created_by = "kdlearnd";
  meta.created_unix_s = info.created_unix_s;
  KD_ASSIGN_OR_RETURN(auto full,
                      model::EncodeWeights(*s, meta, f16_exact ? model::WeightDtype::kF16 : model::WeightDtype::kF32));
  // Never publish what a device could not run: the artefact is decoded and run exactly as the edge
  // does (architecture, head, shapes, finite outputs on a grey frame).
  KD_RETURN_IF_ERROR(model::CheckDeployableWeights(full).WithContext("v" + std::to_string(info.version) +
                                                                     " not published: devices could not run it"));
  info.full_sha = Sha256Hex(full);
  info.full_size = full.size();
  KD_RETURN_IF_ERROR(WriteFileAtomic(fs_, FullArtifactPath(catalogue_.artifacts_dir(), info), full));
  if (deployed) {
    // Re-encoding a reconstruction would round twice and may not reproduce it: use the delta that
    // made it when there is one.
    std::optional<update::EncodedDelta> encoded;
    if (!given_delta) {
      KD_ASSIGN_OR_RETURN(auto d, update::EncodeDelta(deployed->state, weights, params, DeltaOptionsOf(opt)));
      encoded = std::move(d);
      given_delta = &*encoded;
    }
    if (update::StateDigest(given_delta->reconstructed) == info.digest) {
      info.delta_base = latest;
      info.delta_sha = Sha256Hex(given_delta->bytes);
      info.delta_size = given_delta->bytes.size();
      KD_RETURN_IF_ERROR(WriteFileAtomic(fs_, DeltaArtifactPath(catalogue_.artifacts_dir(), info), given_delta->bytes));
    }
  }
  // Signed once here; ManifestFor re-signs only when half the validity has passed.
  const int64_t now_s = clock_.WallMicros() / 1000000;
  std::map<std::string, SignedManifestBlob> manifests;
  for (const bool full_kind : {true, false}) {
    if (!full_kind && info.delta_sha.empty()) continue;
    KD_ASSIGN_OR_RETURN(auto blob, SignManifest(name, info, full_kind, now_s));
    manifests[ManifestKey(info.version, full_kind)] = {now_s + opt.publish.manifest_ttl_s, std::move(blob)};
  }
  auto next = std::make_shared<const DeployedModel>(weights, *s);
  std::vector<VersionInfo> pruned;
  {
    std::lock_guard lock(state_.mu);
    Group& g = state_.groups.at(name);
    g.versions[info.version] = info;
    g.history[info.version] = info;
    while (g.history.size() > kHistoryVersions) g.history.erase(g.history.begin());
    const uint64_t previous = g.latest;
    g.latest = info.version;
    ++g.publishes;
    g.deployed = std::move(next);
    g.manifests.merge(manifests);
    // A halted rollout waits for its revert (TrainStage): a version trained meanwhile is published
    // but not rolled out, or it would replace the halt and send devices to an unproven version.
    const bool halted = g.rollout.stage() == RolloutStage::kHalted;
    if ((opt.rollout.auto_start && !halted) || revert_of != 0) {
      // A revert goes to every device at once: it is a model they already ran successfully.
      g.rollout.Start(info.version, previous, clock_.WallMicros(), /*canary_first=*/revert_of == 0);
    }
    // Keep the artefacts of the last keep_versions + 1 versions, oldest dropped first, but never
    // those of the latest version, the one being rolled out or the rollout's fallback.
    for (auto it = g.versions.begin();
         it != g.versions.end() && g.versions.size() > static_cast<size_t>(opt.publish.keep_versions) + 1;) {
      const uint64_t v = it->first;
      if (v == g.latest || v == g.rollout.version() || v == g.rollout.previous()) {
        ++it;
        continue;
      }
      pruned.push_back(it->second);
      for (const bool full_kind : {true, false}) g.manifests.erase(ManifestKey(v, full_kind));
      it = g.versions.erase(it);
    }
  }
  KD_RETURN_IF_ERROR(catalogue_.PersistGroup(name));
  // Removed after the catalogue no longer lists them (a crash in between leaves a stray file, never
  // a listed version without its artefact).
  for (const auto& old : pruned) {
    (void)fs_.Remove(FullArtifactPath(catalogue_.artifacts_dir(), old));
    if (!old.delta_sha.empty()) (void)fs_.Remove(DeltaArtifactPath(catalogue_.artifacts_dir(), old));
  }
  KD_LOG(kInfo) << "published " << name << " v" << info.version
                << (revert_of ? " (revert to v" + std::to_string(revert_of) + ")" : "") << ": held-out AP " << score.ap
                << " (was " << score.ap_base << "), AP50 " << score.ap50 << " (was " << score.ap50_base << "), full "
                << info.full_size << " B" << (f16_exact ? " fp16" : " fp32") << ", delta "
                << (info.delta_size ? std::to_string(info.delta_size) + " B" : std::string("none"));
  return Status::Ok();
}

Status Publisher::Revert(const std::string& name) {
  VersionInfo info;
  {
    std::lock_guard lock(state_.mu);
    auto it = state_.groups.find(name);
    if (it == state_.groups.end()) return Status::NotFound("group " + name);
    const Group& g = it->second;
    const uint64_t revert_to = g.rollout.previous();
    auto v = g.versions.find(revert_to);
    if (revert_to == 0 || v == g.versions.end()) {
      return Status::FailedPrecondition("group " + name + " has no previous version to return to");
    }
    info = v->second;
  }
  KD_ASSIGN_OR_RETURN(auto loaded, model::LoadWeights(FullArtifactPath(catalogue_.artifacts_dir(), info)));
  KD_LOG(kWarn) << "group " << name << ": rollout halted; republishing v" << info.version << " as a new version";
  KD_RETURN_IF_ERROR(Publish(name, update::StateOf(*loaded.student),
                             {.ap = info.ap,
                              .ap_base = info.ap,
                              .ap50 = info.ap50,
                              .ap50_base = info.ap50,
                              .holdout_frames = info.holdout_frames},
                             nullptr, std::nullopt, info.version));
  // Training continues from the reverted weights.
  std::lock_guard lock(state_.mu);
  ++state_.groups.at(name).reverts;
  return Status::Ok();
}

Result<std::string> Publisher::SignManifest(const std::string& group, const VersionInfo& info, bool full,
                                            int64_t now_s) {
  update::Manifest m;
  m.model_id = group;
  m.version = info.version;
  m.base_version = full ? 0 : info.delta_base;
  m.kind = full ? update::ArtifactKind::kFull : update::ArtifactKind::kDelta;
  m.arch_hash = info.arch_hash;
  m.target_digest = info.digest;
  m.artifact_size = full ? info.full_size : info.delta_size;
  m.artifact_sha256 = full ? info.full_sha : info.delta_sha;
  m.chunk_size = static_cast<uint32_t>(state_.options.publish.chunk_bytes);
  m.created_unix_s = now_s;
  m.expires_unix_s = now_s + state_.options.publish.manifest_ttl_s;
  m.rollout_id = group + "-v" + std::to_string(info.version);
  KD_ASSIGN_OR_RETURN(auto signed_m, update::SignManifest(m, signing_key_));
  return update::EncodeSignedManifest(signed_m);
}

Result<std::string> Publisher::ManifestFor(const std::string& group, uint64_t version, bool full) {
  const int64_t now_s = clock_.WallMicros() / 1000000;
  VersionInfo info;
  {
    std::lock_guard lock(state_.mu);
    auto g = state_.groups.find(group);
    if (g == state_.groups.end()) return Status::NotFound("group " + group);
    auto it = g->second.versions.find(version);
    if (it == g->second.versions.end()) return Status::NotFound("version " + std::to_string(version));
    info = it->second;
    if (!full && info.delta_sha.empty()) full = true;
    auto cached = g->second.manifests.find(ManifestKey(version, full));
    // Re-signed once half the validity has passed, so a device never gets a nearly expired one.
    if (cached != g->second.manifests.end() &&
        cached->second.expires_unix_s - now_s > state_.options.publish.manifest_ttl_s / 2) {
      return cached->second.blob;
    }
  }
  KD_ASSIGN_OR_RETURN(auto blob, SignManifest(group, info, full, now_s));
  std::lock_guard lock(state_.mu);
  auto g = state_.groups.find(group);
  if (g != state_.groups.end() && g->second.versions.count(version)) {
    g->second.manifests[ManifestKey(version, full)] = {now_s + state_.options.publish.manifest_ttl_s, blob};
  }
  return blob;
}

Result<std::string> Publisher::ReadChunk(const std::string& group, const std::string& object_id, uint64_t offset,
                                         uint64_t length) {
  if (length == 0 || length > static_cast<uint64_t>(state_.options.publish.chunk_bytes)) {
    return Status::InvalidArgument("chunk length " + std::to_string(length) + " (1.." +
                                   std::to_string(state_.options.publish.chunk_bytes) + ")");
  }
  std::string path;
  uint64_t size = 0;
  {
    std::lock_guard lock(state_.mu);
    auto g = state_.groups.find(group);
    if (g != state_.groups.end()) {
      for (const auto& [v, info] : g->second.versions) {
        if (info.full_sha == object_id)
          path = FullArtifactPath(catalogue_.artifacts_dir(), info), size = info.full_size;
        if (!info.delta_sha.empty() && info.delta_sha == object_id) {
          path = DeltaArtifactPath(catalogue_.artifacts_dir(), info), size = info.delta_size;
        }
      }
    }
  }
  if (path.empty() || offset >= size) return Status::NotFound("no artefact " + object_id + " range for this group");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot open artefact " + path);
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(std::min(length, size - offset), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<size_t>(in.gcount()));
  return out;
}

}  // namespace kd::learner
