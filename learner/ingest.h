// IngestStage: frames from the edges into the store, then the acknowledgement. Frames already
// waiting on the socket are stored with one synced write (group commit) and each gets an ACK, or an
// ERROR the edge acts on (STORAGE_FULL / STORAGE_ERROR: it keeps the frame and resends;
// OUT_OF_CREDIT: sent beyond the credit window). Hello and heartbeat are answered with credits
// (none while draining). Nothing is acknowledged before it is durable.
//
// Threading: Run() is the stage's thread and the only user of the frames socket; Handle* may be
// called from a test instead. Shares LoopState (under its mu, never across the store write).
#ifndef KD_LEARNER_INGEST_H_
#define KD_LEARNER_INGEST_H_

#include <atomic>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "learner/loop_state.h"
#include "storage/sample_store.h"
#include "wire/endpoint.h"

namespace kd::learner {

// A reply and the ROUTER peer it goes to.
struct Outgoing {
  std::string peer;
  wire::Message message;
};

class IngestStage {
 public:
  // At most this many frames per synced write, so the first frame's ack latency stays bounded.
  static constexpr size_t kMaxBatch = 256;

  // `on_stored` is called (without locks) after a write stored at least one frame: it wakes the
  // labeller. `draining` set: credits drop to zero.
  IngestStage(LoopState& state, storage::SampleStore& store, const Clock& clock, const std::atomic<bool>& draining,
              std::function<void()> on_stored);

  // Stores the frames of `batch` (all kFrame) with one write; the replies, in batch order.
  std::vector<Outgoing> StoreAndAck(const std::vector<wire::Incoming>& batch);
  // Hello/heartbeat (credits) and anything else that is not a frame.
  Outgoing HandleOther(const wire::Incoming& in);

  // Receives, batches what is already queued, stores and replies until `stopping`.
  void Run(wire::Server& frames, const std::atomic<bool>& stopping);

 private:
  uint32_t credits() const;

  LoopState& state_;
  storage::SampleStore& store_;
  const Clock& clock_;
  const std::atomic<bool>& draining_;
  std::function<void()> on_stored_;
};

}  // namespace kd::learner

#endif  // KD_LEARNER_INGEST_H_
