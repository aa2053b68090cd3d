// The edge's per-frame detection stage: pulls frames from a FrameSource, runs the (fused) student
// on every frame, and hands each frame's detections to a sink, with timing. One thread drives a
// loop; the student snapshot is shared read-only (shared_ptr<const FusedStudent>).
#ifndef KD_EDGE_DETECT_LOOP_H_
#define KD_EDGE_DETECT_LOOP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "base/detection.h"
#include "base/status.h"
#include "media/video_source.h"
#include "model/checked_run.h"
#include "model/decode.h"
#include "model/student.h"

namespace kd::edge {

struct FrameResult {
  FrameDetections detections;  // boxes in the source frame's pixels, COCO labels
  int64_t timestamp_us = 0;    // from the source
  uint64_t model_version = 0;  // of the student that produced them
  double inference_ms = 0;     // resize + forward + decode
};

struct DetectLoopOptions {
  model::DecodeOptions decode;  // Default: score >= 0.05, 100 per frame
};

struct DetectLoopStats {
  int64_t frames = 0;
  double mean_inference_ms = 0;
  double seconds = 0;
};

// The per-frame step the detection loop and the edge's inference stage share: the frame resized to
// the student's input, one checked forward pass, detections decoded in the frame's own pixels.
// Errors are model::DetectChecked's (kInternal when LibTorch throws, kFailedPrecondition for a
// missing or misshapen head): a model that fails on a frame is a Status, never an exception.
Result<model::CheckedDetections> DetectFrame(const model::FusedStudent& student, const media::Frame& frame,
                                             const model::DecodeOptions& decode);

// Runs until the source ends, a frame fails to run (DetectFrame's Status), or `sink` returns a
// non-OK Status (which is returned).
Result<DetectLoopStats> RunDetectLoop(media::FrameSource& source, std::shared_ptr<const model::FusedStudent> student,
                                      uint64_t model_version, const DetectLoopOptions& options,
                                      const std::function<Status(const FrameResult&)>& sink);

// One JSON line (no trailing newline): {"frame", "timestamp_us", "model_version", "inference_ms",
// "detections": [{"box": [x1,y1,x2,y2], "class", "label", "score"}]}.
std::string FrameResultToJson(const FrameResult& result);

}  // namespace kd::edge

#endif  // KD_EDGE_DETECT_LOOP_H_
