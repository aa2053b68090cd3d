#include "edge/agent.h"

#include <fstream>
#include <iostream>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/log.h"
#include "edge/bounded_queue.h"
#include "edge/capture.h"
#include "edge/infer.h"
#include "edge/latest_frame.h"
#include "edge/link.h"
#include "edge/model_holder.h"
#include "edge/observe.h"
#include "edge/probation.h"
#include "edge/running_model.h"
#include "edge/updater.h"
#include "edge/uplink.h"
#include "media/image_ops.h"
#include "model/threads.h"
#include "update/signing.h"
#include "update/slots.h"
#include "wire/curve_keys.h"
#include "wire/endpoint.h"

namespace kd::edge {
using json = nlohmann::json;
using std::chrono::milliseconds;

namespace {
// Frames between capture and inference: small, so a live camera's newest frame is never far behind.
constexpr size_t kCaptureQueueFrames = 2;
// Selected frames between inference and the uplink (the uplink's own resend buffer holds more).
constexpr size_t kUploadQueueFrames = 64;
// Headroom of a frame message over its JPEG (header, hashes), bytes.
constexpr size_t kFrameHeaderBytes = 4096;
// Largest control message (a chunk of an update plus its header), bytes.
constexpr size_t kControlPayloadBytes = size_t{16} << 20;
// Unsent control messages (reports) get this long at close, ms.
constexpr int kControlLingerMs = 1000;
// How often Stop polls the uplink for outstanding acknowledgements, ms.
constexpr int kAckPollMs = 20;
}  // namespace

// Declaration order is destruction order in reverse: what the stages borrow comes first, the
// stages last, so a stage is always joined before what it uses goes away.
struct EdgeAgent::Impl {
  config::EdgeOptions opt;
  ModelBuilder build_model;
  const Clock& clock;  // EdgeSeams::clock, else the system clock
  // Times inference (probation's latency check) and the self-test (EdgeSeams::inference_clock).
  const Clock* inference_clock = &SystemClock::Get();

  std::optional<update::ModelSlots> slots;
  std::vector<std::string> trusted_keys;
  std::unique_ptr<media::FrameSource> first_source;
  std::ofstream detections_file;
  std::ostream* detections_out = nullptr;

  std::unique_ptr<wire::Context> ctx;
  std::unique_ptr<wire::Client> frames_client, control_client;
  std::unique_ptr<ClientLink> frames_link, control_link;

  EdgeStats stats{clock};
  Probation probation{ProbationOptions{static_cast<uint64_t>(opt.update.probation_frames), opt.update.probation_seconds,
                                       opt.update.max_latency_ratio},
                      clock};
  std::unique_ptr<ModelHolder> models;
  LatestFrame latest;
  BoundedQueue<media::Frame> capture_q{kCaptureQueueFrames};
  BoundedQueue<PendingFrame> upload_q{kUploadQueueFrames};

  std::unique_ptr<Updater> updater;
  std::unique_ptr<Uplink> uplink;
  std::unique_ptr<Infer> infer;
  std::unique_ptr<Capture> capture;
  bool stopped = false;
  const int64_t started_us = clock.MonotonicNanos() / 1000;

