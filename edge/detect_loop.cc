#include "edge/detect_loop.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/clock.h"
#include "edge/running_model.h"

namespace kd::edge {

Result<model::CheckedDetections> DetectFrame(const model::FusedStudent& student, const media::Frame& frame,
                                             const model::DecodeOptions& decode) {
  return model::DetectChecked(student, ModelInput(frame, student.options()), frame.width, frame.height, decode);
}

Result<DetectLoopStats> RunDetectLoop(media::FrameSource& source, std::shared_ptr<const model::FusedStudent> student,
                                      uint64_t model_version, const DetectLoopOptions& options,
                                      const std::function<Status(const FrameResult&)>& sink) {
  KD_CHECK(student != nullptr);
  DetectLoopStats stats;
  Stopwatch total;
  double infer_ms = 0;
  while (true) {
    KD_ASSIGN_OR_RETURN(auto frame, source.Next());
    if (!frame) break;
    Stopwatch sw;
    KD_ASSIGN_OR_RETURN(auto run, DetectFrame(*student, *frame, options.decode));
    FrameResult r;
    r.detections = {frame->index, std::move(run.detections[0])};
    r.inference_ms = sw.ElapsedMillis();
    r.timestamp_us = frame->timestamp_us;
    r.model_version = model_version;
    infer_ms += r.inference_ms;
    ++stats.frames;
    KD_RETURN_IF_ERROR(sink(r));
  }
  stats.seconds = total.ElapsedSeconds();
  stats.mean_inference_ms = stats.frames ? infer_ms / static_cast<double>(stats.frames) : 0;
  return stats;
}

std::string FrameResultToJson(const FrameResult& r) {
  nlohmann::json boxes = nlohmann::json::array();
  for (const auto& d : r.detections.detections) {
    boxes.push_back({{"box", {d.box.x1, d.box.y1, d.box.x2, d.box.y2}},
                     {"class", CocoClassName(d.label)},
                     {"label", d.label},
                     {"score", d.score}});
  }
  nlohmann::json j = {{"frame", r.detections.frame_index},
                      {"timestamp_us", r.timestamp_us},
                      {"model_version", r.model_version},
                      {"inference_ms", r.inference_ms},
                      {"detections", boxes}};
  return j.dump();
}

}  // namespace kd::edge
