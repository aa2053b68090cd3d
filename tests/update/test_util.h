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

namespace kd::update::testing {

// A student small enough that every test runs in milliseconds (a few thousand parameters).
inline model::StudentOptions TinyOptions() {
  model::StudentOptions o;
  o.width = 8;
  o.head_channels = 16;
  o.labels = {0, 2};
  o.input_width = 64;
  o.input_height = 64;
  return o;
}

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

// A fresh, empty directory under the system temp dir, removed on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = (std::filesystem::temp_directory_path() / ("kd_update_" + std::string(info->test_suite_name()) + "_" +
                                                       info->name() + "_" + std::to_string(::getpid())))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

}  // namespace kd::update::testing

#endif  // KD_TESTS_UPDATE_TEST_UTIL_H_