  Impl(const config::EdgeOptions& options, const EdgeSeams& seams)
      : opt(options),
        build_model(seams.build_model),
        clock(seams.clock != nullptr ? *seams.clock : static_cast<const Clock&>(SystemClock::Get())) {
    if (seams.inference_clock != nullptr) inference_clock = seams.inference_clock;
  }
  Status Init();
  Status LoadModels();
  Status Connect();
  void StopAll(milliseconds ack_grace);
};

Status EdgeAgent::Impl::LoadModels() {
  model::SetComputeThreads(opt.model.threads);
  model::TuneAllocatorForTensors();
  KD_ASSIGN_OR_RETURN(auto s, update::ModelSlots::Open(opt.model.dir));
  slots.emplace(std::move(s));
  if (slots->CommittedPath().empty()) {
    if (opt.model.bootstrap.empty()) {
      return Status::FailedPrecondition("no model installed in " + opt.model.dir + " and no model.bootstrap given");
    }
    KD_RETURN_IF_ERROR(slots->Bootstrap(opt.model.bootstrap, opt.model.bootstrap_version));
  }
  KD_ASSIGN_OR_RETURN(bool abandoned, slots->NoteStart(static_cast<uint32_t>(opt.update.max_trial_starts)));
  if (abandoned) {
    KD_LOG(kWarn) << "a model on trial failed " << opt.update.max_trial_starts << " starts: rolled back";
  }
  const auto& st = slots->state();
  KD_ASSIGN_OR_RETURN(auto committed,
                      LoadRunningModel(slots->CommittedPath(), st.committed_version, false, build_model));
  std::shared_ptr<const RunningModel> current = committed;
  if (st.trial_version != 0) {
    // Restarted during a probation: the trial runs again (its start was counted above).
    auto trial = LoadRunningModel(slots->SlotPath(st.trial_slot), st.trial_version, true, build_model);
    if (trial.ok()) {
      current = *trial;
      probation.Start();
    } else {
      KD_LOG(kWarn) << "model on trial cannot be loaded (" << trial.status().ToString() << "): rolled back";
      KD_RETURN_IF_ERROR(slots->RollbackTrial());
    }
  }
  models = std::make_unique<ModelHolder>(std::move(committed), std::move(current));
  const uint64_t running = models->running_version(), committed_version = st.committed_version,
                 floor = st.floor_version;
  stats.Update([&](EdgeCounters& c) {
    c.running_version = running;
    c.committed_version = committed_version;
    c.floor_version = floor;
  });
  return Status::Ok();
}

Status EdgeAgent::Impl::Connect() {
  if (opt.learner.insecure) {
    KD_LOG(kWarn) << "INSECURE: learner.insecure = true: frames and control travel in plaintext to "
                  << opt.learner.frames_endpoint << " (updates are still verified against update.trusted_keys)";
  }
  ctx = std::make_unique<wire::Context>();
  std::optional<wire::CurveKeyPair> client_keys;
  std::string server_key;
  if (!opt.learner.insecure) {
    KD_ASSIGN_OR_RETURN(auto keys, wire::ReadCurveKeyPair(opt.learner.client_key));
    client_keys = keys;
    KD_ASSIGN_OR_RETURN(server_key, wire::ReadCurvePublicKey(opt.learner.server_key));
  }
  auto client_options = [&](const std::string& endpoint) {
    wire::ClientOptions co;
    co.endpoint = endpoint;
    co.curve = client_keys;
    co.server_public_key = server_key;
    co.heartbeat_ivl_ms = opt.learner.heartbeat_ms;
    co.heartbeat_timeout_ms = opt.learner.timeout_ms;
    co.heartbeat_ttl_ms = opt.learner.timeout_ms;
    co.reconnect_ivl_max_ms = opt.learner.reconnect_max_ms;
    return co;
  };
  auto fo = client_options(opt.learner.frames_endpoint);
  fo.limits.max_payload_bytes = static_cast<size_t>(opt.uplink.max_jpeg_bytes) + kFrameHeaderBytes;
  KD_ASSIGN_OR_RETURN(frames_client, wire::Client::Connect(*ctx, fo));
  auto co = client_options(opt.learner.control_endpoint);
  co.limits.max_payload_bytes = kControlPayloadBytes;
  co.linger_ms = kControlLingerMs;
  KD_ASSIGN_OR_RETURN(control_client, wire::Client::Connect(*ctx, co));
  frames_link = std::make_unique<ClientLink>(*frames_client);
  control_link = std::make_unique<ClientLink>(*control_client);
  return Status::Ok();
}

Status EdgeAgent::Impl::Init() {
  KD_RETURN_IF_ERROR(LoadModels());
  for (const auto& path : opt.update.trusted_keys) {
    KD_ASSIGN_OR_RETURN(auto key, update::ReadVerifyKey(path));
    trusted_keys.push_back(std::move(key));
  }
  const SourceOpener open_source = OpenerFor(opt.source);
  KD_ASSIGN_OR_RETURN(first_source, open_source());
  if (opt.output.detections == "-") {
    detections_out = &std::cout;
  } else if (!opt.output.detections.empty()) {
    detections_file.open(opt.output.detections, std::ios::app);
    if (!detections_file) return Status::IOError("cannot open " + opt.output.detections);
    detections_out = &detections_file;
  }
  KD_RETURN_IF_ERROR(Connect());
  KD_ASSIGN_OR_RETURN(UploadPicker picker, UploadPicker::Create(opt.uplink, clock));

  // Consumers before producers: nothing is pushed into a stage that is not running yet.
  updater = std::make_unique<Updater>(opt, *slots, trusted_keys, *control_link, *models, probation, stats, latest,
                                      build_model, clock, *inference_clock);
  uplink =
      std::make_unique<Uplink>(opt.device_id, opt.uplink, opt.learner, *frames_link, upload_q, *models, stats, clock);
  infer = std::make_unique<Infer>(opt.model.score_threshold, capture_q, upload_q, std::move(picker), *models, probation,
                                  stats, latest, detections_out, *inference_clock);
  capture = std::make_unique<Capture>(opt.source, open_source, std::move(first_source), capture_q, stats, clock);
  updater->Start();
  uplink->Start();
  infer->Start();
  capture->Start();
  const auto cur = models->current();
  KD_LOG(kInfo) << "kdedge " << opt.device_id << " running model v" << cur->version << (cur->trial ? " (on trial)" : "")
                << " on " << opt.source.uri;
  return Status::Ok();
}

void EdgeAgent::Impl::StopAll(milliseconds ack_grace) {
  if (stopped) return;
  stopped = true;
  // Capture first: the uplink may end as soon as everything before it is drained and acknowledged.
  if (uplink) uplink->FinishWhenDrained();
  if (capture) capture->Stop();
  capture_q.Close();
  if (infer) infer->Join();  // queued frames are inferred; the uplink queue is then closed
  // Give the uplink a moment to send the last frames and get them acknowledged. Not waiting() > 0:
  // frames still in the upload queue are not counted there, so the grace could end before they went.
  const auto deadline = std::chrono::steady_clock::now() + ack_grace;
  while (uplink && !uplink->drained() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(kAckPollMs));
  }
  if (ctx) ctx->Shutdown();  // wakes both sockets' receives
  if (uplink) uplink->Stop();
  if (updater) updater->Stop();
  frames_link.reset();
  control_link.reset();
  frames_client.reset();
  control_client.reset();
  ctx.reset();
  KD_LOG(kInfo) << "kdedge " << opt.device_id << " stopped";
}

