// TfjsGraph: loads a TensorFlow.js graph model (model.json + weight shards) and evaluates it with
// LibTorch ops, so a TF.js detector (the CenterNet teacher) runs and back-propagates in C++.
// Tensors are kept NCHW inside; conv kernels are converted once at load. Weights are constants
// that never require grad, so the graph is frozen yet differentiable with respect to its feeds.
// Thread-safety: Run() is const and may be called concurrently; loading is single-threaded.
#ifndef KD_MODEL_TFJS_GRAPH_H_
#define KD_MODEL_TFJS_GRAPH_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <torch/types.h>

#include "base/status.h"

namespace kd::model {

class TfjsGraph {
 public:
  // Loads `json_path` and the shards it names (relative to its folder). Supports float32,
  // float16-quantised float32 and int32 weights; other quantisations give Unimplemented.
  // The ops needed to reach `outputs` must be supported, else Unimplemented names the op.
  static Result<std::unique_ptr<TfjsGraph>> Load(const std::string& json_path, const std::vector<std::string>& outputs);

  TfjsGraph(const TfjsGraph&) = delete;
  TfjsGraph& operator=(const TfjsGraph&) = delete;
  ~TfjsGraph();

  // Evaluates `outputs` given `feeds` (node name -> NCHW tensor). Feeding an inner node cuts the
  // graph there: nothing upstream of it is evaluated. Returns tensors in NCHW, in output order.
  // `output_channels` (convolution node name -> int64 channel indices) computes only those output
  // channels of that convolution, in that order: the cross head needs 6 of the teacher's 80
  // classes, and the 74 others cost their share of the forward and the backward for nothing.
  // Throws nothing: shape errors from LibTorch come back as InvalidArgument.
  Result<std::vector<torch::Tensor>> Run(const std::map<std::string, torch::Tensor>& feeds,
                                         const std::vector<std::string>& outputs,
                                         const std::map<std::string, torch::Tensor>& output_channels = {}) const;

  // A constant weight by node name (converted layout), or an undefined tensor.
  torch::Tensor Constant(const std::string& name) const;
  // Every constant the loaded subgraph uses (for freeze checks and checksums).
  std::vector<torch::Tensor> Constants() const;
  // Moves every constant to `device` (the graph runs where its inputs are).
  void To(const torch::Device& device);
  int64_t NumParameters() const;

 private:
  struct Impl;
  explicit TfjsGraph(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// TF1 ResizeBilinear (align_corners=false, half_pixel_centers=false): src = dst * in / out.
// Not torch's interpolate. x: [N,C,H,W] -> [N,C,out_h,out_w]; differentiable. Also maps a
// stride-4 grid of one input size onto another (cell i <-> pixel 4i on both).
torch::Tensor ResizeBilinearLegacy(const torch::Tensor& x, int64_t out_h, int64_t out_w);

}  // namespace kd::model

#endif  // KD_MODEL_TFJS_GRAPH_H_
