#include "config/daemon_options.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <type_traits>
#include <utility>

#include <toml++/toml.h>

#include "base/text.h"

namespace kd::config {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

// Shortest round-trip decimal form of a double ("2000", "0.001", "1e+20").
std::string ShortestDouble(double v) {
  if (v == std::trunc(v) && std::abs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));  // 1000000
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return ec == std::errc() ? std::string(buf, end) : std::to_string(v);
}

template <typename T>
std::string Num(T v) {
  if constexpr (std::is_floating_point_v<T>) {
    return ShortestDouble(v);
  } else {
    return std::to_string(v);
  }
}

bool IsValidId(std::string_view s) {
  if (s.empty() || s.size() > 64 || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}
constexpr char kIdRule[] = "must be 1..64 characters of [A-Za-z0-9._-] (not \".\" or \"..\")";

bool IsLogLevel(std::string_view s) {
  return s == "trace" || s == "debug" || s == "info" || s == "warn" || s == "error";
}

bool IsAllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF),
// as TOML requires of a whole document.
bool IsValidUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      n = 1, cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2, cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3, cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i - 1 < n) return false;
    for (size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0u) != 0x80u) return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
      return false;
    i += n + 1;
  }
  return true;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

const char* TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "a date/time";
  }
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

enum class PathKind {
  kFile,      // a plain path ("" stays "")
  kUri,       // source.uri: URLs ("x://") and "v4l2:N" stay as they are
  kOutput,    // output.detections: "-" (stdout) and "" (off) stay as they are
  kEndpoint,  // ZeroMQ endpoint: only the path of ipc:// is resolved
};

std::string ResolvePath(const std::string& v, PathKind kind, const fs::path& base) {
  if (v.empty()) return v;
  switch (kind) {
    case PathKind::kFile:
      break;
    case PathKind::kUri:
      if (v.find("://") != std::string::npos || v.rfind("v4l2:", 0) == 0) return v;
      break;
    case PathKind::kOutput:
      if (v == "-") return v;
      break;
    case PathKind::kEndpoint: {
      constexpr std::string_view kIpc = "ipc://";
      if (v.rfind(kIpc, 0) != 0) return v;
      const std::string rest = v.substr(kIpc.size());
      // "@name" is Linux's abstract namespace, not a file.
      if (rest.empty() || rest[0] == '@' || rest[0] == '/') return v;
      return std::string(kIpc) + (base / rest).lexically_normal().string();
    }
  }
  const fs::path p(v);
  if (p.is_absolute()) return v;
  return (base / p).lexically_normal().string();
}

// ---------------------------------------------------------------------------------------------
// Where values came from: the file or an override. Error messages and relative-path bases
// depend on it.
// ---------------------------------------------------------------------------------------------

struct Override {
  std::string text;  // the override as given ("uplink.kbps=500")
  std::string raw;   // its value text, used verbatim by string keys (absent for inline tables)
  bool has_raw = false;
};

class Sources {
 public:
  std::string file;                           // "" = no file
  fs::path file_dir;                          // base of relative paths from the file
  fs::path cwd;                               // base of relative paths from overrides
  std::map<std::string, Override> overrides;  // by key path ("uplink.kbps", "groups")

  // The override that set `key` (exactly, or a whole array containing it), or null.
  const Override* Find(const std::string& key) const {
    for (const auto& [k, o] : overrides) {
      if (key == k) return &o;
      if (key.size() > k.size() && key.compare(0, k.size(), k) == 0 && (key[k.size()] == '.' || key[k.size()] == '['))
        return &o;
    }
    return nullptr;
  }
  std::string Origin(const std::string& key) const {
    if (const Override* o = Find(key)) return "override '" + o->text + "'";
    return file.empty() ? std::string("(no config file)") : file;
  }
  Status Error(const std::string& key, const std::string& problem) const {
    return Status::InvalidArgument(Origin(key) + ": " + key + ": " + problem);
  }
  const fs::path& BaseFor(const std::string& key) const { return Find(key) ? cwd : file_dir; }
};

// ---------------------------------------------------------------------------------------------
// Reading a table into a struct. Every key read is recorded; the rest are unknown-key errors.
// ---------------------------------------------------------------------------------------------

class Reader {
 public:
  // `table` may be null (the section is absent: every Get keeps the default).
  Reader(const toml::table* table, std::string prefix, const Sources& src)
      : table_(table), prefix_(std::move(prefix)), src_(src) {}

  template <typename T>
  Status Get(const char* key, T* out) {
    known_.insert(key);
    const toml::node* n = table_ ? table_->get(key) : nullptr;
    if (!n) return Status::Ok();
    const std::string path = prefix_ + key;
    if constexpr (std::is_same_v<T, bool>) {
      if (auto v = n->value_exact<bool>()) {
        *out = *v;
        return Status::Ok();
      }
      return WrongType(path, *n, "a boolean");
    } else if constexpr (std::is_integral_v<T>) {
      auto v = n->value_exact<int64_t>();
      if (!v) return WrongType(path, *n, "an integer");
      using Limits = std::numeric_limits<T>;
      const bool fits = std::is_signed_v<T>
                            ? (*v >= static_cast<int64_t>(Limits::min()) && *v <= static_cast<int64_t>(Limits::max()))
                            : (*v >= 0 && static_cast<uint64_t>(*v) <= Limits::max());
      if (!fits)
        return src_.Error(
            path, "out of range: " + Num(*v) + " is not in [" + Num(Limits::min()) + ", " + Num(Limits::max()) + "]");
      *out = static_cast<T>(*v);
      return Status::Ok();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (auto v = n->value<double>(); v && (n->is_floating_point() || n->is_integer())) {
        *out = *v;
        return Status::Ok();
      }
      return WrongType(path, *n, "a number");
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (auto v = n->value_exact<std::string>()) {
        *out = *v;
        return Status::Ok();
      }
      // An override value that parsed as another TOML type is taken verbatim (device_id=123).
      if (auto it = src_.overrides.find(path); it != src_.overrides.end() && it->second.has_raw) {
        *out = it->second.raw;
        return Status::Ok();
      }
      return WrongType(path, *n, "a string");
    } else {
      static_assert(std::is_same_v<T, std::vector<std::string>>);
      const toml::array* arr = n->as_array();
      if (!arr) return WrongType(path, *n, "an array of strings");
      std::vector<std::string> values;
      for (size_t i = 0; i < arr->size(); ++i) {
        auto s = (*arr)[i].value_exact<std::string>();
        if (!s) return WrongType(path + "[" + std::to_string(i) + "]", (*arr)[i], "a string");
        values.push_back(*s);
      }
      *out = std::move(values);
      return Status::Ok();
    }
  }

