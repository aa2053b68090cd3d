// BoundedQueue: the hand-off between two edge stages (capture -> inference -> uplink).
//
// A FIFO of at most `capacity` items. Push either blocks until there is room (a file source: every
// frame is inferred) or drops the oldest items to make room (a live camera: the newest frame wins,
// so inference never falls ever further behind). Close() wakes everyone: Push then refuses, Pop
// drains what is left and then returns nullopt.
// Ownership: items are moved in and out. Threading: every method is thread-safe; the lock is held
// only to move an item, never while waiting on anything but the queue itself.
#ifndef KD_EDGE_BOUNDED_QUEUE_H_
#define KD_EDGE_BOUNDED_QUEUE_H_

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>

#include "base/check.h"

namespace kd::edge {

template <typename T>
class BoundedQueue {
 public:
  // REQUIRES: capacity >= 1.
  explicit BoundedQueue(size_t capacity) : capacity_(capacity) { KD_CHECK(capacity >= 1); }
  BoundedQueue(const BoundedQueue&) = delete;
  BoundedQueue& operator=(const BoundedQueue&) = delete;

  // Appends `item`. block = true waits for room; false drops the oldest items instead. Returns the
  // number of items dropped to make room (0 when blocking), or 1 when the queue was closed while
  // waiting (the item itself is dropped).
  size_t Push(T item, bool block) {
    std::unique_lock lock(mu_);
    size_t dropped = 0;
    if (block) {
      not_full_.wait(lock, [&] { return closed_ || q_.size() < capacity_; });
      if (closed_) return 1;
    } else {
      while (q_.size() >= capacity_) q_.pop_front(), ++dropped;
    }
    q_.push_back(std::move(item));
    not_empty_.notify_one();
    return dropped;
  }

  // The oldest item; nullopt when closed and empty, or when nothing came within `timeout`.
  std::optional<T> Pop(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!not_empty_.wait_for(lock, timeout, [&] { return closed_ || !q_.empty(); })) return std::nullopt;
    if (q_.empty()) return std::nullopt;
    T item = std::move(q_.front());
    q_.pop_front();
    not_full_.notify_one();
    return item;
  }

  // Idempotent. Items already queued can still be popped.
  void Close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
    not_full_.notify_all();
  }

  bool closed_and_empty() const {
    std::lock_guard lock(mu_);
    return closed_ && q_.empty();
  }
  size_t size() const {
    std::lock_guard lock(mu_);
    return q_.size();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<T> q_;
  const size_t capacity_;
  bool closed_ = false;
};

}  // namespace kd::edge

#endif  // KD_EDGE_BOUNDED_QUEUE_H_
