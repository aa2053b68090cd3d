// kdedge: the edge camera process. Offline subcommand (ahead of the daemon loop):
//   detect  run a student on every frame of a source; JSON lines + COCO results out
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "base/clock.h"
#include "base/log.h"
#include "daemon/common/cli_common.h"
#include "eval/coco_json.h"
#include "media/image_ops.h"
#include "media/video_source.h"
#include "model/inference.h"
#include "model/weights_file.h"

namespace kd {
namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "kdedge: error: %s\n", s.ToString().c_str());
  return s.IsInvalidArgument() || s.IsNotFound() ? 2 : 1;
}

int RunDetect(const std::string& weights, const std::string& video, const std::string& frames, int threads,
              const std::string& jsonl, const std::string& coco_out, double min_score) {
  at::set_num_threads(threads);
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
  const model::FusedStudent student(*loaded->student);  // BN folded, channels-last
  const auto& opt = student.options();
  model::DecodeOptions dec;
  dec.score_threshold = static_cast<float>(min_score);
  std::vector<FrameDetections> all;
  Stopwatch total;
  double infer_ms = 0;
  size_t n = 0;
  while (true) {
    auto frame = (*source)->Next();
    if (!frame.ok()) return Fail(frame.status());
    if (!frame->has_value()) break;
    const media::Frame& f = **frame;
    media::Frame in = media::ResizeRgb(f, opt.input_width, opt.input_height);
    auto t = torch::from_blob(in.rgb.data(), {1, in.height, in.width, 3}, torch::kUInt8).permute({0, 3, 1, 2});
    Stopwatch sw;
    auto dets = model::DetectBatch(student, t, f.width, f.height, dec)[0];
    infer_ms += sw.ElapsedMillis();
    nlohmann::json j = {{"frame", f.index}, {"timestamp_us", f.timestamp_us}, {"model_version", loaded->meta.model_version}};
    nlohmann::json boxes = nlohmann::json::array();
    for (const auto& d : dets) {
      boxes.push_back({{"box", {d.box.x1, d.box.y1, d.box.x2, d.box.y2}},
                       {"class", CocoClassName(d.label)},
                       {"label", d.label},
                       {"score", d.score}});
    }
    j["detections"] = boxes;
    *lines << j.dump() << "\n";
    all.push_back({f.index, std::move(dets)});
    ++n;
    if (n % 100 == 0) {
      std::fprintf(stderr, "frame %zu  %.1f fps (inference %.2f ms/frame)\n", n, static_cast<double>(n) / total.ElapsedSeconds(),
                   infer_ms / static_cast<double>(n));
    }
  }
  lines->flush();
  if (!coco_out.empty()) {
    if (Status s = eval::WriteCocoResults(coco_out, all); !s.ok()) return Fail(s);
  }
  std::fprintf(stderr, "kdedge: %zu frames, student inference %.2f ms/frame at %d threads (model version %llu)\n", n,
               n ? infer_ms / static_cast<double>(n) : 0.0, threads,
               static_cast<unsigned long long>(loaded->meta.model_version));
  return 0;
}

}  // namespace
}  // namespace kd

int main(int argc, char** argv) {
  CLI::App app{"kdedge: the edge camera process of the kd continual distillation system"};
  app.require_subcommand(1);
  auto* detect = app.add_subcommand("detect", "Run a student on every frame of a source");
  std::string weights, video, frames, jsonl, coco_out;
  int threads = 1;
  double min_score = 0.05;
  detect->add_option("--weights", weights, "Student weights (.kdw)")->required();
  detect->add_option("--video", video, "Video file, image folder, rtsp:// URL or v4l2:N")->required();
  detect->add_option("--frames", frames, "Half-open 0-based frame range A:B (default: all)");
  detect->add_option("--threads", threads, "CPU threads for LibTorch")->capture_default_str()->check(CLI::Range(1, 256));
  detect->add_option("--jsonl", jsonl, "JSON lines output file ('-' or unset: stdout)");
  detect->add_option("--coco-out", coco_out, "COCO results JSON output");
  detect->add_option("--min-score", min_score, "Minimum detection score")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (*detect) return kd::RunDetect(weights, video, frames, threads, jsonl, coco_out, min_score);
  return 2;
}
