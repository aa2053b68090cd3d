#include "learner/weight_average.h"

#include <algorithm>
#include <string>

#include <torch/torch.h>

#include "base/check.h"

namespace kd::learner {
namespace {

// Parameters and buffers of the student by name, as update::StateOf lists them.
update::TensorMap Live(const model::StudentImpl& student) {
  update::TensorMap out;
  for (const auto& p : student.named_parameters(true)) out[p.key()] = p.value();
  for (const auto& b : student.named_buffers(true)) out[b.key()] = b.value();
  return out;
}

}  // namespace

WeightAverage::WeightAverage(const model::StudentImpl& student, double decay) : decay_(decay) {
  KD_CHECK_MSG(decay > 0 && decay < 1, "weight average decay " + std::to_string(decay) + " is not in (0, 1)");
  torch::NoGradGuard no_grad;
  for (const auto& [name, t] : Live(student)) average_[name] = t.detach().clone();
}

double WeightAverage::NextDecay() const {
  const double n = static_cast<double>(updates_);
  return std::min(decay_, (1 + n) / (10 + n));
}

void WeightAverage::Update(const model::StudentImpl& student) {
  torch::NoGradGuard no_grad;
  const double d = NextDecay();
  for (const auto& [name, t] : Live(student)) {
    auto it = average_.find(name);
    KD_CHECK_MSG(it != average_.end(), "the student gained tensor '" + name + "' after its average began");
    if (torch::isFloatingType(t.scalar_type())) {
      it->second.mul_(d).add_(t.detach(), 1 - d);  // avg = d * avg + (1 - d) * w
    } else {
      it->second.copy_(t);
    }
  }
  ++updates_;
}

update::TensorMap WeightAverage::State() const {
  update::TensorMap out;
  for (const auto& [name, t] : average_) out[name] = t.to(torch::kCPU).contiguous().clone();
  return out;
}

void WeightAverage::CopyTo(model::StudentImpl& student) const {
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : Live(student)) {
    auto it = average_.find(name);
    KD_CHECK_MSG(it != average_.end(), "the average lacks tensor '" + name + "'");
    t.copy_(it->second);
  }
}

}  // namespace kd::learner
