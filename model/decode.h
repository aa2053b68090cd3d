// Decoding dense detector outputs (teacher or student, one stride-S level) into boxes in the
// original image's pixels. A location (x,y) with distances (l,t,r,b) gives the box
// (S*x - l, S*y - t, S*x + r, S*y + b) in network-input pixels (the teacher's convention),
// then scaled by (orig_w / input_w, orig_h / input_h). Pure functions; thread-safe.
#ifndef KD_MODEL_DECODE_H_
#define KD_MODEL_DECODE_H_

#include <vector>

#include <torch/types.h>

#include "base/detection.h"

namespace kd::model {

struct DecodeOptions {
  // Minimum score kept. Default: 0.05 (COCO-eval practice; raise for display).
  float score_threshold = 0.05f;
  // At most this many detections per image. Default: 100 (COCO maxDets).
  int max_detections = 100;
  // Keep only local maxima of a 3x3 window (CenterNet peak extraction). Default: true.
  // One-to-one (NMS-free) heads set this false: each object already has one location.
  bool peak_extraction = true;
  // Per-class NMS IoU threshold; <= 0 disables NMS. Default: 0.5.
  float nms_iou = 0.5f;
  // A student's one-to-one branch is decoded without peak extraction and without NMS; this keeps
  // only its 3x3 local maxima (a peak test, still NMS-free), which drops a second location that
  // fires next to the matched one. Default: false (issue 9 measures both).
  bool one_to_one_peak_test = false;
};

// heat: [K,h,w] probabilities; box: [4,h,w] l,t,r,b in input pixels; labels[k] is the COCO
// label of channel k; scale_x/scale_y map input pixels to original pixels.
std::vector<Detection> DecodeDense(const torch::Tensor& heat, const torch::Tensor& box, const std::vector<int>& labels,
                                   int stride, float scale_x, float scale_y, const DecodeOptions& options);

// [N,4,h,w] distances -> [N,4,h,w] boxes x1,y1,x2,y2 in input pixels (differentiable).
torch::Tensor DistancesToBoxes(const torch::Tensor& distances, int stride);

}  // namespace kd::model

#endif  // KD_MODEL_DECODE_H_
