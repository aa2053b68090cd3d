// Student: a small anchor-free detector for the edge, a torch::nn module (CenterNet/FCOS-like,
// one stride-4 output level). Backbone of depthwise-separable blocks, an FPN-lite neck back to
// stride 4, and a head with a shared tower whose pre-ReLU output is the default CrossKD tap (the
// neck's pre-ReLU output is the other, `CrossKdTap`), followed by
// a one-to-many branch (peak extraction + NMS at inference, or the training-only auxiliary branch
// under CAKD) and an optional one-to-one branch (NMS-free inference, top-k only).
// Thread-safety: a module instance is not thread-safe; the edge shares a loaded student as
// shared_ptr<const ...> and runs it under NoGradGuard in eval mode from one thread.
#ifndef KD_MODEL_STUDENT_H_
#define KD_MODEL_STUDENT_H_

#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include "base/status.h"

namespace kd::model {

struct StudentOptions {
  // Backbone base width (channels of the stride-2 stem). Default: 16. REQUIRES: 8..64.
  int width = 16;
  // Channels of the stride-4 head (neck output and tower). Default: 32. REQUIRES: 8..256.
  int head_channels = 32;
  // COCO-80 contiguous labels the student detects, in output-channel order.
  // Default: person, bicycle, car, motorcycle, bus, truck.
  std::vector<int> labels = {0, 1, 2, 3, 5, 7};
  // Network input size (pixels). Default 384x288 (a 4:3 camera). REQUIRES: multiples of 32.
  int input_width = 384;
  int input_height = 288;
  // Adds the one-to-one (NMS-free) branch; inference then uses it. Default: false.
  bool one_to_one = false;
  // Stride (px) of the one-to-one branch: 4 (the head's grid) or 8 (the head's features average-
  // pooled 2x2 before its tower). Default: 4. REQUIRES: 4 or 8.
  int one_to_one_stride = 4;

  int num_classes() const { return static_cast<int>(labels.size()); }
  // The stride of the branch inference runs (px): one_to_one_stride with the one-to-one branch, else 4.
  int inference_stride() const { return one_to_one ? one_to_one_stride : 4; }
  Status Validate() const;
  // Canonical JSON string of the architecture (stored in weight files; hashed for manifests).
  std::string ArchJson() const;
  static Result<StudentOptions> FromArchJson(const std::string& json);
};

// All tensors f32, N = batch, h = input_height/4, w = input_width/4.
struct StudentOutput {
  torch::Tensor cls;      // [N,K,h,w] logits, one-to-many branch
  torch::Tensor box;      // [N,4,h,w] l,t,r,b distances in input pixels (>= 0), one-to-many
  torch::Tensor cls_o2o;  // [N,K,h',w'] logits of the one-to-one branch (undefined without it);
  torch::Tensor box_o2o;  // [N,4,h',w']; h' = input_height / one_to_one_stride (h or h/2)
  torch::Tensor tap;      // [N,C,h,w] pre-ReLU tower output (the default CrossKD tap)
  torch::Tensor neck;     // [N,C,h,w] pre-ReLU neck output, the tower's input (the earlier tap)
};

// Where CrossKD takes the student's features for the teacher head. Every layer after the tap
// learns from the detection loss only. kTower: after the head's tower (only the final 1x1 convs
// are decoupled); kNeck: before it (the tower is decoupled too: CrossKD's "tap inside the head").
enum class CrossKdTap { kTower, kNeck };

class StudentImpl : public torch::nn::Module {
 public:
  static constexpr int kStride = 4;
  // Fixed input normalisation of 0..255 RGB: (x - kPixelMean) / kPixelStd.
  static constexpr float kPixelMean = 114.f, kPixelStd = 58.f;
  // Box distances are softplus(logit) * kBoxScale pixels: positive with gradients everywhere;
  // a zero logit gives ~11 px, the size of a small pedestrian at 384x288.
  static constexpr float kBoxScale = 16.f;
  explicit StudentImpl(StudentOptions options);

  // images: [N,3,H,W] f32 RGB in 0..255 (normalised inside), H,W = options' input size.
  StudentOutput forward(const torch::Tensor& images);
  const StudentOptions& options() const { return options_; }

 private:
  friend class FusedStudent;
  StudentOptions options_;
  torch::nn::Sequential stem_{nullptr}, stage2_{nullptr}, stage3_{nullptr}, stage4_{nullptr}, stage5_{nullptr};
  torch::nn::Conv2d lat2_{nullptr}, lat3_{nullptr}, lat4_{nullptr}, lat5_{nullptr};
  torch::nn::Sequential tower_{nullptr};  // conv + BN, no activation: its output is the default tap
  torch::nn::Conv2d cls_{nullptr}, box_{nullptr};
  torch::nn::Sequential o2o_tower_{nullptr};
  torch::nn::Conv2d cls_o2o_{nullptr}, box_o2o_{nullptr};
};
TORCH_MODULE(Student);

// FusedStudent: an inference-only snapshot of a Student with every BatchNorm folded into the
// preceding convolution and all weights in channels-last layout (about 2x faster on CPU than the
// training module in eval mode). Immutable after construction: safe to share between threads
// as shared_ptr<const FusedStudent>; Forward() allocates only its activations.
class FusedStudent {
 public:
  explicit FusedStudent(const StudentImpl& student);
  // Same contract as StudentImpl::forward in eval mode (tap is left undefined).
  StudentOutput Forward(const torch::Tensor& images) const;
  const StudentOptions& options() const { return options_; }

 private:
  struct Conv {
    torch::Tensor weight, bias;
    int64_t stride = 1, padding = 0, groups = 1;
    bool relu = false;
  };
  using Chain = std::vector<Conv>;
  static Chain Fuse(const torch::nn::Sequential& seq);
  static torch::Tensor Run(const Chain& chain, torch::Tensor x);

  StudentOptions options_;
  Chain stem_, stage2_, stage3_, stage4_, stage5_, tower_, o2o_tower_;
  Conv lat2_, lat3_, lat4_, lat5_, cls_, box_, cls_o2o_, box_o2o_;
};

// Parameter names of the layers after `tap` (the final convs, and the tower for kNeck): under
// CrossKD these receive gradients from the detection loss only.
std::vector<std::string> StudentPostTapParameterNames(const StudentImpl& student, CrossKdTap tap);

}  // namespace kd::model

#endif  // KD_MODEL_STUDENT_H_
