#include "edge/capture.h"

#include <chrono>

#include "base/log.h"
#include "base/thread_name.h"
#include "media/image_ops.h"

namespace kd::edge {

namespace {
using std::chrono::milliseconds;
// Frame rate when neither the options nor the source name one (frames/s).
constexpr double kDefaultFps = 10;
}  // namespace

SourceOpener OpenerFor(const config::EdgeSourceOptions& options) {
  return [uri = options.uri, begin = options.begin, end = options.end]() {
    media::SourceOptions so;
    so.begin = begin;
    so.end = end > 0 ? end : -1;
    return media::OpenSource(uri, so);
  };
}

media::Frame ApplyPassEffect(const media::Frame& frame, const config::PassEffect& effect) {
  using Kind = config::PassEffect::Kind;
  switch (effect.kind) {
    case Kind::kDark:
    case Kind::kBright:
      return media::AdjustBrightnessContrast(frame, effect.factor, 0);
    case Kind::kBlur:  // OpenCV's sigma for a kernel size
      return media::GaussianBlur(frame, 0.3 * ((effect.kernel - 1) * 0.5 - 1) + 0.8);
    case Kind::kNone:
      break;
  }
  return frame;
}

Capture::Capture(const config::EdgeSourceOptions& options, SourceOpener open, std::unique_ptr<media::FrameSource> first,
                 BoundedQueue<media::Frame>& out, EdgeStats& stats, const Clock& clock)
    : options_(options), open_(std::move(open)), first_(std::move(first)), out_(out), stats_(stats), clock_(clock) {
  for (const auto& spec : options_.pass_effects) {
    auto e = config::ParsePassEffect(spec);
    if (!e.ok()) {
      KD_LOG(kWarn) << "capture: pass effect " << e.status().ToString() << ": none";
    }
    effects_.push_back(e.ok() ? *e : config::PassEffect{});
  }
}

Capture::~Capture() { Stop(); }

void Capture::Start() {
  thread_ = std::thread([this] {
    SetCurrentThreadName("kd-capture");
    Run();
  });
}

void Capture::Stop() {
  stop_ = true;
  out_.Close();  // wakes a Push blocked on a full queue
  if (thread_.joinable()) thread_.join();
}

void Capture::Run() {
  std::unique_ptr<media::FrameSource> source = std::move(first_);
  int pass = 0;
  int64_t index = 0;  // frame number across passes
  auto effect_name = [&](int p) {
    return options_.pass_effects.empty() ? std::string("none")
                                         : options_.pass_effects[p % options_.pass_effects.size()];
  };
  while (!stop_) {
    if (!source) {
      auto s = open_();
      if (!s.ok()) {
        KD_LOG(kError) << "capture: " << s.status().ToString() << "; retrying in " << kReopenRetryMs << " ms";
        std::this_thread::sleep_for(milliseconds(kReopenRetryMs));
        continue;
      }
      source = std::move(s).value();
    }
    const double fps = options_.fps > 0 ? options_.fps : (source->info().fps > 0 ? source->info().fps : kDefaultFps);
    const config::PassEffect effect = effects_.empty() ? config::PassEffect{} : effects_[pass % effects_.size()];
    const auto period = std::chrono::microseconds(static_cast<int64_t>(1e6 / fps));
    auto next = std::chrono::steady_clock::now();
    bool ended = false;
    while (!stop_) {
      auto f = source->Next();
      if (!f.ok()) {
        KD_LOG(kWarn) << "capture: " << f.status().ToString();
        if (source->info().kind == media::SourceKind::kVideoFile) {
          ended = true;
          break;
        }
        source.reset();  // live source: reopen (reconnect) after a pause
        std::this_thread::sleep_for(milliseconds(kLiveReconnectMs));
        break;
      }
      if (!*f) {
        ended = true;
        break;
      }
      media::Frame frame =
          effect.kind == config::PassEffect::Kind::kNone ? std::move(**f) : ApplyPassEffect(**f, effect);
      frame.index = index++;
      frame.timestamp_us = clock_.WallMicros();
      stats_.Update([](EdgeCounters& c) { ++c.frames_captured; });
      const size_t dropped = out_.Push(std::move(frame), /*block=*/!options_.realtime);
      if (dropped) stats_.Update([&](EdgeCounters& c) { c.frames_dropped += dropped; });
      if (options_.realtime) {
        next += period;
        std::this_thread::sleep_until(next);
      }
    }
    if (!ended) continue;
    source.reset();
    ++pass;
    if (!options_.loop || (options_.passes > 0 && pass >= options_.passes)) break;
    KD_LOG(kInfo) << "capture: pass " << pass + 1 << " of " << options_.uri << " (" << effect_name(pass) << ")";
  }
  out_.Close();
}

}  // namespace kd::edge
