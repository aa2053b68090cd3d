#include "model/frame_tensor.h"

#include <torch/torch.h>

#include "base/check.h"

namespace kd::model {

torch::Tensor FrameToTensor(const media::Frame& f) {
  KD_CHECK(f.rgb.size() == static_cast<size_t>(f.width) * static_cast<size_t>(f.height) * 3);
  // from_blob does not copy; clone() does, after the HWC -> CHW permute.
  return torch::from_blob(const_cast<uint8_t*>(f.rgb.data()), {f.height, f.width, 3}, torch::kUInt8)
      .permute({2, 0, 1})
      .clone();
}

}  // namespace kd::model