// ---------------------------------------------------------------------------------------------

Result<std::unique_ptr<EdgeAgent>> EdgeAgent::Start(const config::EdgeOptions& options) {
  return Start(options, EdgeSeams{});
}

Result<std::unique_ptr<EdgeAgent>> EdgeAgent::Start(const config::EdgeOptions& options, const EdgeSeams& seams) {
  auto impl = std::make_unique<Impl>(options, seams);
  Status st = impl->Init();
  if (!st.ok()) {
    impl->StopAll(milliseconds(0));
    return st;
  }
  return std::unique_ptr<EdgeAgent>(new EdgeAgent(std::move(impl)));
}

EdgeAgent::EdgeAgent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
EdgeAgent::~EdgeAgent() { Stop(); }
void EdgeAgent::Stop(milliseconds ack_grace) { impl_->StopAll(ack_grace); }

bool EdgeAgent::WaitForSourceEnd(milliseconds timeout) { return impl_->infer->WaitDone(timeout); }

EdgeCounters EdgeAgent::counters() const { return impl_->stats.Snapshot(); }

std::vector<uint64_t> EdgeAgent::AckedSeqs() const { return impl_->stats.AckedSeqs(); }

std::string EdgeAgent::StatusJson() const {
  const EdgeCounters k = counters();
  const auto cur = impl_->models ? impl_->models->current() : nullptr;
  json model = json::object();
  if (cur) {
    json classes = json::array();
    for (int label : cur->arch.labels) classes.push_back(std::string(CocoClassName(label)));
    model = {{"version", cur->version},
             {"trial", cur->trial},
             {"input", std::to_string(cur->arch.input_width) + "x" + std::to_string(cur->arch.input_height)},
             {"width", cur->arch.width},
             {"nms_free", cur->arch.one_to_one},
             {"classes", classes}};
  }
  return json{{"daemon", "kdedge"},
              {"version", ops::ProjectVersion()},
              {"git", ops::GitCommit()},
              {"device", impl_->opt.device_id},
              {"state", k.downloading ? "downloading" : (cur && cur->trial ? "probation" : "running")},
              {"source_done", k.source_done},
              {"model", model},
              {"desired_version", k.desired_version},
              {"uplink_kbps", k.uplink_kbps},
              {"downlink_kbps", k.downlink_kbps},
              {"uplink_budget_kbps", impl_->opt.uplink.kbps},
              {"unacked_frames", k.unacked_frames},
              {"running_version", k.running_version},
              {"committed_version", k.committed_version},
              {"floor_version", k.floor_version},
              {"fps", k.fps},
              {"mean_inference_ms", k.mean_inference_ms},
              {"max_frame_gap_ms", k.max_frame_gap_ms},
              {"frames_captured", k.frames_captured},
              {"frames_inferred", k.frames_inferred},
              {"frames_dropped", k.frames_dropped},
              {"frames_selected", k.frames_selected},
              {"frames_sent", k.frames_sent},
              {"frames_acked", k.frames_acked},
              {"frames_resent", k.frames_resent},
              {"frames_refused", k.frames_refused},
              {"frames_kept_for_resend", k.frames_kept_for_resend},
              {"uplink_bytes", k.uplink_bytes},
              {"downlink_bytes", k.downlink_bytes},
              {"swaps", k.swaps},
              {"commits", k.commits},
              {"rollbacks", k.rollbacks},
              {"rejected_manifests", k.rejected_manifests},
              {"inference_errors", k.inference_errors}}
      .dump();
}

