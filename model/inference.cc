#include "model/inference.h"

#include <torch/torch.h>

namespace kd::model {

std::vector<std::vector<Detection>> DecodeStudentOutput(const StudentOutput& out, const StudentOptions& o,
                                                        int orig_width, int orig_height, DecodeOptions options) {
  torch::NoGradGuard no_grad;
  const bool o2o = o.one_to_one && out.cls_o2o.defined();
  if (o2o) {
    options.peak_extraction = options.one_to_one_peak_test;  // one location per object by construction
    options.nms_iou = 0;                                     // NMS-free
  }
  auto heat = torch::sigmoid(o2o ? out.cls_o2o : out.cls);
  const auto& box = o2o ? out.box_o2o : out.box;
  const float sx = static_cast<float>(orig_width) / static_cast<float>(o.input_width);
  const float sy = static_cast<float>(orig_height) / static_cast<float>(o.input_height);
  std::vector<std::vector<Detection>> result;
  for (int64_t n = 0; n < heat.size(0); ++n) {
    result.push_back(
        DecodeDense(heat[n], box[n], o.labels, o2o ? o.one_to_one_stride : StudentImpl::kStride, sx, sy, options));
  }
  return result;
}

std::vector<std::vector<Detection>> DetectBatch(StudentImpl& student, const torch::Tensor& images, int orig_width,
                                                int orig_height, DecodeOptions options) {
  torch::NoGradGuard no_grad;
  const bool was_training = student.is_training();
  student.eval();
  StudentOutput out = student.forward(images.to(torch::kFloat));
  if (was_training) student.train();
  return DecodeStudentOutput(out, student.options(), orig_width, orig_height, options);
}

std::vector<std::vector<Detection>> DetectBatch(const FusedStudent& student, const torch::Tensor& images,
                                                int orig_width, int orig_height, DecodeOptions options) {
  return DecodeStudentOutput(student.Forward(images), student.options(), orig_width, orig_height, options);
}

}  // namespace kd::model
