// FrameToTensor: a decoded frame as the networks take it. The one place where RGB bytes become a
// tensor (the learner's datasets, the teacher records and the edge's model input all use it).
// Pure function; thread-safe.
#ifndef KD_MODEL_FRAME_TENSOR_H_
#define KD_MODEL_FRAME_TENSOR_H_

#include <torch/types.h>

#include "media/frame.h"

namespace kd::model {

// [3,H,W] uint8 RGB, a copy (the frame may go away).
torch::Tensor FrameToTensor(const media::Frame& frame);

}  // namespace kd::model

#endif  // KD_MODEL_FRAME_TENSOR_H_
