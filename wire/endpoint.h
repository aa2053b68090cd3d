// The kd socket layer on ZeroMQ (private to wire/, behind pimpl): the learner's ROUTER servers,
// the edge's DEALER clients, the CURVE/ZAP allowlist and the operator's admin socket. Messages are
// validated by DecodeFrames (wire/message.h) before any caller sees them; the protocol, sockets and
// options are specified in wire/PROTOCOL.md.
// Ownership: a Context owns the ZeroMQ context; every Server, Client, AdminServer and Authenticator
// made from it must be destroyed before it (~Context waits for them otherwise).
// Threading: Context::Shutdown and all Authenticator methods are thread-safe. A Server, Client or
// AdminServer belongs to one thread at a time (ZeroMQ sockets are not thread-safe); handing it to
// another thread needs a happens-before (e.g. a mutex or a thread start). stats() may be called from
// any thread. Nothing here throws: expected failures are Status values.
#ifndef KD_WIRE_ENDPOINT_H_
#define KD_WIRE_ENDPOINT_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "wire/curve_keys.h"
#include "wire/message.h"

namespace kd::wire {

class Context {
 public:
  Context();  // one I/O thread (enough for the frame rates of a few dozen cameras)
  // Blocks until every socket made from this context is closed: destroy those first.
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  // Makes blocked and future Receive/ServeOne/Send calls on this context's sockets return
  // Unavailable("shutting down") promptly (zmq_ctx_shutdown), and stops the Authenticator's thread.
  // Idempotent; thread-safe (e.g. from a signal-handling thread).
  void Shutdown();
  bool shutting_down() const;

 private:
  friend class Authenticator;
  friend class Server;
  friend class Client;
  friend class AdminServer;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ZAP handler (RFC 27) on inproc://zeromq.zap.01. It must be started BEFORE any CURVE server binds
// (libzmq 4.3.4 accepts any client that knows the server key when no handler exists); Server::Bind
// with CURVE refuses to bind on a context without a running Authenticator. At most one per Context.
// Allowlist: client CURVE public key (Z85) -> device_id, which becomes the ZAP User-Id of every
// message on that connection. Non-CURVE handshakes that reach it (NULL/PLAIN) are refused.
// Own thread; all methods thread-safe.
class Authenticator {
 public:
  // FailedPrecondition when the context already has one (or is shutting down); Internal on a
  // ZeroMQ failure.
  static Result<std::unique_ptr<Authenticator>> Start(Context& context);
  ~Authenticator();  // stops and joins the thread; later CURVE handshakes on the context fail
  Authenticator(const Authenticator&) = delete;
  Authenticator& operator=(const Authenticator&) = delete;

  // Adds (or replaces) the key of device_id: one key per device, so allowing a new key for a device
  // revokes its old key (key rotation), and a key belongs to one device. InvalidArgument for a bad
  // key or device_id (charset of message.h, at most 64 bytes).
  Status Allow(const std::string& public_key_z85, const std::string& device_id);
  // Removes the device's key: new handshakes with it are refused. Existing connections stay open
  // (libzmq cannot close one peer's connection), but a Server whose ServerOptions::authenticator
  // points here rejects every later message of a revoked device with kError kNotEnrolled, so
  // nothing from it reaches the daemon. Re-allowing the device (any key) makes its old connections
  // acceptable again.
  void Revoke(const std::string& device_id);
  bool IsAllowed(const std::string& device_id) const;
  uint64_t denied() const;   // handshakes refused (unknown key or non-CURVE mechanism)
  uint64_t allowed() const;  // handshakes accepted

