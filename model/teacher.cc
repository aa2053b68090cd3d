#include "model/teacher.h"

#include <map>

#include <torch/torch.h>

namespace kd::model {
namespace {

constexpr const char* kInput = "tower_0/images";
constexpr const char* kFeature = "tower_0/CenternetHead/Relu_2";
constexpr const char* kClsLogits = "tower_0/CenternetHead/centernet_cls_output/BiasAdd";
constexpr const char* kBox = "tower_0/wh";

}  // namespace

Result<std::unique_ptr<CenterNetTeacher>> CenterNetTeacher::Load(const std::string& json_path,
                                                                 const torch::Device& device) {
  KD_ASSIGN_OR_RETURN(auto graph, TfjsGraph::Load(json_path, {kFeature, kClsLogits, kBox}));
  graph->To(device);
  return std::unique_ptr<CenterNetTeacher>(new CenterNetTeacher(std::move(graph), device));
}

Result<TeacherOutput> CenterNetTeacher::Forward(const torch::Tensor& images) const {
  if (images.dim() != 4 || images.size(1) != 3) {
    return Status::InvalidArgument("teacher input must be [N,3,H,W]");
  }
  if (images.size(2) % 32 != 0 || images.size(3) % 32 != 0) {
    return Status::InvalidArgument("teacher input height and width must be multiples of 32, got " +
                                   std::to_string(images.size(2)) + "x" + std::to_string(images.size(3)));
  }
  torch::NoGradGuard no_grad;
  KD_ASSIGN_OR_RETURN(auto outs,
                      graph_->Run({{kInput, images.to(device_, torch::kFloat)}}, {kFeature, kClsLogits, kBox}));
  TeacherOutput out;
  out.feature = outs[0];
  out.cls_logits = outs[1];
  out.heat = torch::sigmoid(outs[1]);
  out.box = outs[2];
  return out;
}

Result<TeacherHeadOutput> CenterNetTeacher::Head(const torch::Tensor& feature,
                                                 const std::vector<int64_t>& classes) const {
  if (feature.dim() != 4 || feature.size(1) != kFeatureChannels) {
    return Status::InvalidArgument("teacher head input must be [N,128,h,w]");
  }
  std::map<std::string, torch::Tensor> channels;
  if (!classes.empty()) {
    for (int64_t c : classes) {
      if (c < 0 || c >= kNumClasses) {
        return Status::InvalidArgument("teacher class " + std::to_string(c) + " not in 0..79");
      }
    }
    channels[kClsLogits] = torch::tensor(classes, torch::kLong);
  }
  KD_ASSIGN_OR_RETURN(auto outs, graph_->Run({{kFeature, feature}}, {kClsLogits, kBox}, channels));
  return TeacherHeadOutput{outs[0], outs[1]};
}

}  // namespace kd::model
