#include "edge/agent.h"

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/clock.h"
#include "base/log.h"
#include "edge/detect_loop.h"
#include "edge/frame_selector.h"
#include "edge/running_model.h"
#include "edge/unacked_buffer.h"
#include "media/image_ops.h"
#include "media/video_source.h"
#include "model/checked_run.h"
#include "model/threads.h"
#include "model/weights_file.h"
#include "wire/curve_keys.h"
#include "wire/endpoint.h"
#include "wire/message.h"

#include "update/delta.h"
#include "update/manifest.h"
#include "update/signing.h"
#include "update/slots.h"
#include "update/state.h"

namespace kd::edge {
using json = nlohmann::json;
using std::chrono::milliseconds;

namespace {

int64_t NowUs() { return SystemClock::Get().WallMicros(); }
int64_t MonoUs() { return SystemClock::Get().MonotonicNanos() / 1000; }

// How often a repeated learner error (same ErrorCode) is logged again, microseconds.
constexpr int64_t kErrorLogIntervalUs = 10'000'000;

// Per-pass effect of a replayed file ("none", "dark:F", "bright:F", "blur:K").
media::Frame ApplyEffect(const media::Frame& frame, const std::string& effect) {
  const auto colon = effect.find(':');
  if (colon == std::string::npos) return frame;
  const std::string kind = effect.substr(0, colon);
  const double v = std::stod(effect.substr(colon + 1));
  if (kind == "dark" || kind == "bright") return media::AdjustBrightnessContrast(frame, v, 0);
  if (kind == "blur") return media::GaussianBlur(frame, 0.3 * ((v - 1) * 0.5 - 1) + 0.8);  // OpenCV's sigma for ksize
  return frame;
}

template <typename T>
class BoundedQueue {  // drop-oldest or blocking, closable
 public:
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) {}
  // Returns the number of items dropped to make room (0 when blocking).
  size_t Push(T item, bool block) {
    std::unique_lock lock(mu_);
    size_t dropped = 0;
    if (block) {
      not_full_.wait(lock, [&] { return closed_ || q_.size() < capacity_; });
      if (closed_) return 1;
    } else {
      while (q_.size() >= capacity_) q_.pop_front(), ++dropped;
    }
    q_.push_back(std::move(item));
    not_empty_.notify_one();
    return dropped;
  }
  // nullopt when closed and empty, or on timeout.
  std::optional<T> Pop(milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!not_empty_.wait_for(lock, timeout, [&] { return closed_ || !q_.empty(); })) return std::nullopt;
    if (q_.empty()) return std::nullopt;
    T item = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return item;
  }
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }
  bool closed_and_empty() const {
    std::lock_guard lock(mu_);
    return closed_ && q_.empty();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<T> q_;
  size_t capacity_;
  bool closed_ = false;
};

struct Upload {
  uint64_t seq = 0;
  int64_t capture_time_us = 0;
  Selection selection;
};

}  // namespace

struct EdgeAgent::Impl {
  config::EdgeOptions opt;
  ModelBuilder build_model;
  // Times inference (probation's latency check) and the self-test (EdgeSeams::inference_clock).
  const Clock* inference_clock = &SystemClock::Get();
  std::optional<update::ModelSlots> slots;
  std::vector<std::string> trusted_keys;
  std::unique_ptr<media::FrameSource> first_source;

  std::unique_ptr<wire::Context> ctx;
  std::unique_ptr<wire::Client> frames_client, control_client;
  std::optional<wire::CurveKeyPair> client_keys;
  std::string server_key;

  // The model: `current` is what the inference thread runs; `pending` is swapped in between frames.
  mutable std::mutex model_mu;
  std::shared_ptr<const RunningModel> current, pending, committed;

  BoundedQueue<media::Frame> capture_q{2};
  BoundedQueue<Upload> upload_q{64};
  std::ofstream detections_file;
  std::ostream* detections_out = nullptr;

  mutable std::mutex stats_mu;
  EdgeCounters c;
  std::optional<media::Frame> golden;  // the latest frame, for self-tests
  std::deque<uint64_t> acked_seqs;     // bounded (kMaxAckedLog)
  // Inference timing, per model version (for probation).
  uint64_t trial_frames = 0, trial_nonfinite = 0, trial_errors = 0;
  std::string trial_error;  // the first run-time error of the model on trial
  double trial_ms_sum = 0, base_ms_ema = 0;
  int64_t trial_started_us = 0;
  uint64_t interval_frames = 0;
  double interval_ms = 0;
  int64_t interval_start_us = 0;
  int64_t last_infer_end_us = 0;

