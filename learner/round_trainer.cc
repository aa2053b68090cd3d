#include "learner/round_trainer.h"

#include <algorithm>
#include <random>

#include <torch/cuda.h>

#include "base/clock.h"
#include "learner/distiller.h"

namespace kd::learner {

struct RoundTrainer::GroupTrainer {
  model::Student student{nullptr};
  std::unique_ptr<Distiller> distiller;
  uint64_t rounds = 0;
  uint64_t token = 0;
  uint64_t anchor = 0;  // the version sparse rounds are anchored at (0 = dense)
};

torch::Device PickTrainingDevice(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) == 0) return torch::Device(name);
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

RoundTrainer::RoundTrainer(const model::CenterNetTeacher& teacher, torch::Device device, config::DistillOptions recipe)
    : teacher_(teacher), device_(device), recipe_(std::move(recipe)) {}

RoundTrainer::~RoundTrainer() = default;

void RoundTrainer::Forget(const std::string& group) { trainers_.erase(group); }

Result<TrainedRound> RoundTrainer::Train(const std::string& group, const DistillDataset& data, const RoundStart& start,
                                         const RoundSettings& settings, const std::function<void(double)>& on_step,
                                         const std::atomic<bool>& stopping) {
  if (data.size() == 0) return Status::FailedPrecondition("group " + group + ": no frames for the round");
  std::shared_ptr<GroupTrainer>& trainer = trainers_[group];
  if (trainer && trainer->token != start.token) trainer.reset();
  if (!trainer) {
    auto fresh = std::make_shared<GroupTrainer>();
    fresh->token = start.token;
    if (start.arch && start.state) {
      fresh->student = model::Student(*start.arch);
      KD_RETURN_IF_ERROR(update::LoadState(*fresh->student, *start.state).WithContext("group " + group));
    } else {
      auto so = StudentOptionsFor(recipe_, data);
      if (!so.ok()) {
        trainers_.erase(group);
        return so.status().WithContext("group " + group);
      }
      fresh->student = model::Student(*so);
    }
    config::DistillOptions r = recipe_;
    r.batch_size = std::min<int>(r.batch_size, static_cast<int>(data.size()));
    fresh->distiller = std::make_unique<Distiller>(r, fresh->student, teacher_, device_);
    fresh->distiller->SetContinual(r.continual_lr_scale);
    trainer = fresh;
  }
  if (settings.update_fraction < 1 && start.anchor != 0 && start.state && start.anchor != trainer->anchor) {
    // A new deployed version: train from what devices run, with a fresh choice of coordinates.
    KD_RETURN_IF_ERROR(update::LoadState(*trainer->student, *start.state).WithContext("group " + group));
    // The probe: a third of the round trains every coordinate before the round's are chosen.
    trainer->distiller->AnchorSparse(settings.update_fraction, std::max(1, settings.iterations / 3));
    trainer->anchor = start.anchor;
  } else if (settings.update_fraction >= 1 && trainer->anchor != 0) {
    trainer->distiller->AnchorSparse(1.0, 0);  // sparse rounds turned off
    trainer->anchor = 0;
  }
  const model::StudentOptions& arch = trainer->student->options();
  if (data.student_width != arch.input_width || data.student_height != arch.input_height) {
    return Status::FailedPrecondition("group " + group + ": frames do not match the student's input size");
  }
  TrainedRound out;
  Stopwatch sw;
  std::mt19937_64 rng(settings.seed + trainer->rounds);
  std::uniform_int_distribution<size_t> pick(0, data.size() - 1);
  const size_t bs = std::min<size_t>(static_cast<size_t>(recipe_.batch_size), data.size());
  double loss_sum = 0;
  for (int i = 0; i < settings.iterations && !stopping; ++i) {
    std::vector<size_t> rows;
    while (rows.size() < bs) rows.push_back(pick(rng));
    Stopwatch step_watch;
    auto st = trainer->distiller->Step(data, rows);
    if (!st.skipped && st.losses.count("total")) loss_sum += st.losses["total"], ++out.steps;
    if (on_step) on_step(step_watch.ElapsedSeconds());
  }
  out.round = ++trainer->rounds;
  out.frames = data.size();
  out.loss = out.steps ? loss_sum / out.steps : 0.0;
  out.seconds = sw.ElapsedSeconds();
  out.stopped = stopping.load();
  out.arch = arch;
  trainer->student->eval();
  out.state = trainer->distiller->TrainedState();  // the weight average when the recipe keeps one
  out.parameter_names = update::ParameterNames(*trainer->student);
  return out;
}

}  // namespace kd::learner
