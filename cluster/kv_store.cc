#include "cluster/kv_store.h"

#include <chrono>
#include <cstring>
#include <dlfcn.h>
#include <mutex>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

namespace kd::cluster {
namespace {

// --- Narrowing the store's listening socket -----------------------------------------------------
// c10d::TCPStore (LibTorch 1.13) makes its listening socket inside its constructor, on the calling
// thread, bound to the wildcard address (`ss -ltn` shows *:PORT) and has no option to choose the
// address. While Serve() constructs the store, this thread-local holds the address asked for, and
// the bind() below, which stands in front of libc's for this process, rewrites a wildcard bind made
// on this thread to that address (same port). Every other bind() goes to libc unchanged.
struct ListenAddress {
  in_addr v4{};
  in6_addr v6{};
  bool is_v6 = false;  // the configured host is an IPv6 address
};
thread_local const ListenAddress* t_listen = nullptr;

using BindFn = int (*)(int, const sockaddr*, socklen_t);

BindFn RealBind() {
  static const BindFn real = reinterpret_cast<BindFn>(dlsym(RTLD_NEXT, "bind"));
  return real;
}

}  // namespace
}  // namespace kd::cluster

extern "C" int bind(int fd, const sockaddr* addr, socklen_t len) {
  using kd::cluster::t_listen;
  const auto real = kd::cluster::RealBind();
  if (t_listen == nullptr || addr == nullptr) return real(fd, addr, len);
  if (addr->sa_family == AF_INET && len >= sizeof(sockaddr_in)) {
    sockaddr_in a;
    std::memcpy(&a, addr, sizeof a);
    if (a.sin_addr.s_addr != htonl(INADDR_ANY)) return real(fd, addr, len);
    if (t_listen->is_v6) {
      errno = EADDRNOTAVAIL;  // an IPv4 socket cannot listen on an IPv6 address: the store tries the next
      return -1;
    }
    a.sin_addr = t_listen->v4;
    return real(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  }
  if (addr->sa_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    sockaddr_in6 a;
    std::memcpy(&a, addr, sizeof a);
    if (std::memcmp(&a.sin6_addr, &in6addr_any, sizeof(in6_addr)) != 0) return real(fd, addr, len);
    if (t_listen->is_v6) {
      a.sin6_addr = t_listen->v6;
    } else {
      // An IPv4 address on a dual-stack socket: its IPv4-mapped form (::ffff:a.b.c.d).
      std::memset(&a.sin6_addr, 0, sizeof(in6_addr));
      a.sin6_addr.s6_addr[10] = 0xff;
      a.sin6_addr.s6_addr[11] = 0xff;
      std::memcpy(&a.sin6_addr.s6_addr[12], &t_listen->v4, 4);
    }
    return real(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
  }
  return real(fd, addr, len);
}

namespace kd::cluster {
namespace {

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }
std::string String(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

// Runs a c10d call; its exceptions (peer gone, timeout) become Unavailable.
template <typename F>
auto Guard(const char* what, F&& f) -> Result<decltype(f())> {
  try {
    return f();
  } catch (const std::exception& e) {
    std::string msg = e.what();
    msg.resize(std::min(msg.size(), msg.find('\n')));
    return Status::Unavailable(std::string("cluster store ") + what + ": " + msg);
  }
}

Status Validate(const KvStoreOptions& o) {
  if (o.port < 0 || o.port > 65535) return Status::InvalidArgument("cluster store: port out of range");
  if (!(o.timeout_s > 0)) return Status::InvalidArgument("cluster store: timeout must be > 0");
  if (o.host.empty()) return Status::InvalidArgument("cluster store: empty host");
  return Status::Ok();
}

c10d::TCPStoreOptions StoreOptions(const KvStoreOptions& o, bool server) {
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(o.port);
  so.isServer = server;
  so.waitWorkers = false;  // membership is ours (cluster/PROTOCOL.md), not a fixed world size
  so.numWorkers = c10::nullopt;
  so.timeout = std::chrono::milliseconds(static_cast<int64_t>(o.timeout_s * 1000));
  return so;
}

}  // namespace

struct KvStore::Impl {
  std::unique_ptr<c10d::TCPStore> store;
  std::mutex mu;  // one request at a time (the client socket is shared)
};

Result<std::unique_ptr<KvStore>> KvStore::Serve(const KvStoreOptions& options) {
  KD_RETURN_IF_ERROR(Validate(options));
  ListenAddress listen;
  if (inet_pton(AF_INET, options.host.c_str(), &listen.v4) != 1) {
    if (inet_pton(AF_INET6, options.host.c_str(), &listen.v6) != 1) {
      return Status::InvalidArgument("cluster store: listen host \"" + options.host +
                                     "\" is not a numeric IPv4 or IPv6 address");
    }
    listen.is_v6 = true;
  }
  auto impl = std::make_unique<Impl>();
  t_listen = &listen;
  // The server's own client connects to `host` too (loopback or the private address).
  auto made =
      Guard("listen", [&] { return std::make_unique<c10d::TCPStore>(options.host, StoreOptions(options, true)); });
  t_listen = nullptr;
  if (!made.ok()) return made.status().WithContext(options.host + ":" + std::to_string(options.port));
  impl->store = std::move(made).value();
  return std::unique_ptr<KvStore>(new KvStore(std::move(impl)));
}

Result<std::unique_ptr<KvStore>> KvStore::Connect(const KvStoreOptions& options) {
  KD_RETURN_IF_ERROR(Validate(options));
  if (options.port == 0) return Status::InvalidArgument("cluster store: connect needs a port");
  auto impl = std::make_unique<Impl>();
  auto made =
      Guard("connect", [&] { return std::make_unique<c10d::TCPStore>(options.host, StoreOptions(options, false)); });
  if (!made.ok()) return made.status().WithContext(options.host + ":" + std::to_string(options.port));
  impl->store = std::move(made).value();
  return std::unique_ptr<KvStore>(new KvStore(std::move(impl)));
}

KvStore::KvStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KvStore::~KvStore() = default;

int KvStore::port() const { return impl_->store->getPort(); }

Status KvStore::Set(const std::string& key, std::string_view value) {
  std::lock_guard lock(impl_->mu);
  return Guard("set",
               [&] {
                 impl_->store->set(key, Bytes(value));
                 return true;
               })
      .status();
}

Result<std::optional<std::string>> KvStore::Get(const std::string& key) {
  std::lock_guard lock(impl_->mu);
  return Guard("get", [&]() -> std::optional<std::string> {
    // get() waits for a missing key until the timeout: ask first. Keys are deleted only by their
    // one consumer (cluster/PROTOCOL.md), so the key cannot vanish in between.
    if (!impl_->store->check({key})) return std::nullopt;
    return String(impl_->store->get(key));
  });
}

Result<int64_t> KvStore::Add(const std::string& key, int64_t delta) {
  std::lock_guard lock(impl_->mu);
  return Guard("add", [&] { return impl_->store->add(key, delta); });
}

Result<std::string> KvStore::CompareSet(const std::string& key, std::string_view expected, std::string_view desired) {
  std::lock_guard lock(impl_->mu);
  return Guard("compareSet", [&] { return String(impl_->store->compareSet(key, Bytes(expected), Bytes(desired))); });
}

Result<bool> KvStore::Delete(const std::string& key) {
  std::lock_guard lock(impl_->mu);
  return Guard("delete", [&] { return impl_->store->deleteKey(key); });
}

}  // namespace kd::cluster
