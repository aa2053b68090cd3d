// Link: the one socket a stage talks to the learner through (the uplink's frames DEALER, the
// updater's control DEALER), behind a narrow interface so that tests can put a fake in its place.
// NewMessage stamps what every edge message carries (device, send time, running model version).
//
// Ownership: a ClientLink borrows its wire::Client, which must outlive it. Threading: a Link is
// used by one stage thread only (as wire::Client is).
#ifndef KD_EDGE_LINK_H_
#define KD_EDGE_LINK_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "base/clock.h"
#include "base/status.h"
#include "wire/endpoint.h"
#include "wire/message.h"

namespace kd::edge {

class Link {
 public:
  virtual ~Link() = default;
  // Non-blocking; Unavailable when not connected or the pipe is full (see wire::Client::Send).
  virtual Status Send(const wire::Message& message) = 0;
  // Up to `timeout` for one message; nullopt on timeout; Unavailable after shutdown.
  virtual Result<std::optional<wire::Message>> Receive(std::chrono::milliseconds timeout) = 0;
  // Drops the connection and everything queued on it, and connects again.
  virtual Status Reconnect() = 0;
};

class ClientLink final : public Link {
 public:
  explicit ClientLink(wire::Client& client) : client_(client) {}
  Status Send(const wire::Message& message) override { return client_.Send(message); }
  Result<std::optional<wire::Message>> Receive(std::chrono::milliseconds timeout) override {
    return client_.Receive(timeout);
  }
  Status Reconnect() override { return client_.Reconnect(); }

 private:
  wire::Client& client_;
};

// A message of `type` from `device_id`, sent now (wall clock of `clock`), by model `model_version`.
inline wire::Message NewMessage(wire::MsgType type, const std::string& device_id, uint64_t model_version,
                                const Clock& clock) {
  wire::Message m;
  m.header.type = type;
  m.header.device_id = device_id;
  m.header.send_time_us = clock.WallMicros();
  m.header.model_version = model_version;
  return m;
}

}  // namespace kd::edge

#endif  // KD_EDGE_LINK_H_
