#include "edge/updater.h"

#include <algorithm>
#include <chrono>
#include <limits>
#include <span>

#include <torch/torch.h>

#include "base/log.h"
#include "base/thread_name.h"
#include "model/weights_file.h"
#include "update/delta.h"
#include "update/state.h"

namespace kd::edge {

Updater::Updater(const config::EdgeOptions& options, update::ModelSlots& slots, std::vector<std::string> trusted_keys,
                 Link& link, ModelHolder& models, Probation& probation, EdgeStats& stats, const LatestFrame& latest,
                 ModelBuilder build_model, const Clock& clock, const Clock& inference_clock)
    : options_(options),
      slots_(slots),
      trusted_keys_(std::move(trusted_keys)),
      link_(link),
      models_(models),
      probation_(probation),
      stats_(stats),
      latest_(latest),
      build_model_(std::move(build_model)),
      clock_(clock),
      inference_clock_(inference_clock) {}

Updater::~Updater() { Stop(); }

void Updater::Start() {
  thread_ = std::thread([this] {
    SetCurrentThreadName("kd-updater");
    while (!stop_ && Step()) {
    }
  });
}

void Updater::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

wire::Message Updater::NewMessage(wire::MsgType type) const {
  return edge::NewMessage(type, options_.device_id, models_.running_version(), clock_);
}

void Updater::Report(wire::UpdateOutcome outcome, uint64_t version, const std::string& text) {
  auto m = NewMessage(wire::MsgType::kUpdateReport);
  m.header.outcome = outcome;
  m.header.model_version = version;
  m.header.error_text = text.substr(0, kMaxReportText);
  (void)link_.Send(m);
}

bool Updater::Step() {
  const int64_t now = NowUs();
  JudgeTrial();
  if (now - last_status_us_ >= int64_t{options_.output.status_interval_ms} * 1000) {
    SendStatus();
    last_status_us_ = now;
  }
  PumpDownload(now);
  stats_.Update([&](EdgeCounters& c) { c.downloading = dl_.has_value(); });
  auto in = link_.Receive(std::chrono::milliseconds(kReceiveMs));
  if (!in.ok()) return !stop_;
  if (*in) Handle(**in);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Probation of a model on trial.

void Updater::JudgeTrial() {
  const std::shared_ptr<const RunningModel> cur = models_.Settled();
  if (!cur || !cur->trial) return;
  const Probation::Decision d = probation_.Decide();
  if (d.verdict == Probation::Verdict::kRollBack) {
    KD_LOG(kWarn) << "model v" << cur->version << " failed probation (" << d.reason << "): rolling back to v"
                  << models_.committed()->version;
    models_.RollBack();
    (void)slots_.RollbackTrial();
    // A version that failed on this camera is not installed again by this process, whatever the
    // learner offers (it republishes older weights under a new version number).
    retry_after_us_[cur->version] = std::numeric_limits<int64_t>::max();
    Report(wire::UpdateOutcome::kRolledBack, cur->version, d.reason);
    stats_.Update([](EdgeCounters& c) { ++c.rollbacks; });
  } else if (d.verdict == Probation::Verdict::kCommit) {
    Status st = slots_.CommitTrial();
    if (!st.ok()) {
      KD_LOG(kError) << "commit: " << st.ToString();
      return;
    }
    auto kept = std::make_shared<RunningModel>(*cur);
    kept->trial = false;
    models_.Commit(std::move(kept));  // same weights, no longer on trial
    KD_LOG(kInfo) << "model v" << cur->version << " committed after " << d.frames << " frames on probation";
    Report(wire::UpdateOutcome::kCommitted, cur->version, "");
    const uint64_t committed = slots_.state().committed_version, floor = slots_.state().floor_version;
    stats_.Update([&](EdgeCounters& c) {
      ++c.commits;
      c.committed_version = committed;
      c.floor_version = floor;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Status (the learner's reply says which version to run) and the download pump.

void Updater::SendStatus() {
  auto m = NewMessage(wire::MsgType::kStatus);
  const EdgeCounters c = stats_.CloseInterval();
  auto& s = m.header.status;
  s.running_version = c.running_version;
  s.committed_version = slots_.state().committed_version;
  s.floor_version = slots_.state().floor_version;
  s.state = dl_ ? "downloading" : (models_.current()->trial ? "probation" : "running");
  s.fps = c.fps;
  s.frames_captured = c.frames_captured;
  s.frames_inferred = c.frames_inferred;
  s.frames_selected = c.frames_selected;
  s.frames_acked = c.frames_acked;
  s.frames_dropped = c.frames_dropped;
  s.uplink_bytes = c.uplink_bytes;
  s.downlink_bytes = c.downlink_bytes;
  s.want_full = want_full_;
  s.mean_inference_ms = c.mean_inference_ms;
  s.unacked_frames = c.unacked_frames;
  s.uplink_budget_kbps = options_.uplink.kbps;
  m.header.seq = ++request_id_;
  (void)link_.Send(m);
}

void Updater::PumpDownload(int64_t now_us) {
  if (!dl_ || !dl_->download) return;
  const uint64_t size = dl_->manifest.artifact_size, chunk = dl_->manifest.chunk_size;
  if (dl_->last_chunk_us && now_us - dl_->last_chunk_us > kChunkSilenceUs) {
    dl_->requested_to = dl_->download->have();  // lost requests or replies: ask again from where we are
    dl_->last_chunk_us = now_us;
  }
  const uint64_t window = chunk * static_cast<uint64_t>(options_.update.download_window);
  while (dl_->requested_to < size && dl_->requested_to < dl_->download->have() + window) {
    auto m = NewMessage(wire::MsgType::kChunkRequest);
    m.header.object_id = dl_->manifest.artifact_sha256;
    m.header.offset = dl_->requested_to;
    m.header.length = std::min<uint64_t>(chunk, size - dl_->requested_to);
    m.header.seq = ++request_id_;
    if (!link_.Send(m).ok()) break;
    dl_->requested_to += m.header.length;
    if (!dl_->last_chunk_us) dl_->last_chunk_us = now_us;
  }
}

void Updater::Handle(const wire::Message& msg) {
  const auto& h = msg.header;
  if (h.type == wire::MsgType::kStatusReply) {
    OnStatusReply(msg);
  } else if (h.type == wire::MsgType::kChunk && dl_ && dl_->download && h.object_id == dl_->manifest.artifact_sha256) {
    if (h.offset != dl_->download->have()) return;  // a duplicate after a re-request
    Status st = dl_->download->Append(
        h.offset, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(msg.payload.data()), msg.payload.size()));
    dl_->last_chunk_us = NowUs();
    stats_.Update([&](EdgeCounters& c) { c.downlink_bytes += msg.payload.size(); });
    if (!st.ok()) {
      KD_LOG(kError) << "download: " << st.ToString();
      dl_.reset();
      return;
    }
    if (dl_->download->complete()) InstallDownload();
  } else if (h.type == wire::MsgType::kError && dl_) {
    KD_LOG(kWarn) << "download of v" << dl_->manifest.version << ": learner error " << wire::ErrorCodeName(h.error_code)
                  << ": " << h.error_text;
    dl_.reset();
  }
}

void Updater::OnStatusReply(const wire::Message& msg) {
  const auto& h = msg.header;
  const std::shared_ptr<const RunningModel> cur = models_.current();
  const bool busy = models_.Busy();
  stats_.Update([&](EdgeCounters& c) { c.desired_version = h.desired_version; });
  if (dl_ && h.desired_version != 0 && h.desired_version != dl_->manifest.version) {
    // The learner moved on (a newer version, or a rollback): this download would never be run.
    KD_LOG(kInfo) << "download of v" << dl_->manifest.version << " abandoned: the learner now offers v"
                  << h.desired_version;
    (void)dl_->download->Abandon();
    dl_.reset();
  }
  if (msg.payload.empty() || dl_ || busy || h.desired_version == 0 || h.desired_version == cur->version) return;
  if (auto r = retry_after_us_.find(h.desired_version); r != retry_after_us_.end() && NowUs() < r->second) return;
  auto signed_m = update::DecodeSignedManifest(msg.payload);
  update::VerifyOptions vo;
  vo.trusted_keys = trusted_keys_;
  vo.now_unix_s = clock_.WallMicros() / 1000000;
  vo.version_floor = std::max(slots_.state().floor_version, cur->version);
  Result<update::Manifest> man =
      signed_m.ok() ? update::VerifyManifest(*signed_m, vo) : Result<update::Manifest>(signed_m.status());
  if (man.ok() && man->kind == update::ArtifactKind::kDelta && man->base_version != cur->version) {
    want_full_ = true;  // the learner offered a delta for another base: ask for a snapshot
    return;
  }
  if (!man.ok()) {
    const std::string key = std::to_string(h.desired_version) + ":" + man.status().ToString();
    if (refused_.insert(key).second) {
      KD_LOG(kWarn) << "refused the manifest for v" << h.desired_version << ": " << man.status().ToString()
                    << " (keeping v" << cur->version << ")";
      Report(wire::UpdateOutcome::kRejected, h.desired_version, man.status().ToString());
      stats_.Update([](EdgeCounters& c) { ++c.rejected_manifests; });
    }
    return;
  }
  auto d = update::ModelSlots::Download::Begin(options_.model.dir, man->artifact_sha256, man->artifact_size);
  if (!d.ok()) {
    KD_LOG(kError) << "download: " << d.status().ToString();
    return;
  }
  dl_.emplace();
  dl_->manifest = *man;
  dl_->download.emplace(std::move(d).value());
  dl_->requested_to = dl_->download->have();
  KD_LOG(kInfo) << "downloading v" << man->version << " ("
                << (man->kind == update::ArtifactKind::kDelta ? "delta from v" + std::to_string(man->base_version)
                                                              : std::string("full"))
                << ", " << man->artifact_size << " B, resuming at " << dl_->download->have() << ")";
  // Already complete on disk (the process died between the last chunk and the install): no chunk
  // will arrive to trigger the install, so install now.
  if (dl_->download->complete()) InstallDownload();
}

// ---------------------------------------------------------------------------------------------
// Install: verify, self-test, stage, hand over.

void Updater::InstallDownload() {
  auto bytes = dl_->download->Finish();
  const update::Manifest manifest = dl_->manifest;
  dl_.reset();
  Status inst = bytes.ok() ? Install(manifest, *bytes) : bytes.status();
  if (!inst.ok()) {
    KD_LOG(kWarn) << "install of v" << manifest.version << " refused: " << inst.ToString();
    Report(wire::UpdateOutcome::kRejected, manifest.version, inst.ToString());
    if (manifest.kind == update::ArtifactKind::kDelta) want_full_ = true;
    retry_after_us_[manifest.version] = NowUs() + kRetryAfterFailedInstallUs;
    stats_.Update([](EdgeCounters& c) { ++c.rejected_manifests; });
    return;
  }
  want_full_ = false;
  KD_LOG(kInfo) << "model v" << manifest.version << " verified and swapped in; probation "
                << options_.update.probation_frames << " frames / " << options_.update.probation_seconds << " s";
}

Status Updater::Install(const update::Manifest& man, const std::vector<uint8_t>& artifact) {
  const std::shared_ptr<const RunningModel> base = models_.current();
  // Rebuild the new student: a full .kdw, or the running model's state plus a delta.
  model::Student student{nullptr};
  if (man.kind == update::ArtifactKind::kFull) {
    KD_ASSIGN_OR_RETURN(auto loaded, model::DecodeWeights(artifact));
    student = loaded.student;
  } else {
    if (man.base_version != base->version) {
      return Status::FailedPrecondition("delta for v" + std::to_string(man.base_version) + " but running v" +
                                        std::to_string(base->version));
    }
    KD_ASSIGN_OR_RETURN(auto state, update::ApplyDelta(*base->state, artifact));
    student = model::Student(base->arch);
    KD_RETURN_IF_ERROR(update::LoadState(*student, state));
  }
  student->eval();
  if (update::ArchHash(student->options()) != man.arch_hash) {
    return Status::Corruption("the model's architecture does not match the manifest");
  }
  if (update::StateDigest(update::StateOf(*student)) != man.target_digest) {
    return Status::Corruption("the installed weights do not match the manifest's digest");
  }
  KD_ASSIGN_OR_RETURN(std::shared_ptr<const RunningModel> next, build_model_(*student, man.version, /*trial=*/true));
  // Self-test on a recent camera frame, off the inference thread: shapes, finite outputs, latency.
  std::optional<media::Frame> frame = latest_.Get();
  if (!frame) {  // no camera frame yet: a mid-grey one still checks shapes, finiteness and latency
    frame.emplace();
    frame->width = next->arch.input_width;
    frame->height = next->arch.input_height;
    frame->rgb.assign(static_cast<size_t>(frame->width) * static_cast<size_t>(frame->height) * 3, 128);
  }
  KD_RETURN_IF_ERROR(SelfTest(*next, *base, *frame, options_.update.max_latency_ratio, inference_clock_));
  // Stage into the inactive slot (atomic), then hand to the inference thread.
  KD_ASSIGN_OR_RETURN(auto bytes, model::EncodeWeights(*student, {man.version, man.base_version, "kdedge", 0},
                                                       model::WeightDtype::kF32));
  KD_RETURN_IF_ERROR(slots_.StageTrial(man.version, bytes));
  probation_.Start();
  stats_.Update([](EdgeCounters& c) { ++c.swaps; });
  models_.Stage(std::move(next));
  return Status::Ok();
}

}  // namespace kd::edge
