// Shared helpers of the update tests: tiny students and scratch directories.
#ifndef KD_TESTS_UPDATE_TEST_UTIL_H_
#define KD_TESTS_UPDATE_TEST_UTIL_H_

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "model/student.h"
#include "model/weights_file.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/tiny_student.h"

namespace kd::update::testing {

inline model::StudentOptions TinyOptions() { return kd::testing::TinyStudentOptions(); }

// The .kdw bytes of a tiny student whose weights are seeded by `version` (fp16).
inline std::vector<uint8_t> Kdw(uint64_t version) {
  torch::manual_seed(static_cast<uint64_t>(version));
  model::Student s(TinyOptions());
  auto bytes = model::EncodeWeights(*s, {version, version - 1, "test", 0}, model::WeightDtype::kF16);
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

// A whole file's bytes (empty when it cannot be read).
inline std::vector<uint8_t> ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), {}};
}

// Scratch directories are shared with the other tests (tests/support/scratch_dir.h).
using kd::testing::ScratchDir;

}  // namespace kd::update::testing

#endif  // KD_TESTS_UPDATE_TEST_UTIL_H_