  // A string holding a path, resolved against the file's directory or the CWD.
  Status GetPath(const char* key, std::string* out, PathKind kind = PathKind::kFile) {
    const bool present = table_ && table_->get(key);
    KD_RETURN_IF_ERROR(Get(key, out));
    if (present) {
      const std::string path = prefix_ + key;
      *out = ResolvePath(*out, kind, src_.BaseFor(path));
    }
    return Status::Ok();
  }
  Status GetPaths(const char* key, std::vector<std::string>* out) {
    const bool present = table_ && table_->get(key);
    KD_RETURN_IF_ERROR(Get(key, out));
    if (present) {
      const fs::path& base = src_.BaseFor(prefix_ + key);
      for (auto& p : *out) p = ResolvePath(p, PathKind::kFile, base);
    }
    return Status::Ok();
  }

  // A sub-table ([section]); *out = null when absent.
  Status Section(const char* key, const toml::table** out) {
    known_.insert(key);
    *out = nullptr;
    const toml::node* n = table_ ? table_->get(key) : nullptr;
    if (!n) return Status::Ok();
    if (!(*out = n->as_table())) return WrongType(prefix_ + key, *n, "a table ([" + prefix_ + key + "])");
    return Status::Ok();
  }
  // An array of tables ([[key]]); *out = null when absent.
  Status TableArray(const char* key, const toml::array** out) {
    known_.insert(key);
    *out = nullptr;
    const toml::node* n = table_ ? table_->get(key) : nullptr;
    if (!n) return Status::Ok();
    const toml::array* arr = n->as_array();
    if (!arr) return WrongType(prefix_ + key, *n, std::string("an array of tables ([[") + key + "]])");
    for (size_t i = 0; i < arr->size(); ++i) {
      if (!(*arr)[i].is_table()) return WrongType(prefix_ + key + "[" + std::to_string(i) + "]", (*arr)[i], "a table");
    }
    *out = arr;
    return Status::Ok();
  }

  Status CheckUnknown() const {
    if (!table_) return Status::Ok();
    for (const auto& [k, _] : *table_) {
      const std::string key(k.str());
      if (!known_.contains(key)) return src_.Error(prefix_ + key, "unknown key");
    }
    return Status::Ok();
  }

 private:
  Status WrongType(const std::string& path, const toml::node& n, const std::string& expected) const {
    return src_.Error(path, std::string("wrong type: expected ") + expected + ", got " + TypeName(n));
  }

  const toml::table* table_;
  std::string prefix_;
  const Sources& src_;
  std::set<std::string> known_;
};

// ---------------------------------------------------------------------------------------------
// Validation: the first failing rule, as (key path, problem).
// ---------------------------------------------------------------------------------------------

class Checker {
 public:
  bool failed() const { return failed_; }
  const std::string& key() const { return key_; }
  const std::string& problem() const { return problem_; }

  void Fail(const std::string& key, const std::string& problem) {
    if (failed_) return;
    failed_ = true;
    key_ = key;
    problem_ = problem;
  }
  void Require(bool ok, const std::string& key, const std::string& problem) {
    if (!ok) Fail(key, problem);
  }
  template <typename T>
  void Range(const std::string& key, T v, T lo, T hi) {
    if (!(v >= lo && v <= hi)) Fail(key, "out of range: " + Num(v) + " is not in [" + Num(lo) + ", " + Num(hi) + "]");
  }
  template <typename T>
  void AtLeast(const std::string& key, T v, T lo) {
    if (!(v >= lo)) Fail(key, "out of range: " + Num(v) + " must be >= " + Num(lo));
  }
  void MultipleOf32(const std::string& key, int v, int lo, int hi) {
    if (!(v >= lo && v <= hi && v % 32 == 0))
      Fail(key, "out of range: " + Num(v) + " is not a multiple of 32 in [" + Num(lo) + ", " + Num(hi) + "]");
  }
  void Required(const std::string& key, const std::string& v) {
    if (v.empty()) Fail(key, "missing required key");
  }
  void Id(const std::string& key, const std::string& v) {
    if (!IsValidId(v)) Fail(key, "invalid id \"" + v + "\": " + kIdRule);
  }
  void Endpoint(const std::string& key, const std::string& v) {
    if (v.find("://") == std::string::npos || v.size() <= v.find("://") + 3)
      Fail(key, "\"" + v + "\" is not a ZeroMQ endpoint (tcp://host:port, ipc://path, inproc://name)");
  }
  void LogLevel(const std::string& key, const std::string& v) {
    if (!IsLogLevel(v)) Fail(key, "\"" + v + "\" is not one of trace, debug, info, warn, error");
  }
  Status ToStatus() const { return failed_ ? Status::InvalidArgument(key_ + ": " + problem_) : Status::Ok(); }

 private:
  bool failed_ = false;
  std::string key_, problem_;
};

