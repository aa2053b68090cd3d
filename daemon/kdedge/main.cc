// kdedge: the edge camera process.
//   run     the daemon: capture, detect, upload selected frames, install signed updates
//   detect  run a student on every frame of a source; JSON lines + COCO results out (offline)
#include <cstdio>
#include <fstream>
#include <iostream>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include "base/clock.h"
#include "base/log.h"
#include "config/daemon_options.h"
#include "daemon/common/cli_common.h"
#include "daemon/common/daemon_main.h"
#include "daemon/common/operate.h"
#include "daemon/common/signals.h"
#include "edge/agent.h"
#include "edge/detect_loop.h"
#include "edge/preflight.h"
#include "eval/coco_json.h"
#include "media/video_source.h"
#include "model/threads.h"
#include "model/weights_file.h"

#include "ops/web_assets.h"

namespace kd {
namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "kdedge: error: %s\n", s.ToString().c_str());
  return s.IsInvalidArgument() || s.IsNotFound() ? 2 : 1;
}

int RunDetect(const std::string& weights, const std::string& video, const std::string& frames, int threads,
              const std::string& jsonl, const std::string& coco_out, double min_score) {
  kd::model::SetComputeThreads(threads);
  auto range = daemon::ParseFrameRange(frames);
  if (!range.ok()) return Fail(range.status());
  auto loaded = model::LoadWeights(weights);
  if (!loaded.ok()) return Fail(loaded.status());
  media::SourceOptions so;
  so.begin = range->begin;
  so.end = range->end;
  auto source = media::OpenSource(video, so);
  if (!source.ok()) return Fail(source.status());
  std::ofstream file;
  std::ostream* lines = &std::cout;
  if (!jsonl.empty() && jsonl != "-") {
    file.open(jsonl, std::ios::trunc);
    if (!file) return Fail(Status::IOError("cannot write '" + jsonl + "'"));
    lines = &file;
  }
  // BN folded, channels-last: the snapshot the edge shares between stages.
  auto student = std::make_shared<const model::FusedStudent>(*loaded->student);
  edge::DetectLoopOptions options;
  options.decode.score_threshold = static_cast<float>(min_score);
  std::vector<FrameDetections> all;
  auto stats = edge::RunDetectLoop(
      **source, student, loaded->meta.model_version, options, [&](const edge::FrameResult& r) -> Status {
        *lines << edge::FrameResultToJson(r) << "\n";
        if (!*lines) return Status::IOError("cannot write detections (disk full?)");
        all.push_back(r.detections);
        if (all.size() % 100 == 0) {
          std::fprintf(stderr, "frame %zu  inference %.2f ms\n", all.size(), r.inference_ms);
        }
        return Status::Ok();
      });
  if (!stats.ok()) return Fail(stats.status());
  lines->flush();
  if (!coco_out.empty()) {
    if (Status s = eval::WriteCocoResults(coco_out, all); !s.ok()) return Fail(s);
  }
  std::fprintf(stderr,
               "kdedge: %lld frames, student %.2f ms/frame (resize + forward + decode) at %d thread(s), %.1f fps "
               "overall, model version %llu\n",
               static_cast<long long>(stats->frames), stats->mean_inference_ms, threads,
               static_cast<double>(stats->frames) / std::max(stats->seconds, 1e-9),
               static_cast<unsigned long long>(loaded->meta.model_version));
  return 0;
}

