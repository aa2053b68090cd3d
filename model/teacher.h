// CenterNetTeacher: the real pretrained MobileNetV3-CenterNet (COCO-80) from @vladmandic/human,
// run through TfjsGraph. Frozen (its weights are constants; no parameters, no gradients, no BN
// state) yet differentiable: Head() runs the teacher's head on any stride-4 feature map and
// back-propagates into that input, which is what CrossKD needs.
// Thread-safety: const methods may run concurrently. Owns its graph.
#ifndef KD_MODEL_TEACHER_H_
#define KD_MODEL_TEACHER_H_

#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "base/status.h"
#include "model/tfjs_graph.h"

namespace kd::model {

struct TeacherOutput {
  torch::Tensor heat;        // [N,80,H/4,W/4] f32 sigmoid class heat-map in [0,1]
  torch::Tensor cls_logits;  // [N,80,H/4,W/4] f32 logits (heat = sigmoid(cls_logits))
  torch::Tensor box;         // [N,4,H/4,W/4]  f32 distances l,t,r,b in input pixels
  torch::Tensor feature;     // [N,128,H/4,W/4] f32 head input (post-ReLU FPN feature)
};

struct TeacherHeadOutput {
  torch::Tensor cls_logits;  // [N,80,h,w], or [N,K,h,w] for K chosen classes
  torch::Tensor box;         // [N,4,h,w] l,t,r,b in pixels of an input with stride 4
};

class CenterNetTeacher {
 public:
  static constexpr int kStride = 4;
  static constexpr int kFeatureChannels = 128;
  static constexpr int kNumClasses = 80;
  static constexpr int kDefaultLongSide = 512;  // the size it was trained at

  // Loads centernet.json (+ centernet.bin beside it).
  static Result<std::unique_ptr<CenterNetTeacher>> Load(const std::string& json_path,
                                                        const torch::Device& device = torch::kCPU);

  // images: [N,3,H,W] f32 RGB in 0..255 (no normalisation), H and W multiples of 32.
  // Runs without autograd (NoGradGuard).
  Result<TeacherOutput> Forward(const torch::Tensor& images) const;

  // The teacher's head on a feature map: [N,128,h,w] -> class logits and boxes. Autograd flows
  // into `feature`; the teacher's own weights never receive gradients. `classes` (COCO indices,
  // each in 0..79): only those classes' logits are computed, in that order (empty = all 80).
  Result<TeacherHeadOutput> Head(const torch::Tensor& feature, const std::vector<int64_t>& classes = {}) const;

  const torch::Device& device() const { return device_; }
  int64_t NumParameters() const { return graph_->NumParameters(); }
  const TfjsGraph& graph() const { return *graph_; }

 private:
  CenterNetTeacher(std::unique_ptr<TfjsGraph> graph, torch::Device device)
      : graph_(std::move(graph)), device_(device) {}
  std::unique_ptr<TfjsGraph> graph_;
  torch::Device device_;
};

}  // namespace kd::model

#endif  // KD_MODEL_TEACHER_H_
