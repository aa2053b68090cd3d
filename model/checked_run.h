// Checked runs of a student: the one wrapper through which the daemons run a model they did not
// build themselves (an update, a bootstrap file, a candidate about to be published). Nothing that
// LibTorch throws gets past it: an exception becomes a Status, so a bad model is refused like one
// that fails its self-test and never ends a daemon.
//
// Which head a model is judged on follows its architecture: the one-to-one (NMS-free) branch when
// `StudentOptions::one_to_one`, else the one-to-many branch. A fused NMS-free student computes only
// its one-to-one branch, so code that read `StudentOutput::cls` directly failed on it.
// Functions are thread-safe (a FusedStudent is immutable).
#ifndef KD_MODEL_CHECKED_RUN_H_
#define KD_MODEL_CHECKED_RUN_H_

#include <cstdint>
#include <vector>

#include <torch/types.h>

#include "base/detection.h"
#include "base/status.h"
#include "model/decode.h"
#include "model/student.h"

namespace kd::model {

// The outputs inference reads (f32; N = batch, K = classes, h,w = input size / 4).
struct InferenceHead {
  torch::Tensor cls;  // [N,K,h,w] logits
  torch::Tensor box;  // [N,4,h,w] l,t,r,b distances in input pixels
};

// The head `arch` says inference uses (tensors are undefined when `out` lacks them).
InferenceHead InferenceHeadOf(const StudentOutput& out, const StudentOptions& arch);

// One forward pass of `student` on images [N,3,H,W] (uint8 or float RGB 0..255, H,W = the
// student's input size). Errors: kInternal when LibTorch throws (the message is LibTorch's first
// line); kFailedPrecondition when the inference head is missing or not [N,K,h,w] / [N,4,h,w].
// Non-finite values are not an error here: see AllFinite.
Result<InferenceHead> ForwardChecked(const FusedStudent& student, const torch::Tensor& images);

// True when every value of both tensors is finite.
bool AllFinite(const InferenceHead& head);

// A frame's run as the edge does it: checked forward, then decoding into detections in original
// pixels (`orig_width` x `orig_height`), with the same error kinds as ForwardChecked.
struct CheckedDetections {
  InferenceHead head;
  bool finite = true;                              // AllFinite(head)
  std::vector<std::vector<Detection>> detections;  // per image
};
Result<CheckedDetections> DetectChecked(const FusedStudent& student, const torch::Tensor& images, int orig_width,
                                        int orig_height, const DecodeOptions& options);

// What a device requires before it runs a model, checked without a camera: an architecture the
// edge supports (StudentOptions::Validate), a forward pass on a mid-grey frame that succeeds with
// the expected head and shapes, finite outputs, and decoding that succeeds. kFailedPrecondition or
// kInternal otherwise. The learner runs this on each candidate before publishing it.
Status CheckDeployable(const FusedStudent& student);
// The same for a student module, fused (batch norms folded) as the edge runs it.
Status CheckDeployable(const StudentImpl& student);
// The same for a .kdw artefact, decoded exactly as a device decodes it (DecodeWeights, BN folded).
Status CheckDeployableWeights(const std::vector<uint8_t>& kdw_bytes);

}  // namespace kd::model

#endif  // KD_MODEL_CHECKED_RUN_H_