std::vector<ops::MetricFamily> EdgeAgent::Metrics() const {
  return EdgeMetrics(impl_->opt.device_id, counters(), impl_->stats.InferenceHistogram());
}

namespace {
EdgeHealthInput HealthInput(const EdgeAgent::Impl& impl);
}  // namespace

ops::HealthReport EdgeAgent::Live() const { return EdgeLiveness(HealthInput(*impl_)); }
ops::HealthReport EdgeAgent::Ready() const { return EdgeReadiness(HealthInput(*impl_)); }

namespace {
EdgeHealthInput HealthInput(const EdgeAgent::Impl& impl) {
  return {.counters = impl.stats.Snapshot(),
          .now_us = impl.clock.MonotonicNanos() / 1000,
          .started_us = impl.started_us,
          .last_inferred_us = impl.stats.last_inferred_us(),
          .model_loaded = impl.models && impl.models->current() != nullptr};
}
}  // namespace

Result<std::vector<uint8_t>> EdgeAgent::PreviewJpeg() const {
  auto p = impl_->latest.GetPreview();
  if (!p) return Status::NotFound("no frame inferred yet");
  return media::EncodeJpeg(media::DrawDetections(p->frame, p->detections), 80);
}

Result<std::string> EdgeAgent::PreviewJson() const {
  auto p = impl_->latest.GetPreview();
  if (!p) return Status::NotFound("no frame inferred yet");
  json dets = json::array();
  for (const Detection& d : p->detections) {
    dets.push_back({{"x", d.box.x1},
                    {"y", d.box.y1},
                    {"w", d.box.width()},
                    {"h", d.box.height()},
                    {"score", d.score},
                    {"class", std::string(CocoClassName(d.label))}});
  }
  return json{{"frame", p->frame.index},
              {"version", p->model_version},
              {"width", p->frame.width},
              {"height", p->frame.height},
              {"detections", dets}}
      .dump();
}

}  // namespace kd::edge
