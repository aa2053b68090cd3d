// UnackedBuffer: the frames the edge has uploaded (or is about to) but the learner has not yet
// acknowledged, so that they can be sent again after a timeout, a reconnect or a learner restart,
// until the learner acks them. Bounded: the uplink is lossy by design (selection already drops most
// frames), so at capacity the oldest frame is dropped and counted rather than blocking the camera;
// the newest frames are the most valuable to a continual learner.
// Ownership: the buffer owns the frames (JPEG bytes included). Threading: not thread-safe; owned by
// the edge's uplink thread.
#ifndef KD_EDGE_UNACKED_BUFFER_H_
#define KD_EDGE_UNACKED_BUFFER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace kd::edge {

struct PendingFrame {
  uint64_t seq = 0;  // uplink sequence number; strictly increasing across Push calls
  int64_t capture_time_us = 0;
  int width = 0, height = 0;  // of the JPEG
  float score = 0;            // the selector's interest score
  std::vector<uint8_t> jpeg;
  int64_t last_sent_us = 0;  // when TakeDue last handed it out; 0 = never (or since MarkAllUnsent)
  uint32_t attempts = 0;     // times TakeDue handed it out (not reset by MarkAllUnsent)
};

struct UnackedStats {
  uint64_t pushed = 0, acked = 0, dropped_oldest = 0, resent = 0, duplicate_acks = 0;
  uint64_t dropped_bytes = 0;  // JPEG bytes of the dropped_oldest frames
};

// A FIFO keyed by seq. At capacity (frames, or JPEG bytes when capacity_bytes > 0) Push drops the
// oldest frames, whether sent or not, until the new one fits; the newest frame is always kept, so
// a single frame larger than capacity_bytes empties the rest of the buffer and stays alone.
class UnackedBuffer {
 public:
  // capacity_frames >= 1 (0 is a bug: KD_CHECK). capacity_bytes: 0 = no byte bound.
  explicit UnackedBuffer(size_t capacity_frames, size_t capacity_bytes = 0);

  // Adds a frame as never sent (last_sent_us and attempts are reset). seq must be greater than every
  // seq pushed before (a bug otherwise: KD_CHECK), so the learner's acks can be matched exactly.
  void Push(PendingFrame frame);

  // Removes the frame. False when seq is not held (already acked, dropped, or never pushed), which
  // counts as a duplicate ack: the learner acks at least once, so duplicates are expected.
  bool Ack(uint64_t seq);

  // Up to `max` frames to (re)send now: first the frames not sent since they were pushed (or since
  // MarkAllUnsent), in seq order; then frames last sent at or before now_us - resend_after_us, the
  // longest-waiting first (ties by seq), so that under a persistent outage re-sends rotate over the
  // buffer instead of repeating the oldest few. Each returned frame is marked sent at now_us
  // (attempts++; resent++ when it had been handed out before).
  // The pointers stay valid until that frame leaves the buffer (Ack, or a Push that drops it); the
  // simple rule for callers: use them before the next Push or Ack.
  // At most `max_new` of them never sent before (a credit window limits new frames; re-sends of
  // frames already in flight do not grow it).
  std::vector<const PendingFrame*> TakeDue(int64_t now_us, int64_t resend_after_us, size_t max,
                                           size_t max_new = SIZE_MAX);

  // After a reconnect or a learner restart nothing in flight can be trusted to arrive: every frame
  // becomes due again on the next TakeDue, in seq order.
  void MarkAllUnsent();

  size_t size() const { return frames_.size(); }
  uint64_t bytes() const { return bytes_; }  // JPEG bytes held
  bool empty() const { return frames_.empty(); }
  // The lowest buffered seq. REQUIRES: !empty().
  uint64_t oldest_seq() const { return frames_.begin()->first; }
  // Frames sent at least once and not acknowledged yet (what a credit window counts).
  size_t in_flight() const {
    size_t n = 0;
    for (const auto& [seq, e] : frames_) n += e.sent ? 1 : 0;
    return n;
  }
  const UnackedStats& stats() const { return stats_; }

 private:
  struct Entry {
    PendingFrame frame;
    // "Sent" is a flag, not last_sent_us != 0, so a clock that starts at 0 (tests, fake clocks)
    // cannot make a sent frame look unsent.
    bool sent = false;
  };
  void DropOldest();

  size_t capacity_frames_;
  size_t capacity_bytes_;
  std::map<uint64_t, Entry> frames_;  // by seq; map nodes are stable, which TakeDue's pointers rely on
  uint64_t bytes_ = 0;
  bool pushed_any_ = false;
  uint64_t last_seq_ = 0;
  UnackedStats stats_;
};

}  // namespace kd::edge

#endif  // KD_EDGE_UNACKED_BUFFER_H_
