#include "edge/bounded_queue.h"

#include <chrono>
#include <future>
#include <thread>

#include <gtest/gtest.h>

namespace kd::edge {
namespace {

using std::chrono::milliseconds;

TEST(BoundedQueueTest, DropOldestKeepsTheNewestAndCountsDrops) {
  BoundedQueue<int> q(2);
  EXPECT_EQ(q.Push(1, /*block=*/false), 0u);
  EXPECT_EQ(q.Push(2, false), 0u);
  EXPECT_EQ(q.Push(3, false), 1u);  // 1 goes
  EXPECT_EQ(q.size(), 2u);
  EXPECT_EQ(q.Pop(milliseconds(0)), 2);
  EXPECT_EQ(q.Pop(milliseconds(0)), 3);
  EXPECT_EQ(q.Pop(milliseconds(10)), std::nullopt);  // timeout, not closed
  EXPECT_FALSE(q.closed_and_empty());
}

TEST(BoundedQueueTest, BlockingPushWaitsForRoom) {
  BoundedQueue<int> q(1);
  ASSERT_EQ(q.Push(1, /*block=*/true), 0u);
  auto pushed = std::async(std::launch::async, [&] { return q.Push(2, true); });
  EXPECT_EQ(pushed.wait_for(milliseconds(100)), std::future_status::timeout);  // full: it waits
  EXPECT_EQ(q.Pop(milliseconds(0)), 1);
  EXPECT_EQ(pushed.get(), 0u);  // nothing dropped
  EXPECT_EQ(q.Pop(milliseconds(1000)), 2);
}

TEST(BoundedQueueTest, CloseWakesABlockedPushAndDrainsBeforeEnding) {
  BoundedQueue<int> q(1);
  ASSERT_EQ(q.Push(7, true), 0u);
  auto pushed = std::async(std::launch::async, [&] { return q.Push(8, true); });
  std::this_thread::sleep_for(milliseconds(50));
  q.Close();
  EXPECT_EQ(pushed.get(), 1u);  // refused: the item is dropped
  EXPECT_FALSE(q.closed_and_empty());
  EXPECT_EQ(q.Pop(milliseconds(0)), 7);  // what was queued still comes out
  EXPECT_TRUE(q.closed_and_empty());
  EXPECT_EQ(q.Pop(milliseconds(1000)), std::nullopt);  // closed and empty: at once
}

TEST(BoundedQueueTest, CloseWakesAWaitingPop) {
  BoundedQueue<int> q(4);
  auto popped = std::async(std::launch::async, [&] { return q.Pop(std::chrono::seconds(30)); });
  std::this_thread::sleep_for(milliseconds(50));
  q.Close();
  ASSERT_EQ(popped.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(popped.get(), std::nullopt);
}

}  // namespace
}  // namespace kd::edge
