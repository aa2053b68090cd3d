// ModelHolder: which RunningModel the edge runs now (`current`), which one the inference stage
// swaps in before its next frame (`pending`), and the last committed one (what a rollback returns
// to). The swap happens between two frames, never inside one, so no frame is skipped.
//
// Ownership: the agent owns the holder; models are immutable snapshots shared as
// shared_ptr<const RunningModel>. Threading: thread-safe; the lock covers pointer copies only
// (models are built and self-tested before they are handed over). The inference stage calls
// TakeForFrame; the updater calls Stage / RollBack / Commit.
#ifndef KD_EDGE_MODEL_HOLDER_H_
#define KD_EDGE_MODEL_HOLDER_H_

#include <cstdint>
#include <memory>
#include <mutex>

namespace kd::edge {

struct RunningModel;  // edge/running_model.h

class ModelHolder {
 public:
  // `current` is `committed` or a model on trial restored after a restart. REQUIRES: both non-null.
  ModelHolder(std::shared_ptr<const RunningModel> committed, std::shared_ptr<const RunningModel> current);
  ModelHolder(const ModelHolder&) = delete;
  ModelHolder& operator=(const ModelHolder&) = delete;

  // Inference, before each frame: swaps a pending model in, then returns the one to run.
  std::shared_ptr<const RunningModel> TakeForFrame();
  std::shared_ptr<const RunningModel> current() const;
  std::shared_ptr<const RunningModel> committed() const;
  // The current model when no swap is pending (what probation judges), else nullptr.
  std::shared_ptr<const RunningModel> Settled() const;
  // A swap is pending or the current model is on trial: no new update is started.
  bool Busy() const;
  uint64_t running_version() const;

  // The next model to run (swapped in before the next frame). REQUIRES: non-null.
  void Stage(std::shared_ptr<const RunningModel> next);
  // Back to the committed model before the next frame.
  void RollBack();
  // `kept` (the trial's weights, no longer on trial) becomes committed and runs from the next frame.
  void Commit(std::shared_ptr<const RunningModel> kept);

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const RunningModel> current_, pending_, committed_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_MODEL_HOLDER_H_