  std::atomic<bool> stop_capture{false}, stop_all{false};
  std::atomic<bool> inference_done{false};
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::thread capture_t, infer_t, uplink_t, control_t;
  bool stopped = false;

  Status Init();
  void CaptureLoop();
  void InferLoop();
  void UplinkLoop();
  void ControlLoop();
  void StopAll(milliseconds ack_grace);

  // Control-thread helpers.
  Status Install(const update::Manifest& m, const std::vector<uint8_t>& artifact);
  void Report(wire::UpdateOutcome outcome, uint64_t version, const std::string& text);
  wire::Message NewMessage(wire::MsgType type) const {
    wire::Message m;
    m.header.type = type;
    m.header.device_id = opt.device_id;
    m.header.send_time_us = NowUs();
    std::lock_guard lock(model_mu);
    m.header.model_version = current ? current->version : 0;
    return m;
  }
  std::atomic<uint64_t> ack_waiting{0};
};

Status EdgeAgent::Impl::Init() {
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
  KD_ASSIGN_OR_RETURN(committed, LoadRunningModel(slots->CommittedPath(), st.committed_version, false, build_model));
  current = committed;
  if (st.trial_version != 0) {
    // Restarted during a probation: the trial runs again (its start was counted above).
    auto trial = LoadRunningModel(slots->SlotPath(st.trial_slot), st.trial_version, true, build_model);
    if (trial.ok()) {
      current = *trial;
      trial_started_us = MonoUs();
    } else {
      KD_LOG(kWarn) << "model on trial cannot be loaded (" << trial.status().ToString() << "): rolled back";
      KD_RETURN_IF_ERROR(slots->RollbackTrial());
    }
  }
  for (const auto& path : opt.update.trusted_keys) {
    KD_ASSIGN_OR_RETURN(auto key, update::ReadVerifyKey(path));
    trusted_keys.push_back(std::move(key));
  }
  if (opt.learner.insecure) {
    KD_LOG(kWarn) << "INSECURE: learner.insecure = true: frames and control travel in plaintext to "
                  << opt.learner.frames_endpoint << " (updates are still verified against update.trusted_keys)";
  }

  media::SourceOptions so;
  so.begin = opt.source.begin;
  so.end = opt.source.end > 0 ? opt.source.end : -1;
  KD_ASSIGN_OR_RETURN(first_source, media::OpenSource(opt.source.uri, so));

  if (opt.output.detections == "-") {
    detections_out = &std::cout;
  } else if (!opt.output.detections.empty()) {
    detections_file.open(opt.output.detections, std::ios::app);
    if (!detections_file) return Status::IOError("cannot open " + opt.output.detections);
    detections_out = &detections_file;
  }

  ctx = std::make_unique<wire::Context>();
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
  fo.limits.max_payload_bytes = static_cast<size_t>(opt.uplink.max_jpeg_bytes) + 4096;
  KD_ASSIGN_OR_RETURN(frames_client, wire::Client::Connect(*ctx, fo));
  auto co = client_options(opt.learner.control_endpoint);
  co.limits.max_payload_bytes = size_t{16} << 20;
  co.linger_ms = 1000;
  KD_ASSIGN_OR_RETURN(control_client, wire::Client::Connect(*ctx, co));

  {
    std::lock_guard lock(stats_mu);
    c.running_version = current->version;
    c.committed_version = st.committed_version;
    c.floor_version = st.floor_version;
  }
  interval_start_us = MonoUs();
  capture_t = std::thread([this] { CaptureLoop(); });
  infer_t = std::thread([this] { InferLoop(); });
  uplink_t = std::thread([this] { UplinkLoop(); });
  control_t = std::thread([this] { ControlLoop(); });
  KD_LOG(kInfo) << "kdedge " << opt.device_id << " running model v" << current->version
                << (current->trial ? " (on trial)" : "") << " on " << opt.source.uri;
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------

void EdgeAgent::Impl::CaptureLoop() {
  std::unique_ptr<media::FrameSource> source = std::move(first_source);
  int pass = 0;
  int64_t index = 0;  // frame number across passes
  while (!stop_capture) {
    if (!source) {
      media::SourceOptions so;
      so.begin = opt.source.begin;
      so.end = opt.source.end > 0 ? opt.source.end : -1;
      auto s = media::OpenSource(opt.source.uri, so);
      if (!s.ok()) {
        KD_LOG(kError) << "capture: " << s.status().ToString() << "; retrying in 1 s";
        std::this_thread::sleep_for(milliseconds(1000));
        continue;
      }
      source = std::move(s).value();
    }
    const double fps = opt.source.fps > 0 ? opt.source.fps : (source->info().fps > 0 ? source->info().fps : 10);
    const std::string effect =
        opt.source.pass_effects.empty() ? "none" : opt.source.pass_effects[pass % opt.source.pass_effects.size()];
    const auto period = std::chrono::microseconds(static_cast<int64_t>(1e6 / fps));
    auto next = std::chrono::steady_clock::now();
    bool ended = false;
    while (!stop_capture) {
      auto f = source->Next();
      if (!f.ok()) {
        KD_LOG(kWarn) << "capture: " << f.status().ToString();
        if (source->info().kind == media::SourceKind::kVideoFile) {
          ended = true;
          break;
        }
        source.reset();  // live source: reopen (reconnect) after a pause
        std::this_thread::sleep_for(milliseconds(500));
        break;
      }
      if (!*f) {
        ended = true;
        break;
      }
      media::Frame frame = effect == "none" ? std::move(**f) : ApplyEffect(**f, effect);
      frame.index = index++;
      frame.timestamp_us = NowUs();
      {
        std::lock_guard lock(stats_mu);
        ++c.frames_captured;
      }
      const size_t dropped = capture_q.Push(std::move(frame), /*block=*/!opt.source.realtime);
      if (dropped) {
        std::lock_guard lock(stats_mu);
        c.frames_dropped += dropped;
      }
      if (opt.source.realtime) {
        next += period;
        std::this_thread::sleep_until(next);
      }
    }
    if (!ended) continue;
    source.reset();
    ++pass;
    if (!opt.source.loop || (opt.source.passes > 0 && pass >= opt.source.passes)) break;
    KD_LOG(kInfo) << "capture: pass " << pass + 1 << " of " << opt.source.uri << " ("
                  << (opt.source.pass_effects.empty() ? "none"
                                                      : opt.source.pass_effects[pass % opt.source.pass_effects.size()])
                  << ")";
  }
  capture_q.Close();
}

void EdgeAgent::Impl::InferLoop() {
  auto selector_or = FrameSelector::Create([&] {
    SelectorOptions so;
    so.uplink_kbps = opt.uplink.kbps;
    so.max_fps = opt.uplink.max_fps;
    so.jpeg_quality = opt.uplink.jpeg_quality;
    so.max_long_side = opt.uplink.max_long_side;
    so.max_jpeg_bytes = static_cast<size_t>(opt.uplink.max_jpeg_bytes);
    return so;
  }());
  KD_CHECK_MSG(selector_or.ok(), selector_or.status().ToString());
  FrameSelector selector = std::move(selector_or).value();
  uint64_t last_seq = 0;
  uint64_t last_error_version = 0;  // the last model whose run-time error was logged
  while (true) {
    auto item = capture_q.Pop(milliseconds(200));
    if (!item) {
      if (capture_q.closed_and_empty()) break;
      continue;
    }
    media::Frame& frame = *item;
    std::shared_ptr<const RunningModel> m;
    {
      std::lock_guard lock(model_mu);
      if (pending) {  // the swap: between two frames, never inside one
        current = std::move(pending);
        pending.reset();
      }
      m = current;
    }
    Stopwatch sw(*inference_clock);
    model::DecodeOptions dec;
    dec.score_threshold = 0.05f;
    auto run = model::DetectChecked(*m->fused, ModelInput(frame, m->arch), frame.width, frame.height, dec);
    if (!run.ok()) {
      // A model that fails at run time: on trial, probation rolls it back at its next check; the
      // committed model has nothing to fall back to, so the frame is lost and counted, and the
      // daemon keeps running (the error is logged once per model version).
      {
        std::lock_guard lock(stats_mu);
        ++c.inference_errors;
        if (m->trial && trial_errors++ == 0) trial_error = run.status().ToString();
      }
      if (m->version != last_error_version) {
        KD_LOG(kError) << "model v" << m->version << " failed on frame " << frame.index << ": "
                       << run.status().ToString();
        last_error_version = m->version;
      }
      continue;
    }
    const bool finite = run->finite;
    auto dets = std::move(run->detections[0]);
    const double ms = sw.ElapsedSeconds() * 1e3;
    const int64_t end_us = MonoUs();

    FrameResult result;
    result.detections.frame_index = frame.index;
    for (const auto& d : dets) {
      if (d.score >= opt.model.score_threshold) result.detections.detections.push_back(d);
    }
    result.timestamp_us = frame.timestamp_us;
    result.model_version = m->version;
    result.inference_ms = ms;
    if (detections_out) *detections_out << FrameResultToJson(result) << '\n';

    {
      std::lock_guard lock(stats_mu);
      ++c.frames_inferred;
      c.inference_ms_total += ms;
      ++interval_frames;
      interval_ms += ms;
      if (last_infer_end_us) c.max_frame_gap_ms = std::max(c.max_frame_gap_ms, (end_us - last_infer_end_us) / 1e3);
      last_infer_end_us = end_us;
      c.running_version = m->version;
      if (m->trial) {
        ++trial_frames;
        trial_ms_sum += ms;
        if (!finite) ++trial_nonfinite;
      } else {
        base_ms_ema = base_ms_ema == 0 ? ms : 0.95 * base_ms_ema + 0.05 * ms;
      }
      if (!golden || c.frames_inferred % 32 == 0) golden = frame;  // a recent frame (a copy costs ~1 MB)
    }
    FrameDetections all{frame.index, dets};
    auto sel = selector.Offer(frame, all, MonoUs());
    if (sel.ok() && sel->send) {
      Upload up;
      up.seq = std::max<uint64_t>(last_seq + 1, static_cast<uint64_t>(NowUs()));  // unique across restarts
      last_seq = up.seq;
      up.capture_time_us = frame.timestamp_us;
      up.selection = std::move(sel).value();
      upload_q.Push(std::move(up), /*block=*/false);
      std::lock_guard lock(stats_mu);
      ++c.frames_selected;
    }
  }
  if (detections_out) detections_out->flush();
  upload_q.Close();
  inference_done = true;
  {
    std::lock_guard lock(stats_mu);
    c.source_done = true;
  }
  done_cv.notify_all();
}

// ---------------------------------------------------------------------------------------------
// Uplink: credits, acks, resend, reconnect.

void EdgeAgent::Impl::UplinkLoop() {
  UnackedBuffer buffer(static_cast<size_t>(opt.uplink.buffer_frames));
  uint32_t credits = 0;
  int64_t last_rx = MonoUs(), last_hello = 0, backoff_ms = 100;
  bool hello_answered = false;
  bool upload_closed = false;
  // Learner errors are logged once per kind, then at most every kErrorLogIntervalUs with a count:
  // a full learner disk answers every resend, and one line per frame would flood the log.
  wire::ErrorCode last_logged_error = wire::ErrorCode::kNone;
  int64_t last_error_log_us = 0;
  uint64_t errors_not_logged = 0;
  while (!stop_all) {
    const int64_t now = MonoUs();
    // New selections into the resend buffer.
    while (auto up = upload_q.Pop(milliseconds(0))) {
      PendingFrame p;
      p.seq = up->seq;
      p.capture_time_us = up->capture_time_us;
      p.width = up->selection.width;
      p.height = up->selection.height;
      p.score = static_cast<float>(up->selection.score);
      p.jpeg = std::move(up->selection.jpeg);
      const uint64_t before = buffer.stats().dropped_oldest;
      buffer.Push(std::move(p));
      if (buffer.stats().dropped_oldest != before) {
        std::lock_guard lock(stats_mu);
        c.frames_dropped_unacked = buffer.stats().dropped_oldest;
      }
    }
    if (upload_q.closed_and_empty()) upload_closed = true;
    ack_waiting = buffer.size();
    // Liveness: hello until answered, then heartbeats; silence past the timeout -> reconnect.
    const int64_t hb_us = int64_t{opt.learner.heartbeat_ms} * 1000;
    if (now - last_hello >= (hello_answered ? hb_us : std::min<int64_t>(hb_us, 1000000))) {
      auto m = NewMessage(hello_answered ? wire::MsgType::kHeartbeat : wire::MsgType::kHello);
      (void)frames_client->Send(m);
      last_hello = now;
    }
    if (now - last_rx > int64_t{opt.learner.timeout_ms} * 1000) {
      KD_LOG(kWarn) << "uplink: no reply from the learner for " << (now - last_rx) / 1000 << " ms; reconnecting in "
                    << backoff_ms << " ms (" << buffer.size() << " frames waiting)";
      std::this_thread::sleep_for(milliseconds(backoff_ms));
      backoff_ms = std::min<int64_t>(backoff_ms * 2, opt.learner.reconnect_max_ms);
      (void)frames_client->Reconnect();
      buffer.MarkAllUnsent();
      credits = 0;
      hello_answered = false;
      last_rx = MonoUs();
      last_hello = 0;
      continue;
    }
    // Send what the window allows (credits = frames the learner lets us have un-acked in flight).
    const size_t in_flight = buffer.in_flight();
    if (credits > 0) {
      auto due = buffer.TakeDue(now, int64_t{opt.uplink.resend_after_ms} * 1000, credits,
                                credits > in_flight ? credits - in_flight : 0);
      for (const PendingFrame* p : due) {
        auto m = NewMessage(wire::MsgType::kFrame);
        m.header.seq = p->seq;
        m.header.capture_time_us = p->capture_time_us;
        m.header.width = static_cast<uint32_t>(p->width);
        m.header.height = static_cast<uint32_t>(p->height);
        m.header.selection_score = p->score;
        m.payload.assign(p->jpeg.begin(), p->jpeg.end());
        Status st = frames_client->Send(m);
        if (!st.ok()) break;  // not connected / pipe full: the resend timer brings it back
        std::lock_guard lock(stats_mu);
        ++c.frames_sent;
        if (p->attempts > 1) ++c.frames_resent;
        c.uplink_bytes += m.payload.size();
      }
    }
    if (upload_closed && buffer.size() == 0 && stop_capture) break;
    auto in = frames_client->Receive(milliseconds(10));
    if (!in.ok()) {
      if (stop_all) break;
      continue;
    }
    if (!*in) continue;
    const auto& h = (*in)->header;
    last_rx = MonoUs();
    backoff_ms = 100;
    hello_answered = true;
    switch (h.type) {
      case wire::MsgType::kAck:
        if (buffer.Ack(h.ack_seq)) {
          std::lock_guard lock(stats_mu);
          ++c.frames_acked;
          acked_seqs.push_back(h.ack_seq);
          if (acked_seqs.size() > 100000) acked_seqs.pop_front();
        }
        credits = h.credits;
        break;
      case wire::MsgType::kCredit:
      case wire::MsgType::kHeartbeat:
        credits = h.credits;
        break;
      case wire::MsgType::kError:
        if (h.error_code != last_logged_error || last_rx - last_error_log_us >= kErrorLogIntervalUs) {
          KD_LOG(kWarn) << "uplink: learner error " << wire::ErrorCodeName(h.error_code) << " for seq " << h.seq << ": "
                        << h.error_text
                        << (errors_not_logged > 0 ? " (" + std::to_string(errors_not_logged) + " more not logged)"
                                                  : std::string());
          last_logged_error = h.error_code;
          last_error_log_us = last_rx;
          errors_not_logged = 0;
        } else {
          ++errors_not_logged;
        }
        if (h.error_code == wire::ErrorCode::kBadPayload || h.error_code == wire::ErrorCode::kTooLarge ||
            h.error_code == wire::ErrorCode::kBadHeader) {
          buffer.Ack(h.seq);  // refused for what it is: resending would not help
          std::lock_guard lock(stats_mu);
          ++c.frames_refused;
        } else {
          // STORAGE_FULL / STORAGE_ERROR / OUT_OF_CREDIT / others: keep the frame; the resend
          // timer retries.
          std::lock_guard lock(stats_mu);
          ++c.frames_kept_for_resend;
        }
        break;
      default:
        break;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Control: status, updates, probation.

void EdgeAgent::Impl::Report(wire::UpdateOutcome outcome, uint64_t version, const std::string& text) {
  auto m = NewMessage(wire::MsgType::kUpdateReport);
  m.header.outcome = outcome;
  m.header.model_version = version;
  m.header.error_text = text.substr(0, 1000);
  (void)control_client->Send(m);
}

Status EdgeAgent::Impl::Install(const update::Manifest& man, const std::vector<uint8_t>& artifact) {
  std::shared_ptr<const RunningModel> base;
  {
    std::lock_guard lock(model_mu);
    base = current;
  }
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
  const std::string arch_json = student->options().ArchJson();
  if (model::Sha256Hex(reinterpret_cast<const uint8_t*>(arch_json.data()), arch_json.size()) != man.arch_hash) {
    return Status::Corruption("the model's architecture does not match the manifest");
  }
  if (update::StateDigest(update::StateOf(*student)) != man.target_digest) {
    return Status::Corruption("the installed weights do not match the manifest's digest");
  }
  KD_ASSIGN_OR_RETURN(std::shared_ptr<const RunningModel> next, build_model(*student, man.version, /*trial=*/true));
  // Self-test on the latest camera frame, off the inference thread: shapes, finite outputs, latency.
  std::optional<media::Frame> frame;
  {
    std::lock_guard lock(stats_mu);
    frame = golden;
  }
  if (!frame) {  // no camera frame yet: a mid-grey one still checks shapes, finiteness and latency
    frame.emplace();
    frame->width = next->arch.input_width;
    frame->height = next->arch.input_height;
    frame->rgb.assign(static_cast<size_t>(frame->width) * static_cast<size_t>(frame->height) * 3, 128);
  }
  KD_RETURN_IF_ERROR(SelfTest(*next, *base, *frame, opt.update.max_latency_ratio, *inference_clock));
  // Stage into the inactive slot (atomic), then hand to the inference thread.
  KD_ASSIGN_OR_RETURN(auto bytes, model::EncodeWeights(*student, {man.version, man.base_version, "kdedge", 0},
                                                       model::WeightDtype::kF32));
  KD_RETURN_IF_ERROR(slots->StageTrial(man.version, bytes));
  {
    std::lock_guard lock(stats_mu);
    trial_frames = 0, trial_nonfinite = 0, trial_errors = 0, trial_ms_sum = 0;
    trial_error.clear();
    trial_started_us = MonoUs();
    ++c.swaps;
  }
  std::lock_guard lock(model_mu);
  pending = std::move(next);
  return Status::Ok();
}

void EdgeAgent::Impl::ControlLoop() {
  struct DownloadState {
    update::Manifest manifest;
    std::optional<update::ModelSlots::Download> download;
    uint64_t requested_to = 0;  // bytes requested so far
    int64_t last_chunk_us = 0;
  };
  std::optional<DownloadState> dl;
  std::set<std::string> refused;               // "version:reason" already reported (report once)
  std::map<uint64_t, int64_t> retry_after_us;  // version -> no new attempt before (after a failed install)
  bool want_full = false;
  int64_t last_status = 0;
  uint64_t request_id = 0;
  // Verifies, self-tests and stages a complete download, then closes it (whatever the outcome).
  auto install_download = [&] {
    auto bytes = dl->download->Finish();
    const update::Manifest manifest = dl->manifest;
    dl.reset();
    Status inst = bytes.ok() ? Install(manifest, *bytes) : bytes.status();
    if (!inst.ok()) {
      KD_LOG(kWarn) << "install of v" << manifest.version << " refused: " << inst.ToString();
      Report(wire::UpdateOutcome::kRejected, manifest.version, inst.ToString());
      if (manifest.kind == update::ArtifactKind::kDelta) want_full = true;
      retry_after_us[manifest.version] = MonoUs() + 60 * 1000000LL;  // not again for a minute
      std::lock_guard lock(stats_mu);
      ++c.rejected_manifests;
      return;
    }
    want_full = false;
    KD_LOG(kInfo) << "model v" << manifest.version << " verified and swapped in; probation "
                  << opt.update.probation_frames << " frames / " << opt.update.probation_seconds << " s";
  };
  while (!stop_all) {
    const int64_t now = MonoUs();
    // Probation of a model on trial.
    {
      std::shared_ptr<const RunningModel> cur;
      {
        std::lock_guard lock(model_mu);
        cur = pending ? nullptr : current;
      }
      if (cur && cur->trial) {
        uint64_t frames = 0, bad = 0, errors = 0;
        std::string first_error;
        double mean_ms = 0, base_ms = 0;
        int64_t started = 0;
        {
          std::lock_guard lock(stats_mu);
          frames = trial_frames, bad = trial_nonfinite, started = trial_started_us;
          errors = trial_errors, first_error = trial_error;
          mean_ms = trial_frames ? trial_ms_sum / static_cast<double>(trial_frames) : 0;
          base_ms = base_ms_ema;
        }
        std::string failure;
        if (bad > 0) failure = std::to_string(bad) + " frames with non-finite outputs";
        if (errors > 0) failure = std::to_string(errors) + " frames failed to run (" + first_error + ")";
        if (frames >= 10 && base_ms > 0 && mean_ms > opt.update.max_latency_ratio * base_ms + 1.0) {
          failure = "inference " + std::to_string(mean_ms) + " ms vs " + std::to_string(base_ms) + " ms before";
        }
        if (!failure.empty()) {
          KD_LOG(kWarn) << "model v" << cur->version << " failed probation (" << failure << "): rolling back to v"
                        << committed->version;
          {
            std::lock_guard lock(model_mu);
            pending = committed;
          }
          (void)slots->RollbackTrial();
          // A version that failed on this camera is not installed again by this process, whatever
          // the learner offers (it republishes older weights under a new version number).
          retry_after_us[cur->version] = std::numeric_limits<int64_t>::max();
          Report(wire::UpdateOutcome::kRolledBack, cur->version, failure);
          std::lock_guard lock(stats_mu);
          ++c.rollbacks;
        } else if (frames >= static_cast<uint64_t>(opt.update.probation_frames) &&
                   static_cast<double>(now - started) >= opt.update.probation_seconds * 1e6) {
          Status st = slots->CommitTrial();
          if (st.ok()) {
            auto kept = std::make_shared<RunningModel>(*cur);
            kept->trial = false;
            {
              std::lock_guard lock(model_mu);
              committed = kept;
              pending = kept;  // same weights, no longer on trial
            }
            KD_LOG(kInfo) << "model v" << cur->version << " committed after " << frames << " frames on probation";
            Report(wire::UpdateOutcome::kCommitted, cur->version, "");
            std::lock_guard lock(stats_mu);
            ++c.commits;
            c.committed_version = slots->state().committed_version;
            c.floor_version = slots->state().floor_version;
          } else {
            KD_LOG(kError) << "commit: " << st.ToString();
          }
        }
      }
    }
    // Status every interval (the learner's reply says which version to run).
    if (now - last_status >= int64_t{opt.output.status_interval_ms} * 1000) {
      auto m = NewMessage(wire::MsgType::kStatus);
      {
        std::lock_guard lock(stats_mu);
        const double secs = std::max(1e-6, (now - interval_start_us) / 1e6);
        c.fps = static_cast<double>(interval_frames) / secs;
        c.mean_inference_ms = interval_frames ? interval_ms / static_cast<double>(interval_frames) : 0;
        interval_frames = 0, interval_ms = 0, interval_start_us = now;
        auto& s = m.header.status;
        s.running_version = c.running_version;
        s.committed_version = slots->state().committed_version;
        s.floor_version = slots->state().floor_version;
        s.state = dl ? "downloading" : (current && current->trial ? "probation" : "running");
        s.fps = c.fps;
        s.frames_captured = c.frames_captured;
        s.frames_inferred = c.frames_inferred;
        s.frames_selected = c.frames_selected;
        s.frames_acked = c.frames_acked;
        s.frames_dropped = c.frames_dropped;
        s.uplink_bytes = c.uplink_bytes;
        s.downlink_bytes = c.downlink_bytes;
        s.want_full = want_full;
      }
      m.header.seq = ++request_id;
      (void)control_client->Send(m);
      last_status = now;
    }
    // Download: keep `download_window` chunk requests in flight; re-request after a silence.
    if (dl && dl->download) {
      const uint64_t size = dl->manifest.artifact_size, chunk = dl->manifest.chunk_size;
      if (dl->last_chunk_us && now - dl->last_chunk_us > 5000000) {
        dl->requested_to = dl->download->have();  // lost requests or replies: ask again from where we are
        dl->last_chunk_us = now;
      }
      while (dl->requested_to < size &&
             dl->requested_to < dl->download->have() + chunk * static_cast<uint64_t>(opt.update.download_window)) {
        auto m = NewMessage(wire::MsgType::kChunkRequest);
        m.header.object_id = dl->manifest.artifact_sha256;
        m.header.offset = dl->requested_to;
        m.header.length = std::min<uint64_t>(chunk, size - dl->requested_to);
        m.header.seq = ++request_id;
        if (!control_client->Send(m).ok()) break;
        dl->requested_to += m.header.length;
        if (!dl->last_chunk_us) dl->last_chunk_us = now;
      }
    }
    {
      std::lock_guard lock(stats_mu);
      c.downloading = dl.has_value();
    }
    auto in = control_client->Receive(milliseconds(20));
    if (!in.ok()) {
      if (stop_all) break;
      continue;
    }
    if (!*in) continue;
    const auto& msg = **in;
    const auto& h = msg.header;
    if (h.type == wire::MsgType::kStatusReply) {
      std::shared_ptr<const RunningModel> cur;
      bool busy = false;
      {
        std::lock_guard lock(model_mu);
        cur = current;
        busy = pending != nullptr || current->trial;
      }
      if (dl && h.desired_version != 0 && h.desired_version != dl->manifest.version) {
        // The learner moved on (a newer version, or a rollback): this download would never be run.
        KD_LOG(kInfo) << "download of v" << dl->manifest.version << " abandoned: the learner now offers v"
                      << h.desired_version;
        (void)dl->download->Abandon();
        dl.reset();
      }
      if (msg.payload.empty() || dl || busy || h.desired_version == 0 || h.desired_version == cur->version) continue;
      if (auto r = retry_after_us.find(h.desired_version); r != retry_after_us.end() && MonoUs() < r->second) continue;
      auto signed_m = update::DecodeSignedManifest(msg.payload);
      update::VerifyOptions vo;
      vo.trusted_keys = trusted_keys;
      vo.now_unix_s = NowUs() / 1000000;
      vo.version_floor = std::max(slots->state().floor_version, cur->version);
      Result<update::Manifest> man =
          signed_m.ok() ? update::VerifyManifest(*signed_m, vo) : Result<update::Manifest>(signed_m.status());
      if (man.ok() && man->kind == update::ArtifactKind::kDelta && man->base_version != cur->version) {
        want_full = true;  // the learner offered a delta for another base: ask for a snapshot
        continue;
      }
      if (!man.ok()) {
        const std::string key = std::to_string(h.desired_version) + ":" + man.status().ToString();
        if (refused.insert(key).second) {
          KD_LOG(kWarn) << "refused the manifest for v" << h.desired_version << ": " << man.status().ToString()
                        << " (keeping v" << cur->version << ")";
          Report(wire::UpdateOutcome::kRejected, h.desired_version, man.status().ToString());
          std::lock_guard lock(stats_mu);
          ++c.rejected_manifests;
        }
        continue;
      }
      auto d = update::ModelSlots::Download::Begin(opt.model.dir, man->artifact_sha256, man->artifact_size);
      if (!d.ok()) {
        KD_LOG(kError) << "download: " << d.status().ToString();
        continue;
      }
      dl.emplace();
      dl->manifest = *man;
      dl->download.emplace(std::move(d).value());
      dl->requested_to = dl->download->have();
      KD_LOG(kInfo) << "downloading v" << man->version << " ("
                    << (man->kind == update::ArtifactKind::kDelta ? "delta from v" + std::to_string(man->base_version)
                                                                  : std::string("full"))
                    << ", " << man->artifact_size << " B, resuming at " << dl->download->have() << ")";
      // Already complete on disk (the process died between the last chunk and the install): no chunk
      // will arrive to trigger the install, so install now.
      if (dl->download->complete()) install_download();
    } else if (h.type == wire::MsgType::kChunk && dl && dl->download && h.object_id == dl->manifest.artifact_sha256) {
      if (h.offset != dl->download->have()) continue;  // a duplicate after a re-request
      Status st = dl->download->Append(
          h.offset, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(msg.payload.data()), msg.payload.size()));
      dl->last_chunk_us = MonoUs();
      {
        std::lock_guard lock(stats_mu);
        c.downlink_bytes += msg.payload.size();
      }
      if (!st.ok()) {
        KD_LOG(kError) << "download: " << st.ToString();
        dl.reset();
        continue;
      }
      if (dl->download->complete()) install_download();
    } else if (h.type == wire::MsgType::kError && dl) {
      KD_LOG(kWarn) << "download of v" << dl->manifest.version << ": learner error "
                    << wire::ErrorCodeName(h.error_code) << ": " << h.error_text;
      dl.reset();
    }
  }
}

void EdgeAgent::Impl::StopAll(milliseconds ack_grace) {
  if (stopped) return;
  stopped = true;
  stop_capture = true;
  capture_q.Close();
  if (capture_t.joinable()) capture_t.join();
  if (infer_t.joinable()) infer_t.join();
  // Give the uplink a moment to get the last frames acknowledged.
  const auto deadline = std::chrono::steady_clock::now() + ack_grace;
  while (ack_waiting > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(20));
  stop_all = true;
  if (ctx) ctx->Shutdown();
  if (uplink_t.joinable()) uplink_t.join();
  if (control_t.joinable()) control_t.join();
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
  auto impl = std::make_unique<Impl>();
  impl->opt = options;
  impl->build_model = seams.build_model;
  if (seams.inference_clock != nullptr) impl->inference_clock = seams.inference_clock;
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

bool EdgeAgent::WaitForSourceEnd(milliseconds timeout) {
  std::unique_lock lock(impl_->done_mu);
  return impl_->done_cv.wait_for(lock, timeout, [&] { return impl_->inference_done.load(); });
}

EdgeCounters EdgeAgent::counters() const {
  std::lock_guard lock(impl_->stats_mu);
  return impl_->c;
}

std::vector<uint64_t> EdgeAgent::AckedSeqs() const {
  std::lock_guard lock(impl_->stats_mu);
  return {impl_->acked_seqs.begin(), impl_->acked_seqs.end()};
}

std::string EdgeAgent::StatusJson() const {
  const EdgeCounters k = counters();
  return json{{"device", impl_->opt.device_id},
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

}  // namespace kd::edge
