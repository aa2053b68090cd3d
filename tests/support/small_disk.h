// SmallDisk: a tmpfs of a few MiB mounted for one test, so that a disk really fills (ENOSPC from
// the kernel, not a budget) and can grow back (remount). Needs root and mount(8); mounted() says
// whether it worked, and tests skip with a clear message when it did not. Unmounted (lazily) by the
// destructor. Not thread-safe.
#ifndef KD_TESTS_SUPPORT_SMALL_DISK_H_
#define KD_TESTS_SUPPORT_SMALL_DISK_H_

#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>

namespace kd::testing {

class SmallDisk {
 public:
  SmallDisk(const std::string& dir, int mib) : dir_(dir) {
    std::filesystem::create_directories(dir_);
    mounted_ = ::geteuid() == 0 && Mount("size=" + std::to_string(mib) + "m");
  }
  ~SmallDisk() {
    if (mounted_) (void)std::system(("umount -l '" + dir_ + "' 2>/dev/null").c_str());
  }
  SmallDisk(const SmallDisk&) = delete;
  SmallDisk& operator=(const SmallDisk&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& dir() const { return dir_; }
  // Resizes the mounted tmpfs (space comes back, or goes).
  bool Resize(int mib) { return Mount("remount,size=" + std::to_string(mib) + "m"); }

 private:
  bool Mount(const std::string& options) {
    return std::system(("mount -t tmpfs -o " + options + " kd_test_tmpfs '" + dir_ + "' 2>/dev/null").c_str()) == 0;
  }
  std::string dir_;
  bool mounted_ = false;
};

}  // namespace kd::testing

#endif  // KD_TESTS_SUPPORT_SMALL_DISK_H_
