#include "wire/endpoint.h"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <unistd.h>
#include <unordered_map>
#include <utility>
#include <zmq.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <zmq.hpp>

#include "base/check.h"
#include "base/device_id.h"
#include "base/log.h"
#include "wire/message_internal.h"

namespace kd::wire {
namespace {

using SteadyClock = std::chrono::steady_clock;

constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";
// Slack over header + payload for MAXMSGSIZE (bytes): libzmq checks each frame against it.
constexpr int64_t kMaxMsgSlack = 64 * 1024;
// Frames kept when receiving a message; further frames are read and dropped (a peer cannot make
// us buffer a million tiny frames). 3 data frames + 1 to tell "too many" apart.
constexpr size_t kKeptDataFrames = 4;
constexpr int64_t kAdminMaxMsgSize = 1 << 20;  // bytes, admin requests

Status FromZmqError(const zmq::error_t& e, std::string_view what) {
  if (e.num() == ETERM) return Status::Unavailable("shutting down");
  return Status::Internal(std::string(what) + ": " + e.what());
}

int64_t MaxMsgSize(const Limits& limits) {
  return static_cast<int64_t>(limits.max_header_bytes + limits.max_payload_bytes) + kMaxMsgSlack;
}

// Polls one socket for input until `deadline`. True when readable, false on timeout. Throws
// zmq::error_t (ETERM on shutdown); EINTR is retried.
bool PollIn(zmq::socket_t& socket, SteadyClock::time_point deadline) {
  while (true) {
    const auto now = SteadyClock::now();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    // Round up so a sub-millisecond remainder still waits instead of spinning.
    const auto wait = deadline <= now ? std::chrono::milliseconds(0) : left + std::chrono::milliseconds(1);
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    try {
      zmq::poll(&item, 1, wait);
    } catch (const zmq::error_t& e) {
      if (e.num() == EINTR) continue;
      throw;
    }
    if ((item.revents & ZMQ_POLLIN) != 0) return true;
    if (SteadyClock::now() >= deadline) return false;
  }
}

// A received multipart message: the first kept frames and the total count.
struct RawMessage {
  std::vector<zmq::message_t> frames;
  size_t total = 0;
};

// Reads one whole multipart message without blocking; false when none is waiting.
bool RecvRaw(zmq::socket_t& socket, size_t keep, RawMessage* out) {
  out->frames.clear();
  out->total = 0;
  while (true) {
    zmq::message_t frame;
    const auto got = socket.recv(frame, out->total == 0 ? zmq::recv_flags::dontwait : zmq::recv_flags::none);
    if (!got) return false;  // EAGAIN on the first frame: nothing waiting
    ++out->total;
    const bool more = frame.more();
    if (out->frames.size() < keep) out->frames.push_back(std::move(frame));
    if (!more) return true;
  }
}

std::string ToString(const zmq::message_t& m) { return std::string(static_cast<const char*>(m.data()), m.size()); }

// Sends frames as one message, non-blocking. Unavailable on EAGAIN/EHOSTUNREACH of the first frame.
Status SendFrames(zmq::socket_t& socket, const std::string* routing_id, const std::vector<std::string>& frames) {
  KD_CHECK(!frames.empty());
  try {
    bool first = true;
    auto send_one = [&](const std::string& bytes, bool more) -> Status {
      const auto flags = more ? (zmq::send_flags::dontwait | zmq::send_flags::sndmore) : zmq::send_flags::dontwait;
      const auto sent = socket.send(zmq::buffer(bytes.data(), bytes.size()), flags);
      if (!sent) {
        // Only the first frame can hit the high-water mark; later frames of a message go with it.
        return first ? Status::Unavailable("not connected or pipe full (EAGAIN)")
                     : Status::Internal("send failed in the middle of a message");
      }
      first = false;
      return Status::Ok();
    };
    if (routing_id != nullptr) KD_RETURN_IF_ERROR(send_one(*routing_id, true));
    for (size_t i = 0; i < frames.size(); ++i) KD_RETURN_IF_ERROR(send_one(frames[i], i + 1 < frames.size()));
    return Status::Ok();
  } catch (const zmq::error_t& e) {
    if (e.num() == EHOSTUNREACH) return Status::Unavailable("peer departed or unknown (EHOSTUNREACH)");
    if (e.num() == ETERM) return Status::Unavailable("shutting down");
    return Status::Internal(std::string("zmq send: ") + e.what());
  }
}

void SetCommonOptions(zmq::socket_t& s, const Limits& limits, int hb_ivl, int hb_timeout, int hb_ttl, int sndhwm,
                      int rcvhwm, int linger) {
  s.set(zmq::sockopt::maxmsgsize, MaxMsgSize(limits));
  s.set(zmq::sockopt::heartbeat_ivl, hb_ivl);
  s.set(zmq::sockopt::heartbeat_timeout, hb_timeout);
  s.set(zmq::sockopt::heartbeat_ttl, hb_ttl);
  s.set(zmq::sockopt::sndhwm, sndhwm);
  s.set(zmq::sockopt::rcvhwm, rcvhwm);
  s.set(zmq::sockopt::linger, linger);
}

Status CheckCommon(const Limits& limits, int hb_ivl, int hb_timeout, int hb_ttl, int sndhwm, int rcvhwm, int linger) {
  if (limits.max_header_bytes == 0 || limits.max_payload_bytes == 0) {
    return Status::InvalidArgument("limits must be positive");
  }
  // ZMQ_HEARTBEAT_TTL is carried in deciseconds in a 16-bit field (max 6553.5 s).
  if (hb_ivl < 0 || hb_timeout < 0 || hb_ttl < 0 || hb_ttl > 6553500) {
    return Status::InvalidArgument("heartbeat options out of range");
  }
  if (sndhwm < 0 || rcvhwm < 0 || linger < -1) return Status::InvalidArgument("hwm/linger out of range");
  return Status::Ok();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Context

struct Context::Impl {
  zmq::context_t ctx{1};
  std::atomic<bool> shutting_down{false};
  std::atomic<bool> zap_running{false};  // an Authenticator is bound to inproc://zeromq.zap.01
  std::atomic<uint64_t> next_inproc_id{0};

  std::string UniqueInproc(std::string_view prefix) {
    return "inproc://" + std::string(prefix) + "-" + std::to_string(reinterpret_cast<uintptr_t>(this)) + "-" +
           std::to_string(next_inproc_id.fetch_add(1));
  }
};

Context::Context() : impl_(std::make_unique<Impl>()) {}
Context::~Context() = default;

void Context::Shutdown() {
  if (impl_->shutting_down.exchange(true)) return;
  try {
    impl_->ctx.shutdown();
  } catch (const zmq::error_t& e) {
    KD_LOG(kWarn) << "zmq context shutdown: " << e.what();
  }
}

bool Context::shutting_down() const { return impl_->shutting_down.load(); }

// ---------------------------------------------------------------------------------------------
// Authenticator

struct Authenticator::Impl {
  Context::Impl* ctx = nullptr;
  zmq::socket_t zap;      // REP on kZapEndpoint; used by the thread only after Start
  zmq::socket_t stop_rx;  // PAIR, thread side
  zmq::socket_t stop_tx;  // PAIR, owner side: one message = stop
  std::thread thread;

  mutable std::mutex mu;
  std::unordered_map<std::string, std::string> device_by_key;  // Z85 key -> device_id
  std::unordered_map<std::string, std::string> key_by_device;
  std::atomic<uint64_t> denied{0};
  std::atomic<uint64_t> allowed{0};

  void Run();
  void HandleRequest();
};

void Authenticator::Impl::HandleRequest() {
  RawMessage raw;
  if (!RecvRaw(zap, 16, &raw)) return;
  // RFC 27 request: version, request id, domain, address, routing id, mechanism, credentials...
  std::string version = raw.frames.size() > 0 ? ToString(raw.frames[0]) : "";
  std::string request_id = raw.frames.size() > 1 ? ToString(raw.frames[1]) : "";
  std::string status = "400", text = "denied", user_id;
  if (version != "1.0" || raw.frames.size() < 6) {
    status = "500";
    text = "malformed ZAP request";
  } else {
    const std::string mechanism = ToString(raw.frames[5]);
    if (mechanism == "CURVE" && raw.frames.size() >= 7 && raw.frames[6].size() == 32) {
      char z85[41] = {};
      if (zmq_z85_encode(z85, static_cast<const uint8_t*>(raw.frames[6].data()), 32) != nullptr) {
        std::lock_guard<std::mutex> lock(mu);
        auto it = device_by_key.find(z85);
        if (it != device_by_key.end()) {
          status = "200";
          text = "OK";
          user_id = it->second;
        } else {
          text = "unknown key";
        }
      }
    } else {
      text = "mechanism " + mechanism + " not allowed";
    }
  }
  if (status == "200") {
    allowed.fetch_add(1);
  } else {
    denied.fetch_add(1);
    KD_LOG(kDebug) << "ZAP refused a handshake: " << text;
  }
  // A REP must answer every request, even a malformed one.
  const std::vector<std::string> reply = {"1.0", request_id, status, text, user_id, ""};
  const Status s = SendFrames(zap, nullptr, reply);
  if (!s.ok() && s.message() != "shutting down") {
    KD_LOG(kWarn) << "ZAP reply: " << s.ToString();
  }
}

void Authenticator::Impl::Run() {
  try {
    while (true) {
      zmq::pollitem_t items[] = {{zap.handle(), 0, ZMQ_POLLIN, 0}, {stop_rx.handle(), 0, ZMQ_POLLIN, 0}};
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(-1));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        throw;
      }
      if ((items[1].revents & ZMQ_POLLIN) != 0) break;
      if ((items[0].revents & ZMQ_POLLIN) != 0) HandleRequest();
    }
  } catch (const zmq::error_t& e) {
    if (e.num() != ETERM) {
      KD_LOG(kError) << "ZAP handler stopped: " << e.what();
    }
  }
  // Close in this thread: the context's termination waits for these sockets.
  zap.close();
  stop_rx.close();
  ctx->zap_running.store(false);
}

Authenticator::Authenticator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Authenticator::~Authenticator() {
  if (impl_->thread.joinable()) {
    try {
      impl_->stop_tx.send(zmq::str_buffer("stop"), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // ETERM: the thread sees the shutdown itself.
    }
    impl_->thread.join();
  }
  impl_->stop_tx.close();
}

Result<std::unique_ptr<Authenticator>> Authenticator::Start(Context& context) {
  Context::Impl* ctx = context.impl_.get();
  if (ctx->shutting_down.load()) return Status::FailedPrecondition("context is shutting down");
  bool expected = false;
  if (!ctx->zap_running.compare_exchange_strong(expected, true)) {
    return Status::FailedPrecondition("this context already has an Authenticator");
  }
  auto impl = std::make_unique<Impl>();
  impl->ctx = ctx;
  try {
    impl->zap = zmq::socket_t(ctx->ctx, zmq::socket_type::rep);
    impl->zap.set(zmq::sockopt::linger, 0);
    impl->zap.bind(kZapEndpoint);
    const std::string stop_addr = ctx->UniqueInproc("kd-zap-stop");
    impl->stop_rx = zmq::socket_t(ctx->ctx, zmq::socket_type::pair);
    impl->stop_rx.set(zmq::sockopt::linger, 0);
    impl->stop_rx.bind(stop_addr);
    impl->stop_tx = zmq::socket_t(ctx->ctx, zmq::socket_type::pair);
    impl->stop_tx.set(zmq::sockopt::linger, 0);
    impl->stop_tx.connect(stop_addr);
  } catch (const zmq::error_t& e) {
    impl->zap.close();
    impl->stop_rx.close();
    impl->stop_tx.close();
    ctx->zap_running.store(false);
    if (e.num() == EADDRINUSE) return Status::FailedPrecondition("a ZAP handler is already bound on this context");
    return FromZmqError(e, "starting the ZAP handler");
  }
  Impl* raw = impl.get();
  raw->thread = std::thread([raw] { raw->Run(); });
  return std::unique_ptr<Authenticator>(new Authenticator(std::move(impl)));
}

Status Authenticator::Allow(const std::string& public_key_z85, const std::string& device_id) {
  if (!IsValidZ85Key(public_key_z85)) return Status::InvalidArgument("not a Z85 CURVE public key");
  if (!IsValidDeviceId(device_id)) return Status::InvalidArgument("bad device_id '" + device_id + "'");
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto old_key = impl_->key_by_device.find(device_id);
  if (old_key != impl_->key_by_device.end()) impl_->device_by_key.erase(old_key->second);
  auto old_device = impl_->device_by_key.find(public_key_z85);
  if (old_device != impl_->device_by_key.end()) impl_->key_by_device.erase(old_device->second);
  impl_->device_by_key[public_key_z85] = device_id;
  impl_->key_by_device[device_id] = public_key_z85;
  return Status::Ok();
}

void Authenticator::Revoke(const std::string& device_id) {
  std::lock_guard<std::mutex> lock(impl_->mu);
  auto it = impl_->key_by_device.find(device_id);
  if (it == impl_->key_by_device.end()) return;
  impl_->device_by_key.erase(it->second);
  impl_->key_by_device.erase(it);
}

bool Authenticator::IsAllowed(const std::string& device_id) const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->key_by_device.count(device_id) > 0;
}

uint64_t Authenticator::denied() const { return impl_->denied.load(); }
uint64_t Authenticator::allowed() const { return impl_->allowed.load(); }

// ---------------------------------------------------------------------------------------------
// Server

struct Server::Impl {
  Context::Impl* ctx = nullptr;
  ServerOptions options;
  zmq::socket_t socket;
  std::string bound;
  std::atomic<uint64_t> received{0}, malformed{0}, wrong_device{0}, not_enrolled{0}, sent{0}, send_failed{0};

