// The POSIX FileSystem behind the seam: kinds of errors, forced permissions, atomic writes.
#include "base/file_system.h"

#include <algorithm>
#include <filesystem>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace kd {
namespace {
namespace fs = std::filesystem;

class FileSystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("kd_fs_test_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    ASSERT_TRUE(fs_.CreateDirs(dir_ + "/a/b").ok());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
  FileSystem& fs_ = FileSystem::Default();
};

TEST_F(FileSystemTest, MissingFilesAreNotFoundAndRemovingThemIsOk) {
  EXPECT_TRUE(fs_.ReadFile(dir_ + "/none").status().IsNotFound());
  EXPECT_TRUE(fs_.FileSize(dir_ + "/none").status().IsNotFound());
  EXPECT_TRUE(fs_.Remove(dir_ + "/none").ok());
  EXPECT_FALSE(fs_.OpenWritable(dir_ + "/no/such/dir/f", FileSystem::OpenMode::kTruncate, 0644).ok());
}

TEST_F(FileSystemTest, AtomicWriteReplacesWholeFilesWithForcedPermissions) {
  const std::string path = dir_ + "/a/key";
  const std::vector<uint8_t> first(100, 1), second(7, 2);
  ASSERT_TRUE(WriteFileAtomic(fs_, path, first, 0644).ok());
  // A stale temp file with loose permissions must not leak them to a secret written after it.
  ASSERT_TRUE(fs_.OpenWritable(path + ".tmp", FileSystem::OpenMode::kTruncate, 0666).ok());
  ::chmod((path + ".tmp").c_str(), 0666);
  ASSERT_TRUE(WriteFileAtomic(fs_, path, second, 0600).ok());
  EXPECT_EQ(*fs_.ReadFile(path), second);
  EXPECT_EQ(*fs_.FileSize(path), 7u);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  auto names = fs_.ListDir(dir_ + "/a");
  ASSERT_TRUE(names.ok());
  std::sort(names->begin(), names->end());
  EXPECT_EQ(*names, (std::vector<std::string>{"b", "key"}));
}

TEST_F(FileSystemTest, AppendTruncateAndSync) {
  const std::string path = dir_ + "/log";
  auto f = fs_.OpenWritable(path, FileSystem::OpenMode::kAppend, 0644);
  ASSERT_TRUE(f.ok());
  const std::vector<uint8_t> bytes(10, 9);
  ASSERT_TRUE((*f)->Append(bytes).ok());
  ASSERT_TRUE((*f)->Append(bytes).ok());
  ASSERT_TRUE((*f)->Truncate(15).ok());
  ASSERT_TRUE((*f)->Sync().ok());
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(*fs_.FileSize(path), 15u);
  ASSERT_TRUE(fs_.Rename(path, path + "2").ok());
  EXPECT_TRUE(fs_.FileSize(path).status().IsNotFound());
  EXPECT_TRUE(fs_.SyncDir(dir_).ok());
  EXPECT_EQ(DirName("x"), ".");
  EXPECT_EQ(DirName("/a/b/c"), "/a/b");
}

// Truncate undoes a partial append in both open modes: the next append continues at the cut, with
// no hole (a kTruncate file is written at its offset, which the cut must move back too).
TEST_F(FileSystemTest, AnAppendAfterTruncateContinuesAtTheCut) {
  for (const auto mode : {FileSystem::OpenMode::kTruncate, FileSystem::OpenMode::kAppend}) {
    const std::string path = dir_ + (mode == FileSystem::OpenMode::kTruncate ? "/cut-t" : "/cut-a");
    auto f = fs_.OpenWritable(path, mode, 0644);
    ASSERT_TRUE(f.ok());
    const std::string first = "abcdef", second = "xy";
    ASSERT_TRUE((*f)->Append({reinterpret_cast<const uint8_t*>(first.data()), first.size()}).ok());
    ASSERT_TRUE((*f)->Truncate(2).ok());
    ASSERT_TRUE((*f)->Append({reinterpret_cast<const uint8_t*>(second.data()), second.size()}).ok());
    ASSERT_TRUE((*f)->Close().ok());
    auto bytes = fs_.ReadFile(path);
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(std::string(bytes->begin(), bytes->end()), "abxy");
  }
}

}  // namespace
}  // namespace kd
