// Student inference: uint8 frames at the student's input size -> detections in original pixels.
// Uses the one-to-one branch without NMS when the student has it, else peak extraction + NMS.
// Not thread-safe per student instance (module forward); callers serialise per instance.
#ifndef KD_MODEL_INFERENCE_H_
#define KD_MODEL_INFERENCE_H_

#include <vector>

#include <torch/types.h>

#include "base/detection.h"
#include "model/decode.h"
#include "model/student.h"

namespace kd::model {

// images: [N,3,h,w] uint8 RGB at the student's input size. Runs in eval mode under NoGradGuard.
std::vector<std::vector<Detection>> DetectBatch(StudentImpl& student, const torch::Tensor& images, int orig_width,
                                                int orig_height, DecodeOptions options = {});
// The same with a fused inference snapshot (what the edge runs). Thread-safe (const).
std::vector<std::vector<Detection>> DetectBatch(const FusedStudent& student, const torch::Tensor& images,
                                                int orig_width, int orig_height, DecodeOptions options = {});
// Decodes raw outputs of a student with `options` (one-to-one branch if present).
std::vector<std::vector<Detection>> DecodeStudentOutput(const StudentOutput& out, const StudentOptions& student,
                                                        int orig_width, int orig_height, DecodeOptions options);

}  // namespace kd::model

#endif  // KD_MODEL_INFERENCE_H_
