// KvStore: the key-value store that learner workers and their coordinator share: torch.distributed's
// c10d::TCPStore from LibTorch (the rendezvous store of PyTorch's distributed training), used for
// membership, heartbeats (atomic `add`), fencing (`compareSet`) and round jobs and results
// (cluster/PROTOCOL.md). The coordinator serves it; workers connect to it.
//
// The store has no authentication and no encryption: it is for a private learner network and binds
// to loopback unless told otherwise (cluster/PROTOCOL.md, "Security"). LibTorch 1.13's TCPStore
// server listens on every interface and has no option for the address, so Serve() narrows the one
// listening socket the store opens while it starts to `host` (see kv_store.cc).
//
// Threading: all methods are thread-safe (one request at a time per instance). Failures of the
// peer (connection lost, timeout) are Unavailable; LibTorch's exceptions never leave this module.
#ifndef KD_CLUSTER_KV_STORE_H_
#define KD_CLUSTER_KV_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace kd::cluster {

struct KvStoreOptions {
  std::string host = "127.0.0.1";  // Serve: the address to listen on; Connect: the coordinator's
  int port = 0;                    // Serve: 0 = any free port (see port()). REQUIRES: 0..65535
  double timeout_s = 10;           // connect and per-request timeout (s). REQUIRES: > 0
};

class KvStore {
 public:
  // Hosts the store on options.host:options.port (the coordinator's process).
  static Result<std::unique_ptr<KvStore>> Serve(const KvStoreOptions& options);
  // Connects to a store hosted by another process. Unavailable when nothing answers in time.
  static Result<std::unique_ptr<KvStore>> Connect(const KvStoreOptions& options);
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  int port() const;

  Status Set(const std::string& key, std::string_view value);
  // The value, or nullopt when the key does not exist (never waits for it to appear).
  Result<std::optional<std::string>> Get(const std::string& key);
  // Adds `delta` to the integer at `key` (created as 0) and returns the new value. Atomic.
  Result<int64_t> Add(const std::string& key, int64_t delta);
  // Sets `key` to `desired` if it holds `expected` ("" expected: the key does not exist); returns
  // the value the key holds afterwards (== desired when the swap happened). Atomic.
  Result<std::string> CompareSet(const std::string& key, std::string_view expected, std::string_view desired);
  // True when the key existed.
  Result<bool> Delete(const std::string& key);

  struct Impl;

 private:
  explicit KvStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kd::cluster

#endif  // KD_CLUSTER_KV_STORE_H_
