// The fixed base state of the delta fuzz target, shared with fuzz/write_seeds.cc (the seeds are
// deltas made against exactly this state, so that mutations get past the base-digest check).
// Small on purpose: a 2x3 conv-like weight, a bias, BN statistics and a step counter.
// Header-only; pure functions (thread-safe).
#ifndef KD_FUZZ_DELTA_BASE_H_
#define KD_FUZZ_DELTA_BASE_H_

#include <set>
#include <string>

#include <torch/torch.h>

#include "update/state.h"

namespace kd::fuzz {

inline update::TensorMap DeltaBase() {
  update::TensorMap base;
  base["conv.weight"] = torch::arange(6, torch::kFloat).reshape({2, 3}) * 0.125f - 0.25f;
  base["conv.bias"] = torch::tensor({0.5f, -0.5f});
  base["bn.running_mean"] = torch::tensor({0.0f, 1.0f});
  base["bn.running_var"] = torch::tensor({1.0f, 2.0f});
  base["bn.num_batches_tracked"] = torch::tensor(7, torch::kLong);
  return base;
}

inline std::set<std::string> DeltaParameterNames() { return {"conv.weight", "conv.bias"}; }

}  // namespace kd::fuzz

#endif  // KD_FUZZ_DELTA_BASE_H_
