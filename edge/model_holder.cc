#include "edge/model_holder.h"

#include "base/check.h"
#include "edge/running_model.h"

namespace kd::edge {

ModelHolder::ModelHolder(std::shared_ptr<const RunningModel> committed, std::shared_ptr<const RunningModel> current)
    : current_(std::move(current)), committed_(std::move(committed)) {
  KD_CHECK(current_ != nullptr && committed_ != nullptr);
}

std::shared_ptr<const RunningModel> ModelHolder::TakeForFrame() {
  std::lock_guard lock(mu_);
  if (pending_) current_ = std::move(pending_), pending_.reset();
  return current_;
}

std::shared_ptr<const RunningModel> ModelHolder::current() const {
  std::lock_guard lock(mu_);
  return current_;
}

std::shared_ptr<const RunningModel> ModelHolder::committed() const {
  std::lock_guard lock(mu_);
  return committed_;
}

std::shared_ptr<const RunningModel> ModelHolder::Settled() const {
  std::lock_guard lock(mu_);
  return pending_ ? nullptr : current_;
}

bool ModelHolder::Busy() const {
  std::lock_guard lock(mu_);
  return pending_ != nullptr || current_->trial;
}

uint64_t ModelHolder::running_version() const {
  std::lock_guard lock(mu_);
  return current_->version;
}

void ModelHolder::Stage(std::shared_ptr<const RunningModel> next) {
  KD_CHECK(next != nullptr);
  std::lock_guard lock(mu_);
  pending_ = std::move(next);
}

void ModelHolder::RollBack() {
  std::lock_guard lock(mu_);
  pending_ = committed_;
}

void ModelHolder::Commit(std::shared_ptr<const RunningModel> kept) {
  KD_CHECK(kept != nullptr);
  std::lock_guard lock(mu_);
  committed_ = kept;
  pending_ = std::move(kept);
}

}  // namespace kd::edge
