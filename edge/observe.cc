#include "edge/observe.h"

#include <cstdio>

namespace kd::edge {

std::vector<ops::MetricFamily> EdgeMetrics(const std::string& camera, const EdgeCounters& c,
                                           const ops::HistogramValue& inference_seconds) {
  const ops::Labels cam{{"camera", camera}};
  auto n = [](uint64_t v) { return static_cast<double>(v); };
  using ops::Counter;
  using ops::Gauge;
  std::vector<ops::MetricFamily> out;
  out.push_back(
      Counter("kd_edge_frames_captured_total", "Frames read from the source.").Add(cam, n(c.frames_captured)));
  out.push_back(Counter("kd_edge_frames_inferred_total", "Frames the student ran on.").Add(cam, n(c.frames_inferred)));
  out.push_back(
      Counter("kd_edge_frames_dropped_total", "Frames captured but never inferred (a live source ahead of inference).")
          .Add(cam, n(c.frames_dropped)));
  out.push_back(
      Counter("kd_edge_inference_errors_total", "Frames the model failed to run on.").Add(cam, n(c.inference_errors)));
  out.push_back(ops::Histogram("kd_edge_inference_duration_seconds", "Time per frame: resize, forward, decode.")
                    .AddHistogram(cam, inference_seconds));
  out.push_back(Counter("kd_edge_frames_selected_total", "Frames selected for upload.").Add(cam, n(c.frames_selected)));
  out.push_back(Counter("kd_edge_frames_sent_total", "Frame messages sent to the learner (resends included).")
                    .Add(cam, n(c.frames_sent)));
  out.push_back(Counter("kd_edge_frames_acked_total", "Uploads the learner acknowledged (stored durably).")
                    .Add(cam, n(c.frames_acked)));
  out.push_back(
      Counter("kd_edge_frames_resent_total", "Frame messages that were resends.").Add(cam, n(c.frames_resent)));
  out.push_back(
      Counter(
          "kd_edge_frames_lost_total",
          "Uploads given up, by reason: pushed out of the full resend buffer, or refused by the learner as malformed.")
          .Add({{"camera", camera}, {"reason", "buffer_full"}}, n(c.frames_dropped_unacked))
          .Add({{"camera", camera}, {"reason", "refused"}}, n(c.frames_refused)));
  out.push_back(
      Gauge("kd_edge_unacked_frames", "Uploads waiting for an acknowledgement.").Add(cam, n(c.unacked_frames)));
  out.push_back(Counter("kd_edge_uplink_bytes_total", "Frame payload bytes sent.").Add(cam, n(c.uplink_bytes)));
  out.push_back(Counter("kd_edge_downlink_bytes_total", "Update bytes received.").Add(cam, n(c.downlink_bytes)));
  out.push_back(
      Gauge("kd_edge_model_version",
            "Model versions: running, committed (the one a restart loads), desired (what the learner asks for).")
          .Add({{"camera", camera}, {"slot", "running"}}, n(c.running_version))
          .Add({{"camera", camera}, {"slot", "committed"}}, n(c.committed_version))
          .Add({{"camera", camera}, {"slot", "desired"}}, n(c.desired_version)));
  out.push_back(Counter("kd_edge_model_swaps_total", "Models swapped in between two frames.").Add(cam, n(c.swaps)));
  out.push_back(
      Counter("kd_edge_model_commits_total", "Trial models committed after probation.").Add(cam, n(c.commits)));
  out.push_back(
      Counter("kd_edge_rollbacks_total", "Trial models rolled back (failed probation).").Add(cam, n(c.rollbacks)));
  out.push_back(
      Counter("kd_edge_updates_refused_total", "Updates refused before a trial (signature, digest, self-test).")
          .Add(cam, n(c.rejected_manifests)));
  out.push_back(Gauge("kd_edge_downloading", "1 while an update is being downloaded.").Add(cam, c.downloading ? 1 : 0));
  return out;
}

namespace {
std::string SecondsAgo(int64_t now_us, int64_t then_us) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f s ago", static_cast<double>(now_us - then_us) / 1e6);
  return buf;
}
}  // namespace

ops::HealthReport EdgeLiveness(const EdgeHealthInput& in) {
  ops::HealthReport r;
  if (in.counters.source_done) {
    r.Add("inference", true, "the source has ended");
    return r;
  }
  const int64_t since = in.last_inferred_us >= 0 ? in.last_inferred_us : in.started_us;
  const bool fresh = static_cast<double>(in.now_us - since) <= kInferenceMaxSilenceS * 1e6;
  r.Add("inference", fresh,
        (in.last_inferred_us >= 0 ? "last frame " : "no frame since the start ") + SecondsAgo(in.now_us, since));
  return r;
}

ops::HealthReport EdgeReadiness(const EdgeHealthInput& in) {
  ops::HealthReport r;
  r.Add("model", in.model_loaded && in.counters.running_version > 0, "v" + std::to_string(in.counters.running_version));
  const bool flowing =
      in.last_inferred_us >= 0 && static_cast<double>(in.now_us - in.last_inferred_us) <= kReadyMaxSilenceS * 1e6;
  r.Add("frames", flowing || in.counters.source_done,
        in.counters.source_done
            ? "the source has ended"
            : (in.last_inferred_us >= 0 ? "last frame " + SecondsAgo(in.now_us, in.last_inferred_us) : "no frame yet"));
  // Reported, not a gate: uploads wait in the resend buffer while the learner is away.
  r.Add("learner-link", true,
        std::to_string(in.counters.frames_acked) + " uploads acknowledged, " +
            std::to_string(in.counters.unacked_frames) + " waiting");
  return r;
}

}  // namespace kd::edge