int RunDaemon(const daemon::ConfigFlags& flags) {
  const daemon::DaemonConfig<config::EdgeOptions> kEdge = {
      .program = "kdedge",
      .env_prefix = config::kEdgeEnvPrefix,
      .load = &config::LoadEdgeOptions,
      .to_toml = &config::ToToml,
      .preflight = &edge::PreflightEdge,
      .log_level = [](const config::EdgeOptions& o) -> const std::string& { return o.output.log_level; }};
  auto start = daemon::StartDaemon(kEdge, flags);
  if (!start.options) return start.exit_code;
  const config::EdgeOptions& options = *start.options;
  auto agent = edge::EdgeAgent::Start(options);
  if (!agent.ok()) return Fail(agent.status());
  // Runs until a signal, or until a finite source (a file without loop) has been fully processed.
  edge::EdgeAgent& a = **agent;
  daemon::Operated op;
  op.http.listen = options.http.listen;
  op.handlers.daemon = "kdedge";
  op.handlers.metrics = [&a] { return a.Metrics(); };
  op.handlers.live = [&a] { return a.Live(); };
  op.handlers.ready = [&a] { return a.Ready(); };
  op.handlers.status_json = [&a] { return a.StatusJson(); };
  op.handlers.routes["/latest.jpg"] = [&a](const std::map<std::string, std::string>&) {
    auto jpeg = a.PreviewJpeg();
    if (!jpeg.ok()) return ops::HttpReply::Bytes("no frame yet\n", "text/plain", 404);
    return ops::HttpReply::Bytes(std::string(jpeg->begin(), jpeg->end()), "image/jpeg");
  };
  op.handlers.routes["/api/v1/detections"] = [&a](const std::map<std::string, std::string>&) {
    auto doc = a.PreviewJson();
    if (!doc.ok()) return ops::HttpReply::Json("{\"error\":\"no frame yet\"}", 404);
    return ops::HttpReply::Json(std::move(doc).value());
  };
  op.handlers.assets = ops::EdgeWebAssets();
  op.finished = [&a] { return a.WaitForSourceEnd(std::chrono::milliseconds(0)); };
  const int sig = daemon::RunOperated(std::move(op));
  if (sig < 0) {
    a.Stop();
    return 1;
  }
  KD_LOG(kInfo) << (sig ? "signal " + std::to_string(sig) + ": stopping" : std::string("source ended: stopping"));
  (*agent)->Stop();
  std::fprintf(stderr, "%s\n", (*agent)->StatusJson().c_str());
  return 0;
}

}  // namespace
}  // namespace kd

int main(int argc, char** argv) {
  kd::model::TuneAllocatorForTensors();
  CLI::App app{"kdedge: the edge camera process of the kd continual distillation system"};
  app.require_subcommand(1);
  auto* detect = app.add_subcommand("detect", "Run a student on every frame of a source");
  std::string weights, video, frames, jsonl, coco_out;
  int threads = 1;
  double min_score = 0.05;
  detect->add_option("--weights", weights, "Student weights (.kdw)")->required();
  detect->add_option("--video", video, "Video file, image folder, rtsp:// URL or v4l2:N")->required();
  detect->add_option("--frames", frames, "Half-open 0-based frame range A:B (default: all)");
  detect->add_option("--threads", threads, "CPU threads for LibTorch")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  detect->add_option("--jsonl", jsonl, "JSON lines output file ('-' or unset: stdout)");
  detect->add_option("--coco-out", coco_out, "COCO results JSON output");
  detect->add_option("--min-score", min_score, "Minimum detection score")->capture_default_str();
  auto* run = app.add_subcommand("run", "Run the edge daemon (SIGTERM/SIGINT stop it cleanly)");
  kd::daemon::ConfigFlags run_flags;
  run->add_option("--config", run_flags.config_path, "TOML file (see config/examples/kdedge.toml)");
  run->add_option("--set", run_flags.overrides, "Override a config key: section.key=value (repeatable)");
  run->add_flag("--check-config", run_flags.check_only, "Validate the configuration and exit (0 = valid, 2 = not)");
  run->add_flag("--print-config", run_flags.print_config, "Print the effective configuration as TOML");

  kd::daemon::BlockTerminationSignals();  // before any thread starts: the main thread takes them
  CLI11_PARSE(app, argc, argv);
  if (*run) return kd::RunDaemon(run_flags);
  if (*detect) return kd::RunDetect(weights, video, frames, threads, jsonl, coco_out, min_score);
  return 2;
}
