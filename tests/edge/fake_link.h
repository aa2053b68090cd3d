// FakeLink: an in-memory edge::Link for stage tests. Records what is sent, answers Receive from an
// inbox the test (or `on_send`, a scripted learner) fills, counts reconnects. Single-threaded: the
// tests drive the stages with Step().
#ifndef KD_TESTS_EDGE_FAKE_LINK_H_
#define KD_TESTS_EDGE_FAKE_LINK_H_

#include <deque>
#include <functional>
#include <vector>

#include "edge/link.h"

namespace kd::edge::testing {

class FakeLink final : public Link {
 public:
  Status Send(const wire::Message& message) override {
    if (!connected) return Status::Unavailable("fake link: not connected");
    sent.push_back(message);
    if (on_send) on_send(message);
    return Status::Ok();
  }
  Result<std::optional<wire::Message>> Receive(std::chrono::milliseconds) override {
    if (inbox.empty()) return std::optional<wire::Message>();
    wire::Message m = std::move(inbox.front());
    inbox.pop_front();
    return std::optional<wire::Message>(std::move(m));
  }
  Status Reconnect() override {
    ++reconnects;
    inbox.clear();  // like a real reconnect: whatever was queued is gone
    return Status::Ok();
  }
  std::vector<wire::Message> SentOfType(wire::MsgType type) const {
    std::vector<wire::Message> out;
    for (const auto& m : sent) {
      if (m.header.type == type) out.push_back(m);
    }
    return out;
  }
  void Reply(wire::MsgType type, const std::function<void(wire::Header&)>& fill = {}) {
    wire::Message m;
    m.header.type = type;
    if (fill) fill(m.header);
    inbox.push_back(std::move(m));
  }

  std::vector<wire::Message> sent;
  std::deque<wire::Message> inbox;
  std::function<void(const wire::Message&)> on_send;
  int reconnects = 0;
  bool connected = true;
};

}  // namespace kd::edge::testing

#endif  // KD_TESTS_EDGE_FAKE_LINK_H_