// tcp://127.0.0.1:P, tcp://localhost:P, tcp://[::1]:P, ipc:// and inproc:// (not tcp://*:P or a
// host's address).
bool IsLoopbackEndpoint(const std::string& ep) {
  for (const char* prefix : {"ipc://", "inproc://", "tcp://127.0.0.1:", "tcp://localhost:", "tcp://[::1]:"}) {
    if (ep.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

// Unsigned options must fit a TOML integer (signed 64-bit) so that ToToml loads back.
constexpr uint64_t kMaxTomlInt = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

void Check(const EdgeOptions& o, Checker& c) {
  if (o.device_id.empty()) c.Required("device_id", o.device_id);
  c.Id("device_id", o.device_id);

  const EdgeSourceOptions& s = o.source;
  c.Required("source.uri", s.uri);
  c.AtLeast("source.passes", s.passes, 0);
  c.Range("source.fps", s.fps, 0.0, 240.0);
  c.AtLeast<int64_t>("source.begin", s.begin, 0);
  c.Require(s.end == 0 || s.end > s.begin, "source.end",
            "must be 0 (to the end) or > source.begin (" + Num(s.begin) + "), got " + Num(s.end));
  for (size_t i = 0; i < s.pass_effects.size(); ++i) {
    auto e = ParsePassEffect(s.pass_effects[i]);
    if (!e.ok()) c.Fail("source.pass_effects[" + std::to_string(i) + "]", e.status().message());
  }

  const EdgeModelOptions& m = o.model;
  c.Required("model.dir", m.dir);
  c.Range<uint64_t>("model.bootstrap_version", m.bootstrap_version, 1, kMaxTomlInt);
  c.Range("model.threads", m.threads, 1, 64);
  c.Range("model.score_threshold", m.score_threshold, 0.0, 1.0);

  const EdgeLearnerOptions& l = o.learner;
  c.Endpoint("learner.frames_endpoint", l.frames_endpoint);
  c.Endpoint("learner.control_endpoint", l.control_endpoint);
  if (!l.insecure) {
    c.Require(!l.server_key.empty(), "learner.server_key",
              "missing required key (the learner's CURVE public key; plaintext needs learner.insecure = true)");
    c.Require(!l.client_key.empty(), "learner.client_key",
              "missing required key (this device's CURVE secret key; plaintext needs learner.insecure = true)");
  }
  c.Require(l.server_key.empty() || !l.client_key.empty(), "learner.client_key",
            "missing: CURVE (learner.server_key set) needs this device's secret key too");
  c.Range("learner.heartbeat_ms", l.heartbeat_ms, 100, 60000);
  c.Require(l.timeout_ms > l.heartbeat_ms && l.timeout_ms <= 600000, "learner.timeout_ms",
            "out of range: " + Num(l.timeout_ms) + " must be > learner.heartbeat_ms (" + Num(l.heartbeat_ms) +
                ") and <= 600000");
  c.Range("learner.reconnect_max_ms", l.reconnect_max_ms, 100, 600000);

  const EdgeUplinkOptions& u = o.uplink;
  c.Range("uplink.kbps", u.kbps, 1.0, 1e6);
  c.Range("uplink.max_fps", u.max_fps, 0.01, 120.0);
  c.Range("uplink.jpeg_quality", u.jpeg_quality, 10, 100);
  c.Require(u.max_long_side == 0 || (u.max_long_side >= 64 && u.max_long_side <= 8192), "uplink.max_long_side",
            "out of range: " + Num(u.max_long_side) + " must be 0 (keep) or in [64, 8192]");
  c.Range("uplink.max_jpeg_bytes", u.max_jpeg_bytes, 4096, 8388608);
  c.Range("uplink.buffer_frames", u.buffer_frames, 1, 100000);
  c.Range("uplink.resend_after_ms", u.resend_after_ms, 100, 600000);

  const EdgeUpdateOptions& up = o.update;
  c.Require(!up.trusted_keys.empty(), "update.trusted_keys",
            "missing required key (ed25519 public keys that sign updates; updates are always signed, "
            "learner.insecure only turns transport encryption off)");
  for (size_t i = 0; i < up.trusted_keys.size(); ++i)
    c.Require(!up.trusted_keys[i].empty(), "update.trusted_keys[" + std::to_string(i) + "]", "empty path");
  c.Range("update.probation_frames", up.probation_frames, 1, 1000000);
  c.Range("update.probation_seconds", up.probation_seconds, 0.0, 3600.0);
  c.Range("update.max_latency_ratio", up.max_latency_ratio, 1.0, 100.0);
  c.Range("update.max_trial_starts", up.max_trial_starts, 1, 100);
  c.Range("update.download_window", up.download_window, 1, 64);

  c.Range("output.status_interval_ms", o.output.status_interval_ms, 100, 600000);
  c.LogLevel("output.log_level", o.output.log_level);
}

bool IsTrainingDevice(const std::string& d) {
  return d == "auto" || d == "cpu" || d == "cuda" || (d.rfind("cuda:", 0) == 0 && IsAllDigits(d.substr(5)));
}

void Check(const LearnerOptions& o, Checker& c) {
  c.Required("store.path", o.store.path);  // the one required key is reported before any other problem
  const LearnerServerOptions& s = o.server;
  c.Endpoint("server.frames_endpoint", s.frames_endpoint);
  c.Endpoint("server.control_endpoint", s.control_endpoint);
  c.Require(s.admin_endpoint.empty() || (s.admin_endpoint.rfind("ipc://", 0) == 0 && s.admin_endpoint.size() > 6),
            "server.admin_endpoint", "\"" + s.admin_endpoint + "\" must be an ipc:// endpoint (or empty)");
  c.Require(s.insecure || !s.secret_key.empty(), "server.secret_key",
            "missing required key (the learner's CURVE secret key; plaintext needs server.insecure = true)");
  if (s.insecure) {
    // Plaintext sockets accept frames from anyone who can reach them: loopback only.
    c.Require(IsLoopbackEndpoint(s.frames_endpoint), "server.frames_endpoint",
              "\"" + s.frames_endpoint +
                  "\" is not a loopback address: server.insecure = true (plaintext) binds only to 127.0.0.1, "
                  "[::1], localhost or ipc://; use CURVE (server.secret_key) to serve other hosts");
    c.Require(IsLoopbackEndpoint(s.control_endpoint), "server.control_endpoint",
              "\"" + s.control_endpoint +
                  "\" is not a loopback address: server.insecure = true (plaintext) binds only to 127.0.0.1, "
                  "[::1], localhost or ipc://; use CURVE (server.secret_key) to serve other hosts");
  }
  c.Range("server.credits", s.credits, 1, 4096);
  c.Range("server.max_frame_bytes", s.max_frame_bytes, 65536, 67108864);
  c.Range("server.heartbeat_ms", s.heartbeat_ms, 100, 60000);
  c.Require(s.timeout_ms > s.heartbeat_ms && s.timeout_ms <= 600000, "server.timeout_ms",
            "out of range: " + Num(s.timeout_ms) + " must be > server.heartbeat_ms (" + Num(s.heartbeat_ms) +
                ") and <= 600000");

  c.Range<uint64_t>("store.max_bytes", o.store.max_bytes, 4ull << 20, kMaxTomlInt);
  c.Range<uint64_t>("store.ttl_seconds", o.store.ttl_seconds, 0, kMaxTomlInt);

  const LearnerTeacherOptions& t = o.teacher;
  c.MultipleOf32("teacher.long_side", t.long_side, 128, 1024);
  c.Range("teacher.batch", t.batch, 1, 256);
  c.Range("teacher.min_score", t.min_score, 0.0, 1.0);
  c.Range("teacher.threads", t.threads, 0, 64);

  const LearnerTrainingOptions& tr = o.training;
  c.Require(IsTrainingDevice(tr.device), "training.device",
            "\"" + tr.device + "\" is not one of auto, cpu, cuda, cuda:N");
  c.Range("training.threads", tr.threads, 1, 256);
  c.Range("training.round_iterations", tr.round_iterations, 1, 1000000);
  c.Range("training.round_frames", tr.round_frames, 8, 100000);
  c.AtLeast("training.min_frames", tr.min_frames, 1);
  c.Range("training.replay_capacity", tr.replay_capacity, 1, 10000000);
  c.Range("training.fresh_window", tr.fresh_window, 1, 10000000);
  c.Range("training.fresh_fraction", tr.fresh_fraction, 0.0, 1.0);
  c.MultipleOf32("training.student_long_side", tr.student_long_side, 64, 1024);
  c.Range<uint64_t>("training.seed", tr.seed, 0, kMaxTomlInt);

  const LearnerGateOptions& g = o.gate;
  c.Range("gate.holdout_every", g.holdout_every, 2, 1000);
  c.Range("gate.holdout_window", g.holdout_window, 1, 100000);
  c.Require(
      g.min_holdout >= 1 && g.min_holdout <= g.holdout_window, "gate.min_holdout",
      "out of range: " + Num(g.min_holdout) + " is not in [1, gate.holdout_window = " + Num(g.holdout_window) + "]");
  c.Range("gate.margin", g.margin, -1.0, 1.0);
  c.Range("gate.gt_min_score", g.gt_min_score, 0.0, 1.0);

  const LearnerPublishOptions& p = o.publish;
  c.Require(!p.signing_key.empty(), "publish.signing_key",
            "missing required key (the ed25519 secret key that signs updates; updates are always signed, "
            "server.insecure only turns transport encryption off)");
  c.Range("publish.manifest_ttl_s", p.manifest_ttl_s, 60, 31536000);
  c.Range("publish.chunk_bytes", p.chunk_bytes, 4096, 4194304);
  c.Range("publish.delta_min_abs_change", p.delta_min_abs_change, 0.0, 1.0);
  c.Require(p.delta_max_fraction > 0 && p.delta_max_fraction <= 1, "publish.delta_max_fraction",
            "out of range: " + Num(p.delta_max_fraction) + " is not in (0, 1]");
  c.Range("publish.keep_versions", p.keep_versions, 1, 100);

  const LearnerRolloutOptions& r = o.rollout;
  if (!r.canary.empty()) c.Id("rollout.canary", r.canary);
  c.Range("rollout.canary_probation_s", r.canary_probation_s, 0.0, 86400.0);
  c.Range("rollout.failure_threshold", r.failure_threshold, 1, 1000);

  std::map<std::string, std::string> group_of;  // device -> group
  std::set<std::string> group_names;
  for (size_t i = 0; i < o.groups.size(); ++i) {
    const LearnerGroupOptions& gr = o.groups[i];
    const std::string key = "groups[" + std::to_string(i) + "]";
    c.Id(key + ".name", gr.name);
    c.Require(group_names.insert(gr.name).second, key + ".name", "duplicate group name \"" + gr.name + "\"");
    c.Require(!gr.devices.empty(), key + ".devices", "a group needs at least one device");
    for (size_t j = 0; j < gr.devices.size(); ++j) {
      const std::string dkey = key + ".devices[" + std::to_string(j) + "]";
      c.Id(dkey, gr.devices[j]);
      auto [it, inserted] = group_of.emplace(gr.devices[j], gr.name);
      if (!inserted) {
        c.Fail(dkey, it->second == gr.name
                         ? "device \"" + gr.devices[j] + "\" is listed twice in group \"" + gr.name + "\""
                         : "device \"" + gr.devices[j] + "\" is in two groups: \"" + it->second + "\" and \"" +
                               gr.name + "\"");
      }
    }
  }
  std::set<std::string> ids;
  for (size_t i = 0; i < o.devices.size(); ++i) {
    const LearnerDeviceOptions& d = o.devices[i];
    const std::string key = "devices[" + std::to_string(i) + "]";
    c.Id(key + ".id", d.id);
    c.Require(ids.insert(d.id).second, key + ".id", "duplicate device id \"" + d.id + "\"");
    c.Require(s.insecure || !d.key.empty(), key + ".key",
              "missing required key (the device's CURVE public key; none needs server.insecure = true)");
  }

  c.LogLevel("log.level", o.log.level);
}

// ---------------------------------------------------------------------------------------------
// Reading the tables
// ---------------------------------------------------------------------------------------------

Status Read(const toml::table& root, const Sources& src, EdgeOptions* o) {
  Reader r(&root, "", src);
  KD_RETURN_IF_ERROR(r.Get("device_id", &o->device_id));
  const toml::table* t = nullptr;

  KD_RETURN_IF_ERROR(r.Section("source", &t));
  {
    Reader s(t, "source.", src);
    EdgeSourceOptions& x = o->source;
    KD_RETURN_IF_ERROR(s.GetPath("uri", &x.uri, PathKind::kUri));
    KD_RETURN_IF_ERROR(s.Get("loop", &x.loop));
    KD_RETURN_IF_ERROR(s.Get("passes", &x.passes));
    KD_RETURN_IF_ERROR(s.Get("realtime", &x.realtime));
    KD_RETURN_IF_ERROR(s.Get("fps", &x.fps));
    KD_RETURN_IF_ERROR(s.Get("begin", &x.begin));
    KD_RETURN_IF_ERROR(s.Get("end", &x.end));
    KD_RETURN_IF_ERROR(s.Get("pass_effects", &x.pass_effects));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.Section("model", &t));
  {
    Reader s(t, "model.", src);
    EdgeModelOptions& x = o->model;
    KD_RETURN_IF_ERROR(s.GetPath("dir", &x.dir));
    KD_RETURN_IF_ERROR(s.GetPath("bootstrap", &x.bootstrap));
    KD_RETURN_IF_ERROR(s.Get("bootstrap_version", &x.bootstrap_version));
    KD_RETURN_IF_ERROR(s.Get("threads", &x.threads));
    KD_RETURN_IF_ERROR(s.Get("score_threshold", &x.score_threshold));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.Section("learner", &t));
  {
    Reader s(t, "learner.", src);
    EdgeLearnerOptions& x = o->learner;
    KD_RETURN_IF_ERROR(s.GetPath("frames_endpoint", &x.frames_endpoint, PathKind::kEndpoint));
    KD_RETURN_IF_ERROR(s.GetPath("control_endpoint", &x.control_endpoint, PathKind::kEndpoint));
    KD_RETURN_IF_ERROR(s.GetPath("server_key", &x.server_key));
    KD_RETURN_IF_ERROR(s.GetPath("client_key", &x.client_key));
    KD_RETURN_IF_ERROR(s.Get("insecure", &x.insecure));
    KD_RETURN_IF_ERROR(s.Get("heartbeat_ms", &x.heartbeat_ms));
    KD_RETURN_IF_ERROR(s.Get("timeout_ms", &x.timeout_ms));
    KD_RETURN_IF_ERROR(s.Get("reconnect_max_ms", &x.reconnect_max_ms));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.Section("uplink", &t));
  {
    Reader s(t, "uplink.", src);
    EdgeUplinkOptions& x = o->uplink;
    KD_RETURN_IF_ERROR(s.Get("kbps", &x.kbps));
    KD_RETURN_IF_ERROR(s.Get("max_fps", &x.max_fps));
    KD_RETURN_IF_ERROR(s.Get("jpeg_quality", &x.jpeg_quality));
    KD_RETURN_IF_ERROR(s.Get("max_long_side", &x.max_long_side));
    KD_RETURN_IF_ERROR(s.Get("max_jpeg_bytes", &x.max_jpeg_bytes));
    KD_RETURN_IF_ERROR(s.Get("buffer_frames", &x.buffer_frames));
    KD_RETURN_IF_ERROR(s.Get("resend_after_ms", &x.resend_after_ms));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.Section("update", &t));
  {
    Reader s(t, "update.", src);
    EdgeUpdateOptions& x = o->update;
    KD_RETURN_IF_ERROR(s.GetPaths("trusted_keys", &x.trusted_keys));
    KD_RETURN_IF_ERROR(s.Get("probation_frames", &x.probation_frames));
    KD_RETURN_IF_ERROR(s.Get("probation_seconds", &x.probation_seconds));
    KD_RETURN_IF_ERROR(s.Get("max_latency_ratio", &x.max_latency_ratio));
    KD_RETURN_IF_ERROR(s.Get("max_trial_starts", &x.max_trial_starts));
    KD_RETURN_IF_ERROR(s.Get("download_window", &x.download_window));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.Section("output", &t));
  {
    Reader s(t, "output.", src);
    EdgeOutputOptions& x = o->output;
    KD_RETURN_IF_ERROR(s.GetPath("detections", &x.detections, PathKind::kOutput));
    KD_RETURN_IF_ERROR(s.Get("status_interval_ms", &x.status_interval_ms));
    KD_RETURN_IF_ERROR(s.Get("log_level", &x.log_level));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  return r.CheckUnknown();
}

Status Read(const toml::table& root, const Sources& src, LearnerOptions* o) {
  Reader r(&root, "", src);
  const toml::table* t = nullptr;

  KD_RETURN_IF_ERROR(r.Section("server", &t));
  {
    Reader s(t, "server.", src);
    LearnerServerOptions& x = o->server;
    KD_RETURN_IF_ERROR(s.GetPath("frames_endpoint", &x.frames_endpoint, PathKind::kEndpoint));
    KD_RETURN_IF_ERROR(s.GetPath("control_endpoint", &x.control_endpoint, PathKind::kEndpoint));
    KD_RETURN_IF_ERROR(s.GetPath("admin_endpoint", &x.admin_endpoint, PathKind::kEndpoint));
    KD_RETURN_IF_ERROR(s.GetPath("secret_key", &x.secret_key));
    KD_RETURN_IF_ERROR(s.Get("insecure", &x.insecure));
    KD_RETURN_IF_ERROR(s.Get("credits", &x.credits));
    KD_RETURN_IF_ERROR(s.Get("max_frame_bytes", &x.max_frame_bytes));
    KD_RETURN_IF_ERROR(s.Get("heartbeat_ms", &x.heartbeat_ms));
    KD_RETURN_IF_ERROR(s.Get("timeout_ms", &x.timeout_ms));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.Section("store", &t));
  {
    Reader s(t, "store.", src);
    LearnerStoreOptions& x = o->store;
    KD_RETURN_IF_ERROR(s.GetPath("path", &x.path));
    KD_RETURN_IF_ERROR(s.Get("max_bytes", &x.max_bytes));
    KD_RETURN_IF_ERROR(s.Get("ttl_seconds", &x.ttl_seconds));
    KD_RETURN_IF_ERROR(s.Get("sync_writes", &x.sync_writes));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.Section("teacher", &t));
  {
    Reader s(t, "teacher.", src);
    LearnerTeacherOptions& x = o->teacher;
    KD_RETURN_IF_ERROR(s.GetPath("model", &x.model));
    KD_RETURN_IF_ERROR(s.Get("long_side", &x.long_side));
    KD_RETURN_IF_ERROR(s.Get("batch", &x.batch));
    KD_RETURN_IF_ERROR(s.Get("min_score", &x.min_score));
    KD_RETURN_IF_ERROR(s.Get("threads", &x.threads));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.Section("training", &t));
  {
    Reader s(t, "training.", src);
    LearnerTrainingOptions& x = o->training;
    KD_RETURN_IF_ERROR(s.GetPath("recipe", &x.recipe));
    KD_RETURN_IF_ERROR(s.Get("device", &x.device));
    KD_RETURN_IF_ERROR(s.Get("threads", &x.threads));
    KD_RETURN_IF_ERROR(s.GetPath("bootstrap", &x.bootstrap));
    KD_RETURN_IF_ERROR(s.Get("round_iterations", &x.round_iterations));
    KD_RETURN_IF_ERROR(s.Get("round_frames", &x.round_frames));
    KD_RETURN_IF_ERROR(s.Get("min_frames", &x.min_frames));
    KD_RETURN_IF_ERROR(s.Get("replay_capacity", &x.replay_capacity));
    KD_RETURN_IF_ERROR(s.Get("fresh_window", &x.fresh_window));
    KD_RETURN_IF_ERROR(s.Get("fresh_fraction", &x.fresh_fraction));
    KD_RETURN_IF_ERROR(s.Get("student_long_side", &x.student_long_side));
    KD_RETURN_IF_ERROR(s.Get("seed", &x.seed));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.Section("gate", &t));
  {
    Reader s(t, "gate.", src);
    LearnerGateOptions& x = o->gate;
    KD_RETURN_IF_ERROR(s.Get("holdout_every", &x.holdout_every));
    KD_RETURN_IF_ERROR(s.Get("holdout_window", &x.holdout_window));
    KD_RETURN_IF_ERROR(s.Get("min_holdout", &x.min_holdout));
    KD_RETURN_IF_ERROR(s.Get("margin", &x.margin));
    KD_RETURN_IF_ERROR(s.Get("gt_min_score", &x.gt_min_score));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.Section("publish", &t));
  {
    Reader s(t, "publish.", src);
    LearnerPublishOptions& x = o->publish;
    KD_RETURN_IF_ERROR(s.GetPath("signing_key", &x.signing_key));
    KD_RETURN_IF_ERROR(s.Get("manifest_ttl_s", &x.manifest_ttl_s));
    KD_RETURN_IF_ERROR(s.Get("chunk_bytes", &x.chunk_bytes));
    KD_RETURN_IF_ERROR(s.Get("delta_min_abs_change", &x.delta_min_abs_change));
    KD_RETURN_IF_ERROR(s.Get("delta_max_fraction", &x.delta_max_fraction));
    KD_RETURN_IF_ERROR(s.Get("keep_versions", &x.keep_versions));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.Section("rollout", &t));
  {
    Reader s(t, "rollout.", src);
    LearnerRolloutOptions& x = o->rollout;
    KD_RETURN_IF_ERROR(s.Get("auto", &x.auto_start));
    KD_RETURN_IF_ERROR(s.Get("canary", &x.canary));
    KD_RETURN_IF_ERROR(s.Get("canary_probation_s", &x.canary_probation_s));
    KD_RETURN_IF_ERROR(s.Get("failure_threshold", &x.failure_threshold));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  const toml::array* arr = nullptr;
  KD_RETURN_IF_ERROR(r.TableArray("groups", &arr));
  if (arr) {
    o->groups.clear();
    for (size_t i = 0; i < arr->size(); ++i) {
      Reader s((*arr)[i].as_table(), "groups[" + std::to_string(i) + "].", src);
      LearnerGroupOptions g;
      KD_RETURN_IF_ERROR(s.Get("name", &g.name));
      KD_RETURN_IF_ERROR(s.Get("devices", &g.devices));
      KD_RETURN_IF_ERROR(s.CheckUnknown());
      o->groups.push_back(std::move(g));
    }
  }
  KD_RETURN_IF_ERROR(r.TableArray("devices", &arr));
  if (arr) {
    o->devices.clear();
    for (size_t i = 0; i < arr->size(); ++i) {
      Reader s((*arr)[i].as_table(), "devices[" + std::to_string(i) + "].", src);
      LearnerDeviceOptions d;
      KD_RETURN_IF_ERROR(s.Get("id", &d.id));
      KD_RETURN_IF_ERROR(s.GetPath("key", &d.key));
      KD_RETURN_IF_ERROR(s.CheckUnknown());
      o->devices.push_back(std::move(d));
    }
  }
  KD_RETURN_IF_ERROR(r.Section("log", &t));
  {
    Reader s(t, "log.", src);
    KD_RETURN_IF_ERROR(s.Get("level", &o->log.level));
    KD_RETURN_IF_ERROR(s.CheckUnknown());
  }
  return r.CheckUnknown();
}

// ---------------------------------------------------------------------------------------------
// Overrides
// ---------------------------------------------------------------------------------------------

// Sets root[path] = node, creating tables on the way; inline tables are merged key by key so that
// each leaf is recorded as overridden (and the file's other keys in that section stay).
Status SetLeaf(toml::table& root, const std::vector<std::string>& path, toml::node&& node, const Override& ov,
               Sources* src) {
  toml::table* t = &root;
  std::string key_path;
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    key_path += (i ? "." : "") + path[i];
    toml::node* n = t->get(path[i]);
    if (!n) n = &t->insert_or_assign(path[i], toml::table{}).first->second;
    if (!(t = n->as_table()))
      return Status::InvalidArgument("override '" + ov.text + "': " + key_path + " is " + TypeName(*n) +
                                     ", not a table (set a whole array of tables as name=[{...}, ...])");
  }
  key_path += (path.size() > 1 ? "." : "") + path.back();
  if (toml::table* inline_table = node.as_table()) {
    for (auto&& [k, v] : *inline_table) {
      std::vector<std::string> sub = path;
      sub.emplace_back(k.str());
      Override leaf{ov.text, "", false};
      KD_RETURN_IF_ERROR(SetLeaf(root, sub, std::move(v), leaf, src));
    }
    return Status::Ok();
  }
  std::move(node).visit([&](auto&& concrete) { t->insert_or_assign(path.back(), std::move(concrete)); });
  src->overrides[key_path] = ov;
  return Status::Ok();
}

Status ApplyOverride(const std::string& text, toml::table& root, Sources* src) {
  // A config file is UTF-8 (the TOML parser refuses anything else); so is an override, whose bare
  // strings would otherwise reach the options, and ToToml's output, unchecked.
  if (!IsValidUtf8(text)) return Status::InvalidArgument("override '" + PrintableBytes(text) + "': not valid UTF-8");
  const size_t eq = text.find('=');
  const std::string key = eq == std::string::npos ? "" : Trim(std::string_view(text).substr(0, eq));
  if (key.empty())
    return Status::InvalidArgument("override '" + text + "': expected section.key=value (e.g. uplink.kbps=500)");
  std::vector<std::string> path;
  for (size_t b = 0;;) {
    const size_t dot = key.find('.', b);
    path.push_back(key.substr(b, dot == std::string::npos ? std::string::npos : dot - b));
    if (path.back().empty()) return Status::InvalidArgument("override '" + text + "': empty key in '" + key + "'");
    if (dot == std::string::npos) break;
    b = dot + 1;
  }
  const std::string raw = Trim(std::string_view(text).substr(eq + 1));
  // A TOML value if it parses as exactly one; otherwise a bare string.
  toml::table parsed;
  bool is_toml = false;
  try {
    parsed = toml::parse("v = " + raw);
    is_toml = parsed.size() == 1 && parsed.get("v") != nullptr;
  } catch (const toml::parse_error&) {
  }
  toml::node* value = is_toml ? parsed.get("v") : nullptr;
  if (value) return SetLeaf(root, path, std::move(*value), Override{text, raw, true}, src);
  toml::value<std::string> bare(raw);
  return SetLeaf(root, path, std::move(bare), Override{text, raw, true}, src);
}

// Parses `text` (the content of the config file `path`; nullopt = no file), applies the overrides,
// reads and validates.
template <typename Options>
Result<Options> Parse(std::optional<std::string_view> text, const std::string& path,
                      const std::vector<std::string>& overrides) {
  Sources src;
  std::error_code ec;
  src.cwd = fs::current_path(ec);
  src.file_dir = src.cwd;
  toml::table root;
  if (text.has_value()) {
    src.file = path;
    src.file_dir = (src.cwd / fs::path(path)).lexically_normal().parent_path();
    try {
      root = toml::parse(*text, path);
    } catch (const toml::parse_error& e) {
      std::ostringstream msg;
      msg << path << ":" << e.source().begin.line << ":" << e.source().begin.column
          << ": TOML parse error: " << e.description();
      return Status::InvalidArgument(msg.str());
    }
  }
  for (const std::string& o : overrides) KD_RETURN_IF_ERROR(ApplyOverride(o, root, &src));

  Options options;
  KD_RETURN_IF_ERROR(Read(root, src, &options));
  if constexpr (std::is_same_v<Options, LearnerOptions>) {
    if (options.server.admin_endpoint.empty() && !options.store.path.empty())
      options.server.admin_endpoint = AdminEndpoint(options);
  }
  Checker c;
  Check(options, c);
  if (c.failed()) return src.Error(c.key(), c.problem());
  return options;
}

template <typename Options>
Result<Options> Load(const std::string& path, const std::vector<std::string>& overrides) {
  if (path.empty()) return Parse<Options>(std::nullopt, path, overrides);
  std::ifstream f(path);
  if (!f) return Status::NotFound("cannot open config '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string text = ss.str();
  return Parse<Options>(std::string_view(text), path, overrides);
}

// ---------------------------------------------------------------------------------------------
// Writing TOML
// ---------------------------------------------------------------------------------------------

std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out + "\"";
}

class TomlWriter {
 public:
  void Section(std::string_view header) {
    if (!out_.empty()) out_ += '\n';
    out_ += header;
    out_ += '\n';
  }
  void Str(std::string_view key, std::string_view v) { Line(key, Quote(v)); }
  void Bool(std::string_view key, bool v) { Line(key, v ? "true" : "false"); }
  template <typename T>
  void Int(std::string_view key, T v) {
    Line(key, std::to_string(v));
  }
  void Double(std::string_view key, double v) {
    std::string s = ShortestDouble(v);
    if (s.find_first_of(".eni") == std::string::npos) s += ".0";  // keep it a TOML float
    Line(key, s);
  }
  void Strs(std::string_view key, const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + Quote(v[i]);
    Line(key, s + "]");
  }
  void Comment(std::string_view text) { out_ += "# " + std::string(text) + "\n"; }
  std::string Take() { return std::move(out_); }

 private:
  void Line(std::string_view key, const std::string& value) { out_ += std::string(key) + " = " + value + "\n"; }
  std::string out_;
};

}  // namespace

Result<EdgeOptions> LoadEdgeOptions(const std::string& path, const std::vector<std::string>& overrides) {
  return Load<EdgeOptions>(path, overrides);
}

Result<LearnerOptions> LoadLearnerOptions(const std::string& path, const std::vector<std::string>& overrides) {
  return Load<LearnerOptions>(path, overrides);
}

Result<EdgeOptions> ParseEdgeOptions(std::string_view toml, const std::string& path,
                                     const std::vector<std::string>& overrides) {
  return Parse<EdgeOptions>(toml, path, overrides);
}

Result<LearnerOptions> ParseLearnerOptions(std::string_view toml, const std::string& path,
                                           const std::vector<std::string>& overrides) {
  return Parse<LearnerOptions>(toml, path, overrides);
}

Status Validate(const EdgeOptions& options) {
  Checker c;
  Check(options, c);
  return c.ToStatus();
}

Status Validate(const LearnerOptions& options) {
  Checker c;
  Check(options, c);
  return c.ToStatus();
}

std::string ToToml(const EdgeOptions& o) {
  TomlWriter w;
  w.Comment("kdedge effective configuration");
  w.Str("device_id", o.device_id);
  w.Section("[source]");
  w.Str("uri", o.source.uri);
  w.Bool("loop", o.source.loop);
  w.Int("passes", o.source.passes);
  w.Bool("realtime", o.source.realtime);
  w.Double("fps", o.source.fps);
  w.Int("begin", o.source.begin);
  w.Int("end", o.source.end);
  w.Strs("pass_effects", o.source.pass_effects);
  w.Section("[model]");
  w.Str("dir", o.model.dir);
  w.Str("bootstrap", o.model.bootstrap);
  w.Int("bootstrap_version", o.model.bootstrap_version);
  w.Int("threads", o.model.threads);
  w.Double("score_threshold", o.model.score_threshold);
  w.Section("[learner]");
  w.Str("frames_endpoint", o.learner.frames_endpoint);
  w.Str("control_endpoint", o.learner.control_endpoint);
  w.Str("server_key", o.learner.server_key);
  w.Str("client_key", o.learner.client_key);
  w.Bool("insecure", o.learner.insecure);
  w.Int("heartbeat_ms", o.learner.heartbeat_ms);
  w.Int("timeout_ms", o.learner.timeout_ms);
  w.Int("reconnect_max_ms", o.learner.reconnect_max_ms);
  w.Section("[uplink]");
  w.Double("kbps", o.uplink.kbps);
  w.Double("max_fps", o.uplink.max_fps);
  w.Int("jpeg_quality", o.uplink.jpeg_quality);
  w.Int("max_long_side", o.uplink.max_long_side);
  w.Int("max_jpeg_bytes", o.uplink.max_jpeg_bytes);
  w.Int("buffer_frames", o.uplink.buffer_frames);
  w.Int("resend_after_ms", o.uplink.resend_after_ms);
  w.Section("[update]");
  w.Strs("trusted_keys", o.update.trusted_keys);
  w.Int("probation_frames", o.update.probation_frames);
  w.Double("probation_seconds", o.update.probation_seconds);
  w.Double("max_latency_ratio", o.update.max_latency_ratio);
  w.Int("max_trial_starts", o.update.max_trial_starts);
  w.Int("download_window", o.update.download_window);
  w.Section("[output]");
  w.Str("detections", o.output.detections);
  w.Int("status_interval_ms", o.output.status_interval_ms);
  w.Str("log_level", o.output.log_level);
  return w.Take();
}

std::string ToToml(const LearnerOptions& o) {
  TomlWriter w;
  w.Comment("kdlearnd effective configuration");
  w.Section("[server]");
  w.Str("frames_endpoint", o.server.frames_endpoint);
  w.Str("control_endpoint", o.server.control_endpoint);
  w.Str("admin_endpoint", o.server.admin_endpoint);
  w.Str("secret_key", o.server.secret_key);
  w.Bool("insecure", o.server.insecure);
  w.Int("credits", o.server.credits);
  w.Int("max_frame_bytes", o.server.max_frame_bytes);
  w.Int("heartbeat_ms", o.server.heartbeat_ms);
  w.Int("timeout_ms", o.server.timeout_ms);
  w.Section("[store]");
  w.Str("path", o.store.path);
  w.Int("max_bytes", o.store.max_bytes);
  w.Int("ttl_seconds", o.store.ttl_seconds);
  w.Bool("sync_writes", o.store.sync_writes);
  w.Section("[teacher]");
  w.Str("model", o.teacher.model);
  w.Int("long_side", o.teacher.long_side);
  w.Int("batch", o.teacher.batch);
  w.Double("min_score", o.teacher.min_score);
  w.Int("threads", o.teacher.threads);
  w.Section("[training]");
  w.Str("recipe", o.training.recipe);
  w.Str("device", o.training.device);
  w.Int("threads", o.training.threads);
  w.Str("bootstrap", o.training.bootstrap);
  w.Int("round_iterations", o.training.round_iterations);
  w.Int("round_frames", o.training.round_frames);
  w.Int("min_frames", o.training.min_frames);
  w.Int("replay_capacity", o.training.replay_capacity);
  w.Int("fresh_window", o.training.fresh_window);
  w.Double("fresh_fraction", o.training.fresh_fraction);
  w.Int("student_long_side", o.training.student_long_side);
  w.Int("seed", o.training.seed);
  w.Section("[gate]");
  w.Int("holdout_every", o.gate.holdout_every);
  w.Int("holdout_window", o.gate.holdout_window);
  w.Int("min_holdout", o.gate.min_holdout);
  w.Double("margin", o.gate.margin);
  w.Double("gt_min_score", o.gate.gt_min_score);
  w.Section("[publish]");
  w.Str("signing_key", o.publish.signing_key);
  w.Int("manifest_ttl_s", o.publish.manifest_ttl_s);
  w.Int("chunk_bytes", o.publish.chunk_bytes);
  w.Double("delta_min_abs_change", o.publish.delta_min_abs_change);
  w.Double("delta_max_fraction", o.publish.delta_max_fraction);
  w.Int("keep_versions", o.publish.keep_versions);
  w.Section("[rollout]");
  w.Bool("auto", o.rollout.auto_start);
  w.Str("canary", o.rollout.canary);
  w.Double("canary_probation_s", o.rollout.canary_probation_s);
  w.Int("failure_threshold", o.rollout.failure_threshold);
  w.Section("[log]");
  w.Str("level", o.log.level);
  for (const LearnerGroupOptions& g : o.groups) {
    w.Section("[[groups]]");
    w.Str("name", g.name);
    w.Strs("devices", g.devices);
  }
  for (const LearnerDeviceOptions& d : o.devices) {
    w.Section("[[devices]]");
    w.Str("id", d.id);
    w.Str("key", d.key);
  }
  return w.Take();
}

std::vector<std::string> EnvOverrides(std::string_view prefix, const char* const* envp) {
  std::vector<std::string> out;
  if (!envp) return out;
  for (; *envp; ++envp) {
    const std::string_view entry(*envp);
    const size_t eq = entry.find('=');
    if (eq == std::string_view::npos || eq <= prefix.size() || entry.substr(0, prefix.size()) != prefix) continue;
    std::string key;
    const std::string_view name = entry.substr(prefix.size(), eq - prefix.size());
    for (size_t i = 0; i < name.size(); ++i) {
      if (name[i] == '_' && i + 1 < name.size() && name[i + 1] == '_') {
        key += '.';
        ++i;
      } else {
        key += static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
      }
    }
    out.push_back(key + "=" + std::string(entry.substr(eq + 1)));
  }
  return out;
}

std::string AdminEndpoint(const LearnerOptions& options) {
  if (!options.server.admin_endpoint.empty()) return options.server.admin_endpoint;
  return "ipc://" + (fs::path(options.store.path) / "admin.sock").string();
}

Result<PassEffect> ParsePassEffect(std::string_view spec) {
  const std::string quoted = "\"" + std::string(spec) + "\"";
  if (spec == "none") return PassEffect{};
  const size_t colon = spec.find(':');
  const std::string_view name = spec.substr(0, colon);
  const std::string_view arg = colon == std::string_view::npos ? std::string_view() : spec.substr(colon + 1);
  PassEffect e;
  if (name == "dark" || name == "bright") {
    double f = 0;
    auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), f);
    if (arg.empty() || ec != std::errc() || end != arg.data() + arg.size())
      return Status::InvalidArgument(quoted + ": expected " + std::string(name) + ":F with a number F");
    if (name == "dark") {
      if (!(f > 0 && f <= 1)) return Status::InvalidArgument(quoted + ": dark factor must be in (0, 1]");
      e.kind = PassEffect::Kind::kDark;
    } else {
      if (!(f >= 1 && f <= 4)) return Status::InvalidArgument(quoted + ": bright factor must be in [1, 4]");
      e.kind = PassEffect::Kind::kBright;
    }
    e.factor = f;
    return e;
  }
  if (name == "blur") {
    int k = 0;
    auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), k);
    if (arg.empty() || ec != std::errc() || end != arg.data() + arg.size())
      return Status::InvalidArgument(quoted + ": expected blur:K with an integer K");
    if (k < 3 || k > 31 || k % 2 == 0)
      return Status::InvalidArgument(quoted + ": blur kernel must be odd and in [3, 31]");
    e.kind = PassEffect::Kind::kBlur;
    e.kernel = k;
    return e;
  }
  return Status::InvalidArgument(quoted + ": unknown effect (none, dark:F, bright:F, blur:K)");
}

}  // namespace kd::config
