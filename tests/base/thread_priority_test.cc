#include "base/thread_priority.h"

#include <thread>

#include <gtest/gtest.h>

namespace kd {
namespace {

TEST(ThreadPriorityTest, NiceIsPerThreadAndInheritedByThreadsStartedAfter) {
  const int main_nice = CurrentThreadNice();
  int set_to = -1, child_saw = -1;
  std::thread worker([&] {
    ASSERT_TRUE(SetCurrentThreadNice(19).ok());
    set_to = CurrentThreadNice();
    std::thread child([&] { child_saw = CurrentThreadNice(); });  // as LibTorch's OpenMP workers
    child.join();
  });
  worker.join();
  EXPECT_EQ(set_to, 19);
  EXPECT_EQ(child_saw, 19);
  EXPECT_EQ(CurrentThreadNice(), main_nice);  // the rest of the process keeps its priority
}

TEST(ThreadPriorityTest, IdlePolicyIsPerThreadAndInheritedByThreadsStartedAfter) {
  ASSERT_FALSE(CurrentThreadIsIdle());
  bool set = false, child_saw = false;
  std::thread worker([&] {
    ASSERT_TRUE(SetCurrentThreadIdle().ok());
    set = CurrentThreadIsIdle();
    std::thread child([&] { child_saw = CurrentThreadIsIdle(); });  // as LibTorch's OpenMP workers
    child.join();
  });
  worker.join();
  EXPECT_TRUE(set);
  EXPECT_TRUE(child_saw);
  EXPECT_FALSE(CurrentThreadIsIdle());  // the rest of the process keeps its policy
}

TEST(ThreadPriorityTest, OutOfRangeIsInvalidArgument) {
  EXPECT_EQ(SetCurrentThreadNice(-1).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(SetCurrentThreadNice(20).code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace kd
