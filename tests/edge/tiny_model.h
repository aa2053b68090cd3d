// A running model of a tiny student (tests/support/tiny_student.h) seeded by its version: for the
// edge stage tests that need a model that really runs (inference, self-test, probation). Test code
// only.
#ifndef KD_TESTS_EDGE_TINY_MODEL_H_
#define KD_TESTS_EDGE_TINY_MODEL_H_

#include <cstdint>
#include <memory>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "edge/running_model.h"
#include "tests/support/tiny_student.h"

namespace kd::edge::testing {

inline std::shared_ptr<const RunningModel> TinyRunningModel(uint64_t version, bool trial) {
  torch::manual_seed(version);
  model::Student s(kd::testing::TinyStudentOptions());
  s->eval();
  auto m = BuildRunningModel(*s, version, trial);
  EXPECT_TRUE(m.ok());
  return *m;
}

}  // namespace kd::edge::testing

#endif  // KD_TESTS_EDGE_TINY_MODEL_H_
