// The edge's running model: an immutable snapshot (version, architecture, fused weights, the state a
// delta applies to) that the inference thread runs while the control thread prepares the next one,
// and the self-test a new model passes before it may run on camera frames.
//
// Which head is read (one-to-many or one-to-one) follows the model's architecture, through
// model::ForwardChecked; nothing here lets a LibTorch exception escape: a failure is a Status.
// Thread-safety: a RunningModel is immutable after construction and shared as
// shared_ptr<const RunningModel>; the functions are thread-safe.
#ifndef KD_EDGE_RUNNING_MODEL_H_
#define KD_EDGE_RUNNING_MODEL_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <torch/types.h>

#include "base/clock.h"
#include "base/status.h"
#include "media/frame.h"
#include "model/student.h"

namespace kd::edge {

struct RunningModel {
  uint64_t version = 0;
  bool trial = false;  // on probation: not yet committed
  model::StudentOptions arch;
  std::shared_ptr<const model::FusedStudent> fused;
  // The parameters and buffers by name (update::TensorMap), what a delta applies to.
  std::shared_ptr<const std::map<std::string, torch::Tensor>> state;
};

// Makes the runnable snapshot of a decoded student (folds its batch norms). The agent takes one as
// a seam; the default is BuildRunningModel. A builder may refuse a model (a Status).
using ModelBuilder =
    std::function<Result<std::shared_ptr<const RunningModel>>(const model::StudentImpl&, uint64_t version, bool trial)>;
Result<std::shared_ptr<const RunningModel>> BuildRunningModel(const model::StudentImpl& student, uint64_t version,
                                                              bool trial);

// What the agent takes from outside besides its options. Defaults are the production parts.
struct EdgeSeams {
  ModelBuilder build_model = BuildRunningModel;
  // The clock that times inference (probation's latency check) and the self-test; nullptr =
  // SystemClock. Not owned; must outlive the agent. Tests make a model look slow with it.
  const Clock* inference_clock = nullptr;
  // Every other time of the agent (status, probation's minimum time, backoff, rate meters,
  // timestamps); nullptr = SystemClock. Not owned; must outlive the agent.
  const Clock* clock = nullptr;
};

// Loads a .kdw file and builds it with `build`, then checks it can run (model::CheckDeployable):
// a model that cannot is refused here, before it reaches a camera frame.
Result<std::shared_ptr<const RunningModel>> LoadRunningModel(const std::string& path, uint64_t version, bool trial,
                                                             const ModelBuilder& build);

// A frame resized to the model's input: [1,3,h,w] uint8 RGB.
torch::Tensor ModelInput(const media::Frame& frame, const model::StudentOptions& arch);

// The self-test of a new model against the running one, on `frame` (the latest camera frame or a
// mid-grey one), before it is staged: a successful forward with the head its architecture names,
// the same output shapes as the running model's, finite values, and a latency no worse than
// `max_latency_ratio` x the running model's + 1 ms (the edge passes update.max_latency_ratio),
// both models timed on `clock` in alternation after a warm-up, best of 5 each. Errors:
// kFailedPrecondition (a refusal, with the reason) or kInternal (LibTorch threw).
Status SelfTest(const RunningModel& next, const RunningModel& running, const media::Frame& frame,
                double max_latency_ratio, const Clock& clock = SystemClock::Get());

}  // namespace kd::edge

#endif  // KD_EDGE_RUNNING_MODEL_H_
