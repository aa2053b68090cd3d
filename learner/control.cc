#include "learner/control.h"

#include <chrono>
#include <cmath>

#include "base/log.h"

namespace kd::learner {
using std::chrono::milliseconds;

ControlStage::ControlStage(LoopState& state, Publisher& publisher, Catalogue& catalogue, const Clock& clock)
    : state_(state), publisher_(publisher), catalogue_(catalogue), clock_(clock) {}

void ControlStage::Run(wire::Server& control, const std::atomic<bool>& stopping) {
  while (!stopping) {
    state_.beats.control.Beat();
    auto in = control.Receive(milliseconds(100));
    Tick();
    if (!in.ok()) {
      if (stopping) break;
      KD_LOG(kWarn) << "control: " << in.status().ToString();
      continue;
    }
    if (!*in) continue;
    const Outgoing reply = Handle(**in);
    (void)control.Send(reply.peer, reply.message);
  }
}

void ControlStage::Tick() {
  const int64_t now = clock_.WallMicros();
  std::lock_guard lock(state_.mu);
  for (auto& [name, g] : state_.groups) g.rollout.Tick(now);
  if (now - last_rate_us_ < kRateIntervalUs) return;
  const double dt = last_rate_us_ ? static_cast<double>(now - last_rate_us_) / 1e6 : 0;
  for (auto& [id, d] : state_.devices) {
    if (dt > 0) {
      const double a = 1 - std::exp(-dt / kRateTimeConstantS);
      const double up = static_cast<double>(d.uplink_bytes - d.last_uplink_bytes) * 8 / 1000.0 / dt;
      const double down = static_cast<double>(d.downlink_bytes - d.last_downlink_bytes) * 8 / 1000.0 / dt;
      d.uplink_kbps += a * (up - d.uplink_kbps);
      d.downlink_kbps += a * (down - d.downlink_kbps);
    }
    d.last_uplink_bytes = d.uplink_bytes;
    d.last_downlink_bytes = d.downlink_bytes;
  }
  last_rate_us_ = now;
}

Outgoing ControlStage::Handle(const wire::Incoming& in) {
  const auto& h = in.message.header;
  const int64_t now = clock_.WallMicros();
  switch (h.type) {
    case wire::MsgType::kStatus:
      return {in.peer, HandleStatus(h, now)};
    case wire::MsgType::kChunkRequest:
      return {in.peer, HandleChunkRequest(h, now)};
    case wire::MsgType::kUpdateReport:
      return {in.peer, HandleUpdateReport(h, now)};
    default:
      return {in.peer, wire::MakeError(h, wire::ErrorCode::kBadHeader,
                                       std::string("unexpected on the control socket: ") + wire::MsgTypeName(h.type))};
  }
}

wire::Message ControlStage::HandleStatus(const wire::Header& h, int64_t now) {
  auto r = ReplyTo(h, wire::MsgType::kStatusReply, now);
  std::string group;
  uint64_t desired = 0;
  bool full = false;
  {
    std::lock_guard lock(state_.mu);
    DeviceInfo& d = state_.Device(h.device_id);
    d.last_seen_us = now;
    d.status = h.status;
    d.running_version = h.status.running_version;
    Group& g = state_.GroupFor(h.device_id);
    d.group = g.name;
    g.rollout.NoteDevice(h.device_id, now);
    desired = g.rollout.Desired(h.device_id);
    if (desired != 0 && desired != h.status.running_version && desired > h.status.floor_version) {
      auto v = g.versions.find(desired);
      const uint64_t delta_base = v != g.versions.end() ? v->second.delta_base : 0;
      full = h.status.want_full || delta_base == 0 || delta_base != h.status.running_version;
      group = g.name;
    }
  }
  r.header.desired_version = desired;
  if (!group.empty()) {
    auto blob = publisher_.ManifestFor(group, desired, full);
    if (blob.ok()) {
      r.payload = *blob;
    } else {
      KD_LOG(kWarn) << "manifest for " << group << " v" << desired << ": " << blob.status().ToString();
    }
  }
  return r;
}

wire::Message ControlStage::HandleChunkRequest(const wire::Header& h, int64_t now) {
  auto bytes = publisher_.ReadChunk(state_.GroupNameOf(h.device_id), h.object_id, h.offset, h.length);
  if (!bytes.ok()) {
    const bool unknown =
        bytes.status().code() == Status::Code::kNotFound || bytes.status().code() == Status::Code::kInvalidArgument;
    return unknown ? wire::MakeError(h, wire::ErrorCode::kUnknownObject,
                                     "no artefact " + h.object_id + " range for this device's group")
                   : wire::MakeError(h, wire::ErrorCode::kInternal, bytes.status().message());
  }
  auto r = ReplyTo(h, wire::MsgType::kChunk, now);
  r.header.object_id = h.object_id;
  r.header.offset = h.offset;
  r.header.length = bytes->size();
  r.payload = std::move(bytes).value();
  std::lock_guard lock(state_.mu);
  state_.Device(h.device_id).downlink_bytes += r.payload.size();
  return r;
}

wire::Message ControlStage::HandleUpdateReport(const wire::Header& h, int64_t now) {
  const char* what = h.outcome == wire::UpdateOutcome::kCommitted    ? "committed"
                     : h.outcome == wire::UpdateOutcome::kRolledBack ? "rolled back"
                                                                     : "rejected";
  // Appended piecewise: GCC 12 warns falsely (-Wstringop-overflow) on "v" + std::to_string(...).
  std::string line = std::string("v").append(std::to_string(h.model_version));
  line.append(" ").append(what);
  if (!h.error_text.empty()) line.append(": ").append(h.error_text);
  if (h.outcome == wire::UpdateOutcome::kCommitted) {
    KD_LOG(kInfo) << "device " << h.device_id << ": " << line;
  } else {
    KD_LOG(kWarn) << "device " << h.device_id << ": " << line;
  }
  std::string group;
  {
    std::lock_guard lock(state_.mu);
    DeviceInfo& d = state_.Device(h.device_id);
    d.reports.push_back(line);
    if (d.reports.size() > kReportsKept) d.reports.erase(d.reports.begin());
    Group& g = state_.GroupFor(h.device_id);
    const auto outcome = h.outcome == wire::UpdateOutcome::kCommitted    ? DeviceOutcome::kCommitted
                         : h.outcome == wire::UpdateOutcome::kRolledBack ? DeviceOutcome::kRolledBack
                                                                         : DeviceOutcome::kRejected;
    g.rollout.OnReport(h.device_id, h.model_version, outcome, now);
    group = g.name;
  }
  // The rollout's new state is durable before the device hears back.
  Status st = catalogue_.PersistGroup(group);
  if (!st.ok()) {
    KD_LOG(kWarn) << "rollout of " << group << " not persisted: " << st.ToString();
  }
  return ReplyTo(h, wire::MsgType::kAck, now);
}

}  // namespace kd::learner