 private:
  struct Impl;
  explicit Authenticator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct ServerOptions {
  std::string endpoint;               // e.g. "tcp://*:5555", "tcp://127.0.0.1:*", "inproc://frames"
  std::optional<CurveKeyPair> curve;  // server keys; nullopt = no security (inproc tests only)
  std::string zap_domain = "kd";      // ZAP domain (used with CURVE)
  // Checked on every message; MAXMSGSIZE (per frame) = max_header_bytes + max_payload_bytes + 64 KiB,
  // so a peer sending more is disconnected by libzmq before the bytes are buffered.
  Limits limits;
  // ZMTP heartbeats (ms): PING every ivl, peer dead after `timeout` without traffic; `ttl` asks the
  // peer to drop us after that long. 3 missed = dead.
  int heartbeat_ivl_ms = 2000, heartbeat_timeout_ms = 6000, heartbeat_ttl_ms = 6000;
  int sndhwm = 1000, rcvhwm = 1000;  // messages per peer pipe (see PROTOCOL.md, flow control)
  int linger_ms = 0;                 // on close; 0 = drop unsent (un-acked frames get resent anyway)
  // When set (and alive as long as the Server), messages from devices no longer allowed are
  // rejected with kError kNotEnrolled. Not owned.
  const Authenticator* authenticator = nullptr;
};

struct Incoming {
  std::string peer;     // ROUTER routing id: pass it to Server::Send to reply
  std::string user_id;  // ZAP User-Id (the device_id of the CURVE key); empty without CURVE
  Message message;
};

struct ServerStats {
  uint64_t received = 0;      // valid messages returned by Receive
  uint64_t malformed = 0;     // refused by DecodeFrames (and answered with kError)
  uint64_t wrong_device = 0;  // header.device_id != User-Id (answered with kWrongDevice)
  uint64_t not_enrolled = 0;  // from a revoked device (answered with kNotEnrolled)
  uint64_t sent = 0;          // messages sent by Send (error replies included)
  uint64_t send_failed = 0;   // Send (or an error reply) refused: departed peer or full pipe
};

// ROUTER with ROUTER_MANDATORY: one per learner socket (frames, control).
class Server {
 public:
  // InvalidArgument for bad options; FailedPrecondition for CURVE without a running Authenticator
  // on `context`; Unavailable when the endpoint cannot be bound (address in use, ...).
  static Result<std::unique_ptr<Server>> Bind(Context& context, const ServerOptions& options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Waits up to `timeout` for one valid message; nullopt on timeout. Malformed messages never reach
  // the caller: they get a kError reply (when a peer id is known) and increment stats().malformed;
  // a message whose header.device_id != the authenticated User-Id gets kError kWrongDevice and
  // increments wrong_device; one from a revoked device gets kNotEnrolled (not_enrolled). Such
  // replies carry the User-Id as device_id (else the header's device_id if valid, else "unknown").
  // Unavailable after Context::Shutdown.
  Result<std::optional<Incoming>> Receive(std::chrono::milliseconds timeout);
  // Sends without blocking (ZMQ_DONTWAIT). Unavailable for a departed/unknown peer (EHOSTUNREACH)
  // or a full pipe (EAGAIN); InvalidArgument when over options.limits (CheckSendable).
  Status Send(const std::string& peer, const Message& message);
  ServerStats stats() const;
  // The resolved endpoint (ZMQ_LAST_ENDPOINT), e.g. "tcp://127.0.0.1:41234" after binding
  // "tcp://127.0.0.1:*": what clients connect to.
  std::string bound_endpoint() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct ClientOptions {
  std::string endpoint;               // e.g. "tcp://127.0.0.1:5555"
  std::optional<CurveKeyPair> curve;  // client keys; nullopt = no security
  std::string server_public_key;      // Z85; required with curve
  // Replies are checked against it; Send refuses messages over it (the server uses the same
  // defaults: keep both sides' limits equal). MAXMSGSIZE as for ServerOptions.
  Limits limits;
  int heartbeat_ivl_ms = 2000, heartbeat_timeout_ms = 6000, heartbeat_ttl_ms = 6000;
  // libzmq's automatic reconnection: first retry after 100 ms, doubling up to 30 s.
  int reconnect_ivl_ms = 100, reconnect_ivl_max_ms = 30000;
  int sndhwm = 1000, rcvhwm = 1000;
  int linger_ms = 0;  // frames: 0; control socket: at most 1000
};

struct ClientStats {
  uint64_t received = 0;            // valid messages returned by Receive
  uint64_t malformed = 0;           // replies refused by DecodeFrames (skipped)
  uint64_t sent = 0;                // messages accepted by Send
  uint64_t send_failed = 0;         // Send refused (not connected, pipe full, over the limits)
  uint64_t reconnects = 0;          // successful handshakes after the first one (incl. after Reconnect)
  uint64_t handshake_failures = 0;  // CURVE/ZAP handshakes that failed (e.g. key not allowed)
};

// DEALER with IMMEDIATE=1: one per edge socket (frames, control).
class Client {
 public:
  // InvalidArgument for bad options (endpoint, keys); Internal on a ZeroMQ failure. Connecting is
  // asynchronous: this returns before the server is reached (see connected()).
  static Result<std::unique_ptr<Client>> Connect(Context& context, const ClientOptions& options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Non-blocking; Unavailable when not connected (IMMEDIATE: nothing is queued before the handshake)
  // or the pipe is full; InvalidArgument when over the limits (checked before sending: an oversize
  // message would kill the connection).
  Status Send(const Message& message);
  // Waits up to `timeout` for one valid message; nullopt on timeout. Malformed replies are counted
  // and skipped. Unavailable after Context::Shutdown.
  Result<std::optional<Message>> Receive(std::chrono::milliseconds timeout);
  // Closes and reopens the socket (Lazy Pirate: drops anything queued in either direction).
  Status Reconnect();
  // From a socket monitor: handshake succeeded and not disconnected since. Best effort (a dead
  // peer is noticed after heartbeat_timeout_ms). inproc has no handshake: true from Connect on.
  bool connected() const;
  ClientStats stats() const;

  // Test only: sends raw frames as they are (no encoding, no checks), non-blocking.
  Status TEST_SendRaw(const std::vector<std::string>& frames);

 private:
  // Sends already encoded and checked frames, non-blocking.
  Status SendRaw(const std::vector<std::string>& frames);

  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Operator requests: REP on an ipc:// path, JSON text in and out (wire does not parse it). The file
// permissions are the access control: Bind makes the socket file 0600 (owner only); put it in a
// directory only the daemon's user can write. Requests over 1 MiB are refused by libzmq.
class AdminServer {
 public:
  // InvalidArgument unless the endpoint is ipc://; Unavailable when it cannot be bound.
  static Result<std::unique_ptr<AdminServer>> Bind(Context& context, const std::string& endpoint);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Serves at most one request within `timeout` with handler(request) -> reply. Returns whether one
  // was served. A request of several frames gets {"error":"bad request"}; a handler that throws gets
  // {"error":"internal"} sent back and Internal returned. Unavailable after Context::Shutdown.
  Result<bool> ServeOne(std::chrono::milliseconds timeout,
                        const std::function<std::string(const std::string&)>& handler);

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One request/reply on its own context (for CLI tools). Unavailable on timeout or when the ipc
// socket file does not exist.
Result<std::string> AdminCall(const std::string& endpoint, const std::string& request,
                              std::chrono::milliseconds timeout);

}  // namespace kd::wire

#endif  // KD_WIRE_ENDPOINT_H_
