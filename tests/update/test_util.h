// Shared helpers of the update tests: tiny students and scratch directories.
#ifndef KD_TESTS_UPDATE_TEST_UTIL_H_
#define KD_TESTS_UPDATE_TEST_UTIL_H_

#include <filesystem>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

#include "model/student.h"

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
