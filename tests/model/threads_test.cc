#include "model/threads.h"

#include <set>
#include <thread>

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

namespace kd::model {
namespace {

// Distinct OpenMP threads that ran chunks of one parallel loop started by the calling thread.
int ThreadsUsedByAParallelLoop() {
  std::mutex mu;
  std::set<int> seen;
  at::parallel_for(0, 4096, /*grain_size=*/1, [&](int64_t, int64_t) {
    std::lock_guard lock(mu);
    seen.insert(at::get_thread_num());
  });
  return static_cast<int>(seen.size());
}

TEST(ThreadsTest, AThreadsOwnTeamSizeLeavesTheOtherThreadsAlone) {
  SetComputeThreads(2);
  int in_stage = 0, stage_loop = 0, fresh_thread = 0;
  std::thread stage([&] {
    SetThisThreadsComputeThreads(1);
    in_stage = at::get_num_threads();
    stage_loop = ThreadsUsedByAParallelLoop();
  });
  stage.join();
  EXPECT_EQ(in_stage, 1);
  EXPECT_EQ(stage_loop, 1);
  // Other threads keep SetComputeThreads' value: the main thread and a new one.
  EXPECT_EQ(at::get_num_threads(), 2);
  std::thread other([&] { fresh_thread = at::get_num_threads(); });
  other.join();
  EXPECT_EQ(fresh_thread, 2);
}

}  // namespace
}  // namespace kd::model
