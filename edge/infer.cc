#include "edge/infer.h"

#include "base/log.h"
#include "base/thread_name.h"
#include "edge/detect_loop.h"
#include "edge/running_model.h"

namespace kd::edge {

Infer::Infer(double score_threshold, BoundedQueue<media::Frame>& in, BoundedQueue<PendingFrame>& out,
             UploadPicker picker, ModelHolder& models, Probation& probation, EdgeStats& stats, LatestFrame& latest,
             std::ostream* detections, const Clock& inference_clock)
    : score_threshold_(score_threshold),
      in_(in),
      out_(out),
      picker_(std::move(picker)),
      models_(models),
      probation_(probation),
      stats_(stats),
      latest_(latest),
      detections_(detections),
      inference_clock_(inference_clock) {}

Infer::~Infer() { Join(); }

void Infer::Start() {
  thread_ = std::thread([this] {
    SetCurrentThreadName("kd-infer");
    Run();
  });
}

void Infer::Join() {
  if (thread_.joinable()) thread_.join();
}

bool Infer::WaitDone(std::chrono::milliseconds timeout) {
  std::unique_lock lock(done_mu_);
  return done_cv_.wait_for(lock, timeout, [&] { return done_; });
}

void Infer::Run() {
  while (true) {
    auto item = in_.Pop(std::chrono::milliseconds(kPopMs));
    if (!item) {
      if (in_.closed_and_empty()) break;
      continue;
    }
    InferOne(*item);
  }
  if (detections_) detections_->flush();
  out_.Close();
  stats_.Update([](EdgeCounters& c) { c.source_done = true; });
  {
    std::lock_guard lock(done_mu_);
    done_ = true;
  }
  done_cv_.notify_all();
}

void Infer::InferOne(media::Frame& frame) {
  const std::shared_ptr<const RunningModel> m = models_.TakeForFrame();  // the swap: between two frames
  Stopwatch sw(inference_clock_);
  model::DecodeOptions dec;
  dec.score_threshold = kDecodeScore;
  auto run = DetectFrame(*m->fused, frame, dec);
  if (!run.ok()) {
    stats_.Update([](EdgeCounters& c) { ++c.inference_errors; });
    if (m->trial) probation_.OnTrialError(run.status().ToString());
    if (m->version != last_error_version_) {
      KD_LOG(kError) << "model v" << m->version << " failed on frame " << frame.index << ": "
                     << run.status().ToString();
      last_error_version_ = m->version;
    }
    return;
  }
  const bool finite = run->finite;
  auto dets = std::move(run->detections[0]);
  const double ms = sw.ElapsedSeconds() * 1e3;

  FrameResult result;
  result.detections.frame_index = frame.index;
  for (const auto& d : dets) {
    if (d.score >= score_threshold_) result.detections.detections.push_back(d);
  }
  result.timestamp_us = frame.timestamp_us;
  result.model_version = m->version;
  result.inference_ms = ms;
  if (detections_) *detections_ << FrameResultToJson(result) << '\n';

  const uint64_t inferred = stats_.OnInferred(ms, m->version);
  if (m->trial) {
    probation_.OnTrialFrame(ms, finite);
  } else {
    probation_.OnCommittedFrame(ms);
  }
  latest_.Offer(frame, inferred);
  latest_.OfferPreview(frame, result.detections.detections, m->version, inferred);
  if (auto p = picker_.Offer(frame, FrameDetections{frame.index, std::move(dets)})) {
    out_.Push(std::move(*p), /*block=*/false);
    stats_.Update([](EdgeCounters& c) { ++c.frames_selected; });
  }
}

}  // namespace kd::edge
