#include "model/checked_run.h"

#include <exception>
#include <string>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "base/text.h"
#include "model/inference.h"
#include "model/weights_file.h"

namespace kd::model {
namespace {

Status CheckHead(const InferenceHead& head, const StudentOptions& arch, int64_t batch) {
  const char* branch = arch.one_to_one ? "one-to-one" : "one-to-many";
  if (!head.cls.defined() || !head.box.defined()) {
    return Status::FailedPrecondition(std::string("the model has no ") + branch + " outputs");
  }
  const int64_t h = arch.input_height / arch.inference_stride(), w = arch.input_width / arch.inference_stride();
  const std::vector<int64_t> want_cls = {batch, arch.num_classes(), h, w}, want_box = {batch, 4, h, w};
  if (head.cls.sizes().vec() != want_cls || head.box.sizes().vec() != want_box) {
    return Status::FailedPrecondition(std::string("the model's ") + branch + " outputs are " +
                                      c10::str(head.cls.sizes()) + " / " + c10::str(head.box.sizes()) + ", expected " +
                                      c10::str(c10::IntArrayRef(want_cls)) + " / " +
                                      c10::str(c10::IntArrayRef(want_box)));
  }
  return Status::Ok();
}

}  // namespace

InferenceHead InferenceHeadOf(const StudentOutput& out, const StudentOptions& arch) {
  if (arch.one_to_one) return {out.cls_o2o, out.box_o2o};
  return {out.cls, out.box};
}

Result<InferenceHead> ForwardChecked(const FusedStudent& student, const torch::Tensor& images) {
  InferenceHead head;
  try {
    torch::NoGradGuard no_grad;
    head = InferenceHeadOf(student.Forward(images), student.options());
  } catch (const c10::Error& e) {
    return Status::Internal("forward: " + FirstLine(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("forward: ") + FirstLine(e.what()));
  }
  KD_RETURN_IF_ERROR(CheckHead(head, student.options(), images.dim() == 4 ? images.size(0) : -1));
  return head;
}

bool AllFinite(const InferenceHead& head) {
  return torch::isfinite(head.cls).all().item<bool>() && torch::isfinite(head.box).all().item<bool>();
}

Result<CheckedDetections> DetectChecked(const FusedStudent& student, const torch::Tensor& images, int orig_width,
                                        int orig_height, const DecodeOptions& options) {
  CheckedDetections r;
  KD_ASSIGN_OR_RETURN(r.head, ForwardChecked(student, images));
  try {
    r.finite = AllFinite(r.head);
    StudentOutput out;  // decoding reads the branch the architecture names
    if (student.options().one_to_one) {
      out.cls_o2o = r.head.cls, out.box_o2o = r.head.box;
    } else {
      out.cls = r.head.cls, out.box = r.head.box;
    }
    r.detections = DecodeStudentOutput(out, student.options(), orig_width, orig_height, options);
  } catch (const c10::Error& e) {
    return Status::Internal("decode: " + FirstLine(e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("decode: ") + FirstLine(e.what()));
  }
  return r;
}

Status CheckDeployable(const FusedStudent& student) {
  const StudentOptions& arch = student.options();
  KD_RETURN_IF_ERROR(arch.Validate().WithContext("architecture"));
  const auto grey = torch::full({1, 3, arch.input_height, arch.input_width}, 128, torch::kUInt8);
  KD_ASSIGN_OR_RETURN(auto run, DetectChecked(student, grey, arch.input_width, arch.input_height, DecodeOptions{}));
  if (!run.finite) return Status::FailedPrecondition("non-finite outputs on a grey frame");
  return Status::Ok();
}

Status CheckDeployable(const StudentImpl& student) {
  std::shared_ptr<const FusedStudent> fused;
  try {
    fused = std::make_shared<const FusedStudent>(student);
  } catch (const c10::Error& e) {
    return Status::Internal("fusing batch norms: " + FirstLine(e.what_without_backtrace()));
  }
  return CheckDeployable(*fused);
}

Status CheckDeployableWeights(const std::vector<uint8_t>& kdw_bytes) {
  KD_ASSIGN_OR_RETURN(auto loaded, DecodeWeights(kdw_bytes));
  return CheckDeployable(*loaded.student);
}

}  // namespace kd::model