  Status SendCounted(const std::string& peer, const Message& message);
  void Reject(const std::string& peer, const std::string& device_id, uint64_t seq, ErrorCode code,
              const std::string& text);
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;  // closes the socket (LINGER applies)

Result<std::unique_ptr<Server>> Server::Bind(Context& context, const ServerOptions& options) {
  Context::Impl* ctx = context.impl_.get();
  if (options.endpoint.empty()) return Status::InvalidArgument("ServerOptions.endpoint is empty");
  KD_RETURN_IF_ERROR(CheckCommon(options.limits, options.heartbeat_ivl_ms, options.heartbeat_timeout_ms,
                                 options.heartbeat_ttl_ms, options.sndhwm, options.rcvhwm, options.linger_ms));
  if (options.curve.has_value()) {
    if (!IsValidZ85Key(options.curve->secret_key)) return Status::InvalidArgument("bad server secret key");
    if (options.zap_domain.empty()) return Status::InvalidArgument("CURVE needs a zap_domain");
    if (!ctx->zap_running.load()) {
      return Status::FailedPrecondition(
          "CURVE server without a running Authenticator would accept any client: start one first");
    }
  }
  if (ctx->shutting_down.load()) return Status::Unavailable("shutting down");
  auto impl = std::make_unique<Impl>();
  impl->ctx = ctx;
  impl->options = options;
  try {
    impl->socket = zmq::socket_t(ctx->ctx, zmq::socket_type::router);
    zmq::socket_t& s = impl->socket;
    s.set(zmq::sockopt::router_mandatory, 1);
    SetCommonOptions(s, options.limits, options.heartbeat_ivl_ms, options.heartbeat_timeout_ms,
                     options.heartbeat_ttl_ms, options.sndhwm, options.rcvhwm, options.linger_ms);
    if (options.curve.has_value()) {
      s.set(zmq::sockopt::curve_server, 1);
      s.set(zmq::sockopt::curve_secretkey, options.curve->secret_key);
      s.set(zmq::sockopt::zap_domain, options.zap_domain);
    }
    s.bind(options.endpoint);
    impl->bound = s.get(zmq::sockopt::last_endpoint);
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) return Status::Unavailable("shutting down");
    return Status::Unavailable("cannot bind " + options.endpoint + ": " + e.what());
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Status Server::Impl::SendCounted(const std::string& peer, const Message& message) {
  const std::vector<std::string> frames = EncodeFrames(message);
  Status s = CheckSendable(frames, options.limits);
  if (s.ok()) s = SendFrames(socket, &peer, frames);
  (s.ok() ? sent : send_failed).fetch_add(1);
  return s;
}

void Server::Impl::Reject(const std::string& peer, const std::string& device_id, uint64_t seq, ErrorCode code,
                          const std::string& text) {
  Header request;
  request.device_id = device_id.empty() ? "unknown" : device_id;
  request.seq = seq;
  const Status s = SendCounted(peer, MakeError(request, code, text));
  if (!s.ok()) {
    KD_LOG(kDebug) << "error reply to " << request.device_id << " not sent: " << s.ToString();
  }
}

Result<std::optional<Incoming>> Server::Receive(std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  const auto deadline = SteadyClock::now() + timeout;
  try {
    while (true) {
      if (m.ctx->shutting_down.load()) return Status::Unavailable("shutting down");
      RawMessage raw;
      if (!RecvRaw(m.socket, 1 + kKeptDataFrames, &raw)) {
        if (!PollIn(m.socket, deadline)) return std::optional<Incoming>();
        continue;
      }
      Incoming in;
      in.peer = ToString(raw.frames[0]);  // ROUTER: the routing id comes first
      std::vector<std::string> frames;
      for (size_t i = 1; i < raw.frames.size(); ++i) frames.push_back(ToString(raw.frames[i]));
      if (raw.frames.size() > 1) {
        // Set by libzmq from the ZAP reply on every message of an authenticated connection.
        const char* user = zmq_msg_gets(raw.frames[1].handle(), "User-Id");
        if (user != nullptr) in.user_id = user;
      }
      const size_t data_frames = raw.total - 1;
      ErrorCode code = ErrorCode::kNone;
      Result<Message> decoded =
          data_frames == 3
              ? DecodeFramesTakingPayload(frames, m.options.limits, &code)
              : Result<Message>(Status::InvalidArgument("expected 3 frames, got " + std::to_string(data_frames)));
      if (data_frames != 3) code = ErrorCode::kBadProtocol;
      if (!decoded.ok()) {
        m.malformed.fetch_add(1);
        const auto peeked = internal::PeekHeader(frames, m.options.limits);
        const std::string device = !in.user_id.empty() ? in.user_id : (peeked ? peeked->device_id : "");
        KD_LOG(kDebug) << "malformed message from " << (device.empty() ? "?" : device) << ": "
                       << decoded.status().ToString();
        m.Reject(in.peer, device, peeked ? peeked->seq : 0, code, decoded.status().message());
        // A stream of refused messages must not keep the caller past its deadline.
        if (SteadyClock::now() >= deadline) return std::optional<Incoming>();
        continue;
      }
      in.message = std::move(decoded).value();
      const Header& h = in.message.header;
      // A CURVE connection without a User-Id was not authenticated by our ZAP handler (e.g. it was
      // stopped): libzmq 4.3.4 lets such clients in, so we refuse their messages.
      const bool unauthenticated = m.options.curve.has_value() && in.user_id.empty();
      const bool revoked =
          m.options.authenticator != nullptr && !in.user_id.empty() && !m.options.authenticator->IsAllowed(in.user_id);
      if (unauthenticated || revoked) {
        m.not_enrolled.fetch_add(1);
        m.Reject(in.peer, in.user_id, h.seq, ErrorCode::kNotEnrolled, "device not enrolled");
        // A stream of refused messages must not keep the caller past its deadline.
        if (SteadyClock::now() >= deadline) return std::optional<Incoming>();
        continue;
      }
      if (!in.user_id.empty() && h.device_id != in.user_id) {
        m.wrong_device.fetch_add(1);
        KD_LOG(kDebug) << "device " << in.user_id << " sent a message as '" << h.device_id << "'";
        m.Reject(in.peer, in.user_id, h.seq, ErrorCode::kWrongDevice, "device_id does not match the authenticated key");
        // A stream of refused messages must not keep the caller past its deadline.
        if (SteadyClock::now() >= deadline) return std::optional<Incoming>();
        continue;
      }
      m.received.fetch_add(1);
      return std::optional<Incoming>(std::move(in));
    }
  } catch (const zmq::error_t& e) {
    return FromZmqError(e, "zmq receive");
  }
}

Status Server::Send(const std::string& peer, const Message& message) {
  if (impl_->ctx->shutting_down.load()) return Status::Unavailable("shutting down");
  return impl_->SendCounted(peer, message);
}

ServerStats Server::stats() const {
  ServerStats s;
  s.received = impl_->received.load();
  s.malformed = impl_->malformed.load();
  s.wrong_device = impl_->wrong_device.load();
  s.not_enrolled = impl_->not_enrolled.load();
  s.sent = impl_->sent.load();
  s.send_failed = impl_->send_failed.load();
  return s;
}

std::string Server::bound_endpoint() const { return impl_->bound; }

// ---------------------------------------------------------------------------------------------
// Client

struct Client::Impl {
  Context::Impl* ctx = nullptr;
  ClientOptions options;
  zmq::socket_t socket;   // DEALER
  zmq::socket_t monitor;  // PAIR connected to the socket's monitor
  bool monitoring = false;
  bool connected = false;
  uint64_t handshakes = 0;
  std::atomic<uint64_t> received{0}, malformed{0}, sent{0}, send_failed{0}, reconnects{0}, handshake_failures{0};

  Status Open();
  void Close();
  void DrainMonitor();
};

Status Client::Impl::Open() {
  try {
    socket = zmq::socket_t(ctx->ctx, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::immediate, 1);
    SetCommonOptions(socket, options.limits, options.heartbeat_ivl_ms, options.heartbeat_timeout_ms,
                     options.heartbeat_ttl_ms, options.sndhwm, options.rcvhwm, options.linger_ms);
    socket.set(zmq::sockopt::reconnect_ivl, options.reconnect_ivl_ms);
    socket.set(zmq::sockopt::reconnect_ivl_max, options.reconnect_ivl_max_ms);
    if (options.curve.has_value()) {
      socket.set(zmq::sockopt::curve_serverkey, options.server_public_key);
      socket.set(zmq::sockopt::curve_publickey, options.curve->public_key);
      socket.set(zmq::sockopt::curve_secretkey, options.curve->secret_key);
    }
    // The monitor is attached before connecting so no handshake event is missed.
    const std::string monitor_addr = ctx->UniqueInproc("kd-client-monitor");
    const int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CLOSED |
                       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                       ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(socket.handle(), monitor_addr.c_str(), events) != 0) throw zmq::error_t();
    monitoring = true;
    monitor = zmq::socket_t(ctx->ctx, zmq::socket_type::pair);
    monitor.set(zmq::sockopt::linger, 0);
    monitor.connect(monitor_addr);
    socket.connect(options.endpoint);
  } catch (const zmq::error_t& e) {
    Close();
    if (e.num() == ETERM) return Status::Unavailable("shutting down");
    if (e.num() == EINVAL || e.num() == EPROTONOSUPPORT) {
      return Status::InvalidArgument("cannot connect to " + options.endpoint + ": " + e.what());
    }
    return Status::Internal("cannot connect to " + options.endpoint + ": " + e.what());
  }
  // inproc has no ZMTP handshake (and no monitor events): the pipe exists once connect returns.
  connected = options.endpoint.rfind("inproc://", 0) == 0;
  return Status::Ok();
}

void Client::Impl::Close() {
  if (monitoring && socket.handle() != nullptr) zmq_socket_monitor(socket.handle(), nullptr, 0);
  monitoring = false;
  monitor.close();
  socket.close();
  connected = false;
}

void Client::Impl::DrainMonitor() {
  if (monitor.handle() == nullptr) return;
  try {
    RawMessage raw;
    while (RecvRaw(monitor, 2, &raw)) {
      if (raw.frames.empty() || raw.frames[0].size() < 6) continue;
      uint16_t event = 0;
      std::memcpy(&event, raw.frames[0].data(), sizeof(event));  // v1 layout: u16 event, u32 value
      switch (event) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
          connected = true;
          if (++handshakes > 1) reconnects.fetch_add(1);
          break;
        case ZMQ_EVENT_DISCONNECTED:
        case ZMQ_EVENT_CLOSED:
          connected = false;
          break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
          connected = false;
          handshake_failures.fetch_add(1);
          break;
        default:
          break;
      }
    }
  } catch (const zmq::error_t&) {
    // ETERM during shutdown: the state no longer matters.
  }
}

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() { impl_->Close(); }

Result<std::unique_ptr<Client>> Client::Connect(Context& context, const ClientOptions& options) {
  if (options.endpoint.empty()) return Status::InvalidArgument("ClientOptions.endpoint is empty");
  KD_RETURN_IF_ERROR(CheckCommon(options.limits, options.heartbeat_ivl_ms, options.heartbeat_timeout_ms,
                                 options.heartbeat_ttl_ms, options.sndhwm, options.rcvhwm, options.linger_ms));
  if (options.reconnect_ivl_ms < 0 || options.reconnect_ivl_max_ms < 0) {
    return Status::InvalidArgument("reconnect intervals must be >= 0");
  }
  if (options.curve.has_value()) {
    if (!IsValidZ85Key(options.curve->public_key) || !IsValidZ85Key(options.curve->secret_key)) {
      return Status::InvalidArgument("bad client CURVE keys");
    }
    if (!IsValidZ85Key(options.server_public_key)) return Status::InvalidArgument("bad server_public_key");
  }
  Context::Impl* ctx = context.impl_.get();
  if (ctx->shutting_down.load()) return Status::Unavailable("shutting down");
  auto impl = std::make_unique<Impl>();
  impl->ctx = ctx;
  impl->options = options;
  KD_RETURN_IF_ERROR(impl->Open());
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

Status Client::Send(const Message& message) {
  Impl& m = *impl_;
  m.DrainMonitor();
  const std::vector<std::string> frames = EncodeFrames(message);
  if (Status s = CheckSendable(frames, m.options.limits); !s.ok()) {
    m.send_failed.fetch_add(1);
    return s;
  }
  return SendRaw(frames);
}

// The test hook calls production, never the other way round (leveldb's TEST_ methods).
Status Client::TEST_SendRaw(const std::vector<std::string>& frames) { return SendRaw(frames); }

Status Client::SendRaw(const std::vector<std::string>& frames) {
  Impl& m = *impl_;
  if (m.ctx->shutting_down.load()) return Status::Unavailable("shutting down");
  if (frames.empty()) return Status::InvalidArgument("no frames");
  if (m.socket.handle() == nullptr) return Status::Unavailable("socket closed (Reconnect failed)");
  Status s = SendFrames(m.socket, nullptr, frames);
  (s.ok() ? m.sent : m.send_failed).fetch_add(1);
  if (!s.ok() && !m.connected && s.code() == Status::Code::kUnavailable) {
    return Status::Unavailable("not connected");
  }
  return s;
}

Result<std::optional<Message>> Client::Receive(std::chrono::milliseconds timeout) {
  Impl& m = *impl_;
  const auto deadline = SteadyClock::now() + timeout;
  if (m.socket.handle() == nullptr) return Status::Unavailable("socket closed (Reconnect failed)");
  try {
    while (true) {
      if (m.ctx->shutting_down.load()) return Status::Unavailable("shutting down");
      m.DrainMonitor();
      RawMessage raw;
      if (!RecvRaw(m.socket, kKeptDataFrames, &raw)) {
        if (!PollIn(m.socket, deadline)) return std::optional<Message>();
        continue;
      }
      std::vector<std::string> frames;
      for (const auto& f : raw.frames) frames.push_back(ToString(f));
      Result<Message> decoded = raw.total == 3 ? DecodeFramesTakingPayload(frames, m.options.limits)
                                               : Result<Message>(Status::InvalidArgument("not 3 frames"));
      if (!decoded.ok()) {
        m.malformed.fetch_add(1);
        KD_LOG(kDebug) << "malformed reply skipped: " << decoded.status().ToString();
        if (SteadyClock::now() >= deadline) return std::optional<Message>();
        continue;
      }
      m.received.fetch_add(1);
      return std::optional<Message>(std::move(decoded).value());
    }
  } catch (const zmq::error_t& e) {
    return FromZmqError(e, "zmq receive");
  }
}

Status Client::Reconnect() {
  Impl& m = *impl_;
  if (m.ctx->shutting_down.load()) return Status::Unavailable("shutting down");
  m.DrainMonitor();
  m.Close();
  return m.Open();
}

bool Client::connected() const {
  impl_->DrainMonitor();
  return impl_->connected;
}

ClientStats Client::stats() const {
  ClientStats s;
  s.received = impl_->received.load();
  s.malformed = impl_->malformed.load();
  s.sent = impl_->sent.load();
  s.send_failed = impl_->send_failed.load();
  s.reconnects = impl_->reconnects.load();
  s.handshake_failures = impl_->handshake_failures.load();
  return s;
}

// ---------------------------------------------------------------------------------------------
// Admin socket

struct AdminServer::Impl {
  Context::Impl* ctx = nullptr;
  zmq::socket_t socket;  // REP
  std::string path;      // the ipc socket file this server bound (removed when it closes)
};

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
AdminServer::~AdminServer() {
  // ZeroMQ leaves the ipc file behind; a file without a listener reads as "a learner is running"
  // to the next kdctl, so the server that bound it removes it.
  try {
    impl_->socket.close();
  } catch (const zmq::error_t&) {
  }
  if (!impl_->path.empty()) ::unlink(impl_->path.c_str());
}

Result<std::unique_ptr<AdminServer>> AdminServer::Bind(Context& context, const std::string& endpoint) {
  constexpr std::string_view kIpc = "ipc://";
  if (endpoint.rfind(kIpc, 0) != 0 || endpoint.size() == kIpc.size()) {
    return Status::InvalidArgument("admin endpoint must be ipc://<path>, got '" + endpoint + "'");
  }
  Context::Impl* ctx = context.impl_.get();
  if (ctx->shutting_down.load()) return Status::Unavailable("shutting down");
  auto impl = std::make_unique<Impl>();
  impl->ctx = ctx;
  try {
    impl->socket = zmq::socket_t(ctx->ctx, zmq::socket_type::rep);
    impl->socket.set(zmq::sockopt::linger, 0);
    impl->socket.set(zmq::sockopt::maxmsgsize, kAdminMaxMsgSize);
    impl->socket.bind(endpoint);
  } catch (const zmq::error_t& e) {
    if (e.num() == ETERM) return Status::Unavailable("shutting down");
    return Status::Unavailable("cannot bind " + endpoint + ": " + e.what());
  }
  const std::string path = endpoint.substr(kIpc.size());
  if (::chmod(path.c_str(), 0600) != 0) {
    KD_LOG(kWarn) << "cannot chmod 600 the admin socket " << path << ": " << std::strerror(errno);
  }
  impl->path = path;
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

Result<bool> AdminServer::ServeOne(std::chrono::milliseconds timeout,
                                   const std::function<std::string(const std::string&)>& handler) {
  Impl& m = *impl_;
  if (m.ctx->shutting_down.load()) return Status::Unavailable("shutting down");
  try {
    const auto deadline = SteadyClock::now() + timeout;
    RawMessage raw;
    while (!RecvRaw(m.socket, 2, &raw)) {
      if (!PollIn(m.socket, deadline)) return false;
    }
    std::string reply;
    Status result = Status::Ok();
    if (raw.total != 1) {
      reply = R"({"error":"bad request"})";
    } else {
      try {
        reply = handler(ToString(raw.frames[0]));
      } catch (const std::exception& e) {
        KD_LOG(kError) << "admin handler threw: " << e.what();
        reply = R"({"error":"internal"})";
        result = Status::Internal(std::string("admin handler threw: ") + e.what());
      }
    }
    // A REP must answer before it can receive again; a departed requester just drops the reply.
    m.socket.send(zmq::buffer(reply), zmq::send_flags::dontwait);
    if (!result.ok()) return result;
    return true;
  } catch (const zmq::error_t& e) {
    return FromZmqError(e, "admin socket");
  }
}

Result<std::string> AdminCall(const std::string& endpoint, const std::string& request,
                              std::chrono::milliseconds timeout) {
  constexpr std::string_view kIpc = "ipc://";
  if (endpoint.rfind(kIpc, 0) == 0) {
    struct stat st {};
    const std::string path = endpoint.substr(kIpc.size());
    if (::stat(path.c_str(), &st) != 0) return Status::Unavailable("no admin socket at " + path);
    // A socket file nobody listens on (a learner killed with -9): say so now instead of waiting for
    // a reply that cannot come (ZeroMQ would keep reconnecting until the timeout).
    if (S_ISSOCK(st.st_mode) && path.size() < sizeof(sockaddr_un::sun_path)) {
      const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0) {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        const bool refused = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 &&
                             (errno == ECONNREFUSED || errno == ENOENT);
        ::close(fd);
        if (refused) return Status::Unavailable("the learner is not running (nothing listens on " + path + ")");
      }
    }
  }
  try {
    zmq::context_t ctx(1);
    zmq::socket_t socket(ctx, zmq::socket_type::req);
    socket.set(zmq::sockopt::linger, 0);
    socket.set(zmq::sockopt::maxmsgsize, int64_t{64} << 20);  // replies may be larger than requests
    socket.connect(endpoint);
    const auto deadline = SteadyClock::now() + timeout;
    // REQ queues the request until the connection is up, so this does not block for long.
    if (!socket.send(zmq::buffer(request), zmq::send_flags::dontwait)) {
      return Status::Unavailable("admin request not sent to " + endpoint);
    }
    if (!PollIn(socket, deadline)) return Status::Unavailable("no reply from " + endpoint + " in time");
    zmq::message_t reply;
    if (!socket.recv(reply, zmq::recv_flags::dontwait)) return Status::Unavailable("no reply from " + endpoint);
    return reply.to_string();
  } catch (const zmq::error_t& e) {
    return Status::Unavailable("admin call to " + endpoint + ": " + e.what());
  }
}

}  // namespace kd::wire
