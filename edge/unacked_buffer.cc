#include "edge/unacked_buffer.h"

#include <algorithm>
#include <string>
#include <utility>

#include "base/check.h"

namespace kd::edge {

UnackedBuffer::UnackedBuffer(size_t capacity_frames, size_t capacity_bytes)
    : capacity_frames_(capacity_frames), capacity_bytes_(capacity_bytes) {
  KD_CHECK_MSG(capacity_frames_ > 0, "UnackedBuffer needs room for at least one frame");
}

void UnackedBuffer::Push(PendingFrame frame) {
  KD_CHECK_MSG(!pushed_any_ || frame.seq > last_seq_,
               "UnackedBuffer::Push: seq " + std::to_string(frame.seq) + " after " + std::to_string(last_seq_));
  pushed_any_ = true;
  last_seq_ = frame.seq;
  frame.last_sent_us = 0;
  frame.attempts = 0;
  const uint64_t seq = frame.seq;
  bytes_ += frame.jpeg.size();
  frames_.emplace(seq, Entry{std::move(frame), false});
  ++stats_.pushed;
  // The new frame has the largest seq, so it is the last to go: it always stays.
  while (frames_.size() > capacity_frames_) DropOldest();
  while (capacity_bytes_ > 0 && bytes_ > capacity_bytes_ && frames_.size() > 1) DropOldest();
}

void UnackedBuffer::DropOldest() {
  auto it = frames_.begin();
  const size_t n = it->second.frame.jpeg.size();
  bytes_ -= n;
  stats_.dropped_bytes += n;
  ++stats_.dropped_oldest;
  frames_.erase(it);
}

bool UnackedBuffer::Ack(uint64_t seq) {
  auto it = frames_.find(seq);
  if (it == frames_.end()) {
    ++stats_.duplicate_acks;
    return false;
  }
  bytes_ -= it->second.frame.jpeg.size();
  frames_.erase(it);
  ++stats_.acked;
  return true;
}

std::vector<const PendingFrame*> UnackedBuffer::TakeDue(int64_t now_us, int64_t resend_after_us, size_t max,
                                                        size_t max_new) {
  std::vector<Entry*> due;
  for (auto& [seq, e] : frames_) {
    if (due.size() == std::min(max, max_new)) break;
    if (!e.sent) due.push_back(&e);
  }
  if (due.size() < max) {
    std::vector<Entry*> overdue;
    for (auto& [seq, e] : frames_) {
      // Written as a difference so a huge resend_after_us cannot overflow now_us - resend_after_us.
      if (e.sent && now_us - e.frame.last_sent_us >= resend_after_us) overdue.push_back(&e);
    }
    const size_t take = std::min(max - due.size(), overdue.size());
    std::partial_sort(overdue.begin(), overdue.begin() + static_cast<std::ptrdiff_t>(take), overdue.end(),
                      [](const Entry* a, const Entry* b) {
                        if (a->frame.last_sent_us != b->frame.last_sent_us) {
                          return a->frame.last_sent_us < b->frame.last_sent_us;
                        }
                        return a->frame.seq < b->frame.seq;
                      });
    due.insert(due.end(), overdue.begin(), overdue.begin() + static_cast<std::ptrdiff_t>(take));
  }
  std::vector<const PendingFrame*> out;
  out.reserve(due.size());
  for (Entry* e : due) {
    if (e->frame.attempts > 0) ++stats_.resent;
    ++e->frame.attempts;
    e->frame.last_sent_us = now_us;
    e->sent = true;
    out.push_back(&e->frame);
  }
  return out;
}

void UnackedBuffer::MarkAllUnsent() {
  for (auto& [seq, e] : frames_) {
    e.sent = false;
    e.frame.last_sent_us = 0;
  }
}

}  // namespace kd::edge
