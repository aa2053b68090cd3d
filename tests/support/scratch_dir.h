// ScratchDir: a fresh, empty directory per test under the system temp dir (named after the test and
// the process), removed on destruction. Test code only.
#ifndef KD_TESTS_SUPPORT_SCRATCH_DIR_H_
#define KD_TESTS_SUPPORT_SCRATCH_DIR_H_

#include <filesystem>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>

namespace kd::testing {

class ScratchDir {
 public:
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path_ = (std::filesystem::temp_directory_path() /
             ("kd_" + std::string(info->test_suite_name()) + "_" + info->name() + "_" + std::to_string(::getpid())))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (std::filesystem::path(path_) / name).string(); }

 private:
  std::string path_;
};

}  // namespace kd::testing

#endif  // KD_TESTS_SUPPORT_SCRATCH_DIR_H_
