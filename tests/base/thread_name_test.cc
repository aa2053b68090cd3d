#include "base/thread_name.h"

#include <fstream>
#include <string>
#include <thread>
#include <unistd.h>

#include <gtest/gtest.h>

namespace kd {
namespace {

TEST(ThreadNameTest, ANameIsPerThreadAndVisibleInProc) {
  const std::string main_name = CurrentThreadName();
  std::string seen, in_proc;
  std::thread worker([&] {
    SetCurrentThreadName("ingest");
    seen = CurrentThreadName();
    std::ifstream comm("/proc/self/task/" + std::to_string(::gettid()) + "/comm");
    std::getline(comm, in_proc);
  });
  worker.join();
  EXPECT_EQ(seen, "ingest");
  EXPECT_EQ(in_proc, "ingest");
  EXPECT_EQ(CurrentThreadName(), main_name);
}

TEST(ThreadNameTest, ALongNameIsCutToTheKernelsFifteenBytes) {
  std::string seen;
  std::thread worker([&] {
    SetCurrentThreadName("a-name-much-longer-than-fifteen-bytes");
    seen = CurrentThreadName();
  });
  worker.join();
  EXPECT_EQ(seen, "a-name-much-lon");
}

}  // namespace
}  // namespace kd
