#include "learner/ingest.h"

#include <algorithm>
#include <chrono>
#include <map>

#include "base/log.h"

namespace kd::learner {
using std::chrono::milliseconds;

IngestStage::IngestStage(LoopState& state, storage::SampleStore& store, const Clock& clock,
                         const std::atomic<bool>& draining, std::function<void()> on_stored)
    : state_(state), store_(store), clock_(clock), draining_(draining), on_stored_(std::move(on_stored)) {}

uint32_t IngestStage::credits() const { return draining_ ? 0u : static_cast<uint32_t>(state_.options.server.credits); }

void IngestStage::Run(wire::Server& frames, const std::atomic<bool>& stopping) {
  std::vector<wire::Incoming> batch;
  while (!stopping) {
    state_.beats.ingest.Beat();
    auto in = frames.Receive(milliseconds(100));
    if (!in.ok()) {
      if (stopping) break;
      KD_LOG(kWarn) << "ingest: " << in.status().ToString();
      continue;
    }
    if (!*in) continue;
    batch.clear();
    for (;;) {
      if ((*in)->message.header.type == wire::MsgType::kFrame) {
        batch.push_back(std::move(**in));
      } else {
        const Outgoing reply = HandleOther(**in);
        (void)frames.Send(reply.peer, reply.message);
      }
      if (batch.size() >= kMaxBatch) break;
      in = frames.Receive(milliseconds(0));  // only what is already here: never wait to fill a batch
      if (!in.ok() || !*in) break;
    }
    if (batch.empty()) continue;
    for (const Outgoing& reply : StoreAndAck(batch)) (void)frames.Send(reply.peer, reply.message);
  }
}

Outgoing IngestStage::HandleOther(const wire::Incoming& in) {
  const auto& h = in.message.header;
  if (h.type == wire::MsgType::kHello || h.type == wire::MsgType::kHeartbeat) {
    const int64_t now = clock_.WallMicros();
    {
      std::lock_guard lock(state_.mu);
      state_.Device(h.device_id).last_seen_us = now;
    }
    auto r = ReplyTo(h, h.type == wire::MsgType::kHello ? wire::MsgType::kCredit : wire::MsgType::kHeartbeat, now);
    r.header.credits = credits();
    return {in.peer, std::move(r)};
  }
  {
    std::lock_guard lock(state_.mu);
    ++state_.frames_rejected;
  }
  return {in.peer, wire::MakeError(h, wire::ErrorCode::kBadHeader,
                                   std::string("unexpected on the frames socket: ") + wire::MsgTypeName(h.type))};
}

std::vector<Outgoing> IngestStage::StoreAndAck(const std::vector<wire::Incoming>& batch) {
  const uint32_t granted = credits();
  const auto window = static_cast<uint32_t>(state_.options.server.credits);
  // Credits are a window of un-acknowledged frames per device. Every frame of this batch is
  // un-acknowledged until its write returns, so a device with more than its window in one batch
  // sent beyond its credits: those frames get OUT_OF_CREDIT (not stored, not acked; the edge keeps
  // and resends them).
  std::map<std::string, uint32_t> in_window;
  std::vector<storage::FrameRef> records;  // borrow the received payloads: one copy, into the write batch
  std::vector<size_t> record_of(batch.size(), SIZE_MAX);
  const int64_t now = clock_.WallMicros();
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& h = batch[i].message.header;
    if (++in_window[h.device_id] > window) continue;
    const std::string& payload = batch[i].message.payload;
    record_of[i] = records.size();
    records.push_back({.device_id = h.device_id,
                       .seq = h.seq,
                       .capture_time_us = h.capture_time_us,
                       .received_time_us = now,
                       .jpeg = {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}});
  }
  const std::vector<storage::SampleStore::PutResult> results = store_.PutFrames(records);  // the one sync
  state_.pressure.Stored(static_cast<uint64_t>(
      std::count_if(results.begin(), results.end(), [](const auto& r) { return r.status.ok(); })));
  {
    std::lock_guard lock(state_.mu);
    ++state_.ingest_writes;
    state_.ingest_batched_frames += records.size();
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto& h = batch[i].message.header;
      DeviceInfo& d = state_.Device(h.device_id);
      d.last_seen_us = now;
      d.uplink_bytes += batch[i].message.payload.size();
      if (record_of[i] == SIZE_MAX) {
        ++d.frames_out_of_credit;
        continue;
      }
      const auto& r = results[record_of[i]];
      if (r.status.ok()) {
        ++(r.duplicate ? d.frames_duplicate : d.frames_stored);
        if (!r.duplicate && h.seq > state_.label_wm[h.device_id]) ++d.frames_unlabelled;
        ++state_.frames_received;
      } else {
        ++d.store_errors;
      }
    }
  }
  std::vector<Outgoing> replies;
  replies.reserve(batch.size());
  bool stored_any = false;
  for (size_t i = 0; i < batch.size(); ++i) {
    const auto& h = batch[i].message.header;
    const std::string& peer = batch[i].peer;
    if (record_of[i] == SIZE_MAX) {
      replies.push_back({peer, wire::MakeError(h, wire::ErrorCode::kOutOfCredit,
                                               "more than " + std::to_string(granted) + " frames un-acknowledged")});
      continue;
    }
    const Status& st = results[record_of[i]].status;
    if (!st.ok()) {
      // No ack: the edge keeps the frame and resends it once we can store again.
      KD_LOG(kWarn) << "ingest: " << h.device_id << " seq " << h.seq << ": " << st.ToString();
      const auto code = st.IsNoSpace() ? wire::ErrorCode::kStorageFull : wire::ErrorCode::kStorageError;
      replies.push_back({peer, wire::MakeError(h, code, st.message())});
      continue;
    }
    auto ack = ReplyTo(h, wire::MsgType::kAck, now);
    ack.header.ack_seq = h.seq;
    ack.header.credits = granted;
    replies.push_back({peer, std::move(ack)});
    stored_any = true;
  }
  if (stored_any && on_stored_) on_stored_();
  return replies;
}

}  // namespace kd::learner
