#include "edge/running_model.h"

#include <algorithm>

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include "base/clock.h"
#include "media/image_ops.h"
#include "model/checked_run.h"
#include "model/frame_tensor.h"
#include "model/weights_file.h"
#include "update/state.h"

namespace kd::edge {

Result<std::shared_ptr<const RunningModel>> BuildRunningModel(const model::StudentImpl& student, uint64_t version,
                                                              bool trial) {
  auto m = std::make_shared<RunningModel>();
  m->version = version;
  m->trial = trial;
  m->arch = student.options();
  try {
    m->fused = std::make_shared<const model::FusedStudent>(student);
  } catch (const c10::Error& e) {
    return Status::Internal(std::string("fusing the model: ") + e.what_without_backtrace());
  }
  m->state = std::make_shared<const update::TensorMap>(update::StateOf(student));
  return std::shared_ptr<const RunningModel>(std::move(m));
}

Result<std::shared_ptr<const RunningModel>> LoadRunningModel(const std::string& path, uint64_t version, bool trial,
                                                             const ModelBuilder& build) {
  KD_ASSIGN_OR_RETURN(auto loaded, model::LoadWeights(path));
  KD_ASSIGN_OR_RETURN(auto m, build(*loaded.student, version, trial));
  // Not "v" + std::to_string(...): GCC 12 warns falsely (-Wstringop-overflow) on that form.
  const std::string context = std::string("v").append(std::to_string(version)).append(" cannot run");
  KD_RETURN_IF_ERROR(model::CheckDeployable(*m->fused).WithContext(context));
  return m;
}

torch::Tensor ModelInput(const media::Frame& frame, const model::StudentOptions& arch) {
  return model::FrameToTensor(media::ResizeRgb(frame, arch.input_width, arch.input_height)).unsqueeze(0);
}

Status SelfTest(const RunningModel& next, const RunningModel& running, const media::Frame& frame,
                double max_latency_ratio, const Clock& clock) {
  const auto in_new = ModelInput(frame, next.arch), in_old = ModelInput(frame, running.arch);
  // A warm-up run of each first: the first forward of a new module pays for allocations and would
  // make a healthy model look slow. Its outputs are the ones checked.
  KD_ASSIGN_OR_RETURN(const model::InferenceHead o_old, model::ForwardChecked(*running.fused, in_old));
  auto new_head = model::ForwardChecked(*next.fused, in_new);
  if (!new_head.ok()) return new_head.status().WithContext("self-test");
  const model::InferenceHead& o_new = *new_head;
  if (!model::AllFinite(o_new)) return Status::FailedPrecondition("self-test: non-finite outputs");
  if (o_new.cls.sizes() != o_old.cls.sizes() || o_new.box.sizes() != o_old.box.sizes()) {
    return Status::FailedPrecondition("self-test: output shapes differ from the running model's");
  }
  // Latency: the two models timed in alternation, kLatencyRounds times each, best of each. Another
  // process's burst then slows both or one sample of one, never every sample of the new model
  // alone; timing one model after the other made a single burst refuse healthy models (issue 12).
  constexpr int kLatencyRounds = 5;
  double t_old = 1e9, t_new = 1e9;
  for (int i = 0; i < kLatencyRounds; ++i) {
    Stopwatch sw_old(clock);
    KD_RETURN_IF_ERROR(model::ForwardChecked(*running.fused, in_old).status());
    t_old = std::min(t_old, sw_old.ElapsedSeconds());
    Stopwatch sw_new(clock);
    auto run = model::ForwardChecked(*next.fused, in_new);
    if (!run.ok()) return run.status().WithContext("self-test");
    t_new = std::min(t_new, sw_new.ElapsedSeconds());
  }
  if (t_new > max_latency_ratio * t_old + 1e-3) {
    return Status::FailedPrecondition("self-test: " + std::to_string(t_new * 1e3) + " ms per frame vs " +
                                      std::to_string(t_old * 1e3) + " ms now");
  }
  return Status::Ok();
}

}  // namespace kd::edge
