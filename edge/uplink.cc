#include "edge/uplink.h"

#include <chrono>

#include "base/log.h"
#include "base/thread_name.h"

namespace kd::edge {

using std::chrono::milliseconds;

Result<UploadPicker> UploadPicker::Create(const config::EdgeUplinkOptions& options, const Clock& clock) {
  SelectorOptions so;
  so.uplink_kbps = options.kbps;
  so.max_fps = options.max_fps;
  so.burst_frames = options.burst_frames;
  so.jpeg_quality = options.jpeg_quality;
  so.max_long_side = options.max_long_side;
  so.max_jpeg_bytes = static_cast<size_t>(options.max_jpeg_bytes);
  KD_ASSIGN_OR_RETURN(FrameSelector selector, FrameSelector::Create(so));
  return UploadPicker(std::move(selector), clock);
}

std::optional<PendingFrame> UploadPicker::Offer(const media::Frame& frame, const FrameDetections& detections) {
  auto sel = selector_.Offer(frame, detections, clock_->MonotonicNanos() / 1000);
  if (!sel.ok() || !sel->send) return std::nullopt;
  PendingFrame p;
  p.seq = std::max<uint64_t>(last_seq_ + 1, static_cast<uint64_t>(clock_->WallMicros()));
  last_seq_ = p.seq;
  p.capture_time_us = frame.timestamp_us;
  p.width = sel->width;
  p.height = sel->height;
  p.score = static_cast<float>(sel->score);
  p.jpeg = std::move(sel->jpeg);
  return p;
}

Uplink::Uplink(std::string device_id, const config::EdgeUplinkOptions& uplink,
               const config::EdgeLearnerOptions& learner, Link& link, BoundedQueue<PendingFrame>& in,
               const ModelHolder& models, EdgeStats& stats, const Clock& clock)
    : device_id_(std::move(device_id)),
      options_(uplink),
      learner_(learner),
      link_(link),
      in_(in),
      models_(models),
      stats_(stats),
      clock_(clock),
      buffer_(static_cast<size_t>(uplink.buffer_frames)),
      backoff_(learner.reconnect_max_ms),
      last_rx_us_(clock.MonotonicNanos() / 1000) {}

Uplink::~Uplink() { Stop(); }

void Uplink::Start() {
  thread_ = std::thread([this] {
    SetCurrentThreadName("kd-uplink");
    while (!stop_ && Step()) {
    }
  });
}

void Uplink::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

bool Uplink::Step() {
  const int64_t now = clock_.MonotonicNanos() / 1000;
  // New selections into the resend buffer.
  while (auto p = in_.Pop(milliseconds(0))) {
    const uint64_t before = buffer_.stats().dropped_oldest;
    buffer_.Push(std::move(*p));
    if (buffer_.stats().dropped_oldest != before) {
      stats_.Update([&](EdgeCounters& c) { c.frames_dropped_unacked = buffer_.stats().dropped_oldest; });
    }
  }
  if (in_.closed_and_empty()) in_closed_ = true;
  if (buffer_.size() != waiting_) {
    waiting_ = buffer_.size();
    stats_.Update([&](EdgeCounters& c) { c.unacked_frames = waiting_; });
  }
  // Liveness: hello until answered, then heartbeats; silence past the timeout -> reconnect.
  const int64_t hb_us = int64_t{learner_.heartbeat_ms} * 1000;
  if (now - last_hello_us_ >= (hello_answered_ ? hb_us : std::min(hb_us, kHelloIntervalUs))) {
    (void)link_.Send(NewMessage(hello_answered_ ? wire::MsgType::kHeartbeat : wire::MsgType::kHello, device_id_,
                                models_.running_version(), clock_));
    last_hello_us_ = now;
  }
  if (now - last_rx_us_ > int64_t{learner_.timeout_ms} * 1000) {
    const int64_t delay_ms = backoff_.Next();
    KD_LOG(kWarn) << "uplink: no reply from the learner for " << (now - last_rx_us_) / 1000 << " ms; reconnecting in "
                  << delay_ms << " ms (" << buffer_.size() << " frames waiting)";
    std::this_thread::sleep_for(milliseconds(delay_ms));
    (void)link_.Reconnect();
    buffer_.MarkAllUnsent();
    credits_ = 0;
    hello_answered_ = false;
    last_rx_us_ = clock_.MonotonicNanos() / 1000;
    last_hello_us_ = 0;
    return true;
  }
  SendDue(now);
  if (in_closed_ && buffer_.size() == 0 && finish_when_drained_) {
    drained_ = true;
    return false;
  }
  auto in = link_.Receive(milliseconds(kReceiveMs));
  if (!in.ok()) return !stop_;
  if (*in) Handle(**in);
  return true;
}

void Uplink::SendDue(int64_t now_us) {
  if (credits_ == 0) return;
  const size_t in_flight = buffer_.in_flight();
  auto due = buffer_.TakeDue(now_us, int64_t{options_.resend_after_ms} * 1000, credits_,
                             credits_ > in_flight ? credits_ - in_flight : 0);
  for (const PendingFrame* p : due) {
    auto m = NewMessage(wire::MsgType::kFrame, device_id_, models_.running_version(), clock_);
    m.header.seq = p->seq;
    m.header.capture_time_us = p->capture_time_us;
    m.header.width = static_cast<uint32_t>(p->width);
    m.header.height = static_cast<uint32_t>(p->height);
    m.header.selection_score = p->score;
    m.payload.assign(p->jpeg.begin(), p->jpeg.end());
    if (!link_.Send(m).ok()) break;  // not connected / pipe full: the resend timer brings it back
    stats_.Update([&](EdgeCounters& c) {
      ++c.frames_sent;
      if (p->attempts > 1) ++c.frames_resent;
      c.uplink_bytes += m.payload.size();
    });
  }
}

void Uplink::Handle(const wire::Message& message) {
  const auto& h = message.header;
  last_rx_us_ = clock_.MonotonicNanos() / 1000;
  backoff_.Reset();
  hello_answered_ = true;
  switch (h.type) {
    case wire::MsgType::kAck:
      if (buffer_.Ack(h.ack_seq)) stats_.NoteAcked(h.ack_seq);
      credits_ = h.credits;
      break;
    case wire::MsgType::kCredit:
    case wire::MsgType::kHeartbeat:
      credits_ = h.credits;
      break;
    case wire::MsgType::kError:
      if (h.error_code != last_logged_error_ || last_rx_us_ - last_error_log_us_ >= kErrorLogIntervalUs) {
        KD_LOG(kWarn) << "uplink: learner error " << wire::ErrorCodeName(h.error_code) << " for seq " << h.seq << ": "
                      << h.error_text
                      << (errors_not_logged_ > 0 ? " (" + std::to_string(errors_not_logged_) + " more not logged)"
                                                 : std::string());
        last_logged_error_ = h.error_code;
        last_error_log_us_ = last_rx_us_;
        errors_not_logged_ = 0;
      } else {
        ++errors_not_logged_;
      }
      if (h.error_code == wire::ErrorCode::kBadPayload || h.error_code == wire::ErrorCode::kTooLarge ||
          h.error_code == wire::ErrorCode::kBadHeader) {
        buffer_.Ack(h.seq);  // refused for what it is: resending would not help
        stats_.Update([](EdgeCounters& c) { ++c.frames_refused; });
      } else {
        // STORAGE_FULL / STORAGE_ERROR / OUT_OF_CREDIT / others: keep the frame; the resend timer retries.
        stats_.Update([](EdgeCounters& c) { ++c.frames_kept_for_resend; });
      }
      break;
    default:
      break;
  }
}

}  // namespace kd::edge
