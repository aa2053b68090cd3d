#include "config/daemon_options.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <type_traits>
#include <utility>

#include "base/host_port.h"
#include "config/daemon_keys.h"
#include "config/option_table.h"
#include "config/toml_reader.h"

namespace kd::config {
namespace {

namespace fs = std::filesystem;
using internal::AtLeast;
using internal::Checker;
using internal::InRange;
using internal::Is;
using internal::Key;
using internal::kMaxTomlInt;
using internal::kNoLimit;
using internal::Num;
using internal::PathKind;
using Kind = internal::Limit::Kind;

// tcp://127.0.0.1:P, tcp://localhost:P, tcp://[::1]:P, ipc:// and inproc:// (not tcp://*:P or a
// host's address).
bool IsLoopbackEndpoint(const std::string& ep) {
  for (const char* prefix : {"ipc://", "inproc://", "tcp://127.0.0.1:", "tcp://localhost:", "tcp://[::1]:"}) {
    if (ep.rfind(prefix, 0) == 0) return true;
  }
  return false;
}

bool IsAllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool IsTrainingDevice(const std::string& d) {
  return d == "auto" || d == "cpu" || d == "cuda" || (d.rfind("cuda:", 0) == 0 && IsAllDigits(d.substr(5)));
}

// ---------------------------------------------------------------------------------------------
// kdedge: one table per section, in file order; an entry is {key, member, limit, path kind, rule}
// (Key in option_table.h). The defaults and the documentation of each key are in daemon_options.h;
// its REQUIRES are the limits and rules here.
// ---------------------------------------------------------------------------------------------

constexpr Key<EdgeOptions> kEdgeRootKeys[] = {
    {"device_id", &EdgeOptions::device_id, Is(Kind::kRequired), PathKind::kNone,
     [](const EdgeOptions& o, const std::string&, Checker& c) { c.Id("device_id", o.device_id); }},
};

constexpr Key<EdgeSourceOptions> kEdgeSourceKeys[] = {
    {"uri", &EdgeSourceOptions::uri, Is(Kind::kRequired), PathKind::kUri},
    {"loop", &EdgeSourceOptions::loop},
    {"passes", &EdgeSourceOptions::passes, AtLeast(0)},
    {"realtime", &EdgeSourceOptions::realtime},
    {"fps", &EdgeSourceOptions::fps, InRange(0.0, 240.0)},
    {"begin", &EdgeSourceOptions::begin, AtLeast(0)},
    {"end", &EdgeSourceOptions::end, kNoLimit, PathKind::kNone,
     [](const EdgeSourceOptions& s, const std::string& p, Checker& c) {
       c.Require(s.end == 0 || s.end > s.begin, p + "end",
                 "must be 0 (to the end) or > source.begin (" + Num(s.begin) + "), got " + Num(s.end));
     }},
    {"pass_effects", &EdgeSourceOptions::pass_effects, kNoLimit, PathKind::kNone,
     [](const EdgeSourceOptions& s, const std::string& p, Checker& c) {
       for (size_t i = 0; i < s.pass_effects.size(); ++i) {
         auto e = ParsePassEffect(s.pass_effects[i]);
         if (!e.ok()) c.Fail(p + "pass_effects[" + std::to_string(i) + "]", e.status().message());
       }
     }},
};

constexpr Key<EdgeModelOptions> kEdgeModelKeys[] = {
    {"dir", &EdgeModelOptions::dir, Is(Kind::kRequired), PathKind::kFile},
    {"bootstrap", &EdgeModelOptions::bootstrap, kNoLimit, PathKind::kFile},
    {"bootstrap_version", &EdgeModelOptions::bootstrap_version, InRange<uint64_t>(1, kMaxTomlInt)},
    {"threads", &EdgeModelOptions::threads, InRange(1, 64)},
    {"score_threshold", &EdgeModelOptions::score_threshold, InRange(0.0, 1.0)},
};

constexpr Key<EdgeLearnerOptions> kEdgeLearnerKeys[] = {
    {"frames_endpoint", &EdgeLearnerOptions::frames_endpoint, Is(Kind::kEndpoint), PathKind::kEndpoint},
    {"control_endpoint", &EdgeLearnerOptions::control_endpoint, Is(Kind::kEndpoint), PathKind::kEndpoint},
    {"server_key", &EdgeLearnerOptions::server_key, kNoLimit, PathKind::kFile,
     [](const EdgeLearnerOptions& l, const std::string& p, Checker& c) {
       c.Require(l.insecure || !l.server_key.empty(), p + "server_key",
                 "missing required key (the learner's CURVE public key; plaintext needs learner.insecure = true)");
     }},
    {"client_key", &EdgeLearnerOptions::client_key, kNoLimit, PathKind::kFile,
     [](const EdgeLearnerOptions& l, const std::string& p, Checker& c) {
       c.Require(l.insecure || !l.client_key.empty(), p + "client_key",
                 "missing required key (this device's CURVE secret key; plaintext needs learner.insecure = true)");
       c.Require(l.server_key.empty() || !l.client_key.empty(), p + "client_key",
                 "missing: CURVE (learner.server_key set) needs this device's secret key too");
     }},
    {"insecure", &EdgeLearnerOptions::insecure},
    {"heartbeat_ms", &EdgeLearnerOptions::heartbeat_ms, InRange(100, 60000)},
    {"timeout_ms", &EdgeLearnerOptions::timeout_ms, kNoLimit, PathKind::kNone,
     [](const EdgeLearnerOptions& l, const std::string& p, Checker& c) {
       c.Require(l.timeout_ms > l.heartbeat_ms && l.timeout_ms <= 600000, p + "timeout_ms",
                 "out of range: " + Num(l.timeout_ms) + " must be > learner.heartbeat_ms (" + Num(l.heartbeat_ms) +
                     ") and <= 600000");
     }},
    {"reconnect_max_ms", &EdgeLearnerOptions::reconnect_max_ms, InRange(100, 600000)},
};

constexpr Key<EdgeUplinkOptions> kEdgeUplinkKeys[] = {
    {"kbps", &EdgeUplinkOptions::kbps, InRange(1.0, 1e6)},
    {"max_fps", &EdgeUplinkOptions::max_fps, InRange(0.01, 120.0)},
    {"burst_frames", &EdgeUplinkOptions::burst_frames, InRange(1, 64)},
    {"jpeg_quality", &EdgeUplinkOptions::jpeg_quality, InRange(10, 100)},
    {"max_long_side", &EdgeUplinkOptions::max_long_side, kNoLimit, PathKind::kNone,
     [](const EdgeUplinkOptions& u, const std::string& p, Checker& c) {
       c.Require(u.max_long_side == 0 || (u.max_long_side >= 64 && u.max_long_side <= 8192), p + "max_long_side",
                 "out of range: " + Num(u.max_long_side) + " must be 0 (keep) or in [64, 8192]");
     }},
    {"max_jpeg_bytes", &EdgeUplinkOptions::max_jpeg_bytes, InRange(4096, 8388608)},
    {"buffer_frames", &EdgeUplinkOptions::buffer_frames, InRange(1, 100000)},
    {"resend_after_ms", &EdgeUplinkOptions::resend_after_ms, InRange(100, 600000)},
};

constexpr Key<EdgeUpdateOptions> kEdgeUpdateKeys[] = {
    {"trusted_keys", &EdgeUpdateOptions::trusted_keys, kNoLimit, PathKind::kFile,
     [](const EdgeUpdateOptions& u, const std::string& p, Checker& c) {
       c.Require(!u.trusted_keys.empty(), p + "trusted_keys",
                 "missing required key (ed25519 public keys that sign updates; updates are always signed, "
                 "learner.insecure only turns transport encryption off)");
       for (size_t i = 0; i < u.trusted_keys.size(); ++i)
         c.Require(!u.trusted_keys[i].empty(), p + "trusted_keys[" + std::to_string(i) + "]", "empty path");
     }},
    {"probation_frames", &EdgeUpdateOptions::probation_frames, InRange(1, 1000000)},
    {"probation_seconds", &EdgeUpdateOptions::probation_seconds, InRange(0.0, 3600.0)},
    {"max_latency_ratio", &EdgeUpdateOptions::max_latency_ratio, InRange(1.0, 100.0)},
    {"max_trial_starts", &EdgeUpdateOptions::max_trial_starts, InRange(1, 100)},
    {"download_window", &EdgeUpdateOptions::download_window, InRange(1, 64)},
};

constexpr Key<EdgeOutputOptions> kEdgeOutputKeys[] = {
    {"detections", &EdgeOutputOptions::detections, kNoLimit, PathKind::kOutput},
    {"status_interval_ms", &EdgeOutputOptions::status_interval_ms, InRange(100, 600000)},
    {"log_level", &EdgeOutputOptions::log_level, Is(Kind::kLogLevel)},
};

// [http] of both daemons: "" (off) or host:port.
constexpr Key<HttpOptions> kHttpKeys[] = {
    {"listen", &HttpOptions::listen, kNoLimit, PathKind::kNone,
     [](const HttpOptions& s, const std::string& p, Checker& c) {
       if (s.listen.empty()) return;
       std::string host;
       int port = 0;
       const Status st = ParseHostPort(s.listen, &host, &port);
       c.Require(st.ok(), p + "listen", st.message() + " (\"\" turns the HTTP server off)");
     }},
};

// The document: sections in file order (reading, checking and writing all follow it).
template <typename O, typename V>
Status VisitEdge(O& o, V& v) {
  KD_RETURN_IF_ERROR(v.Root(o, kEdgeRootKeys));
  KD_RETURN_IF_ERROR(v.Section("source", o.source, kEdgeSourceKeys));
  KD_RETURN_IF_ERROR(v.Section("model", o.model, kEdgeModelKeys));
  KD_RETURN_IF_ERROR(v.Section("learner", o.learner, kEdgeLearnerKeys));
  KD_RETURN_IF_ERROR(v.Section("uplink", o.uplink, kEdgeUplinkKeys));
  KD_RETURN_IF_ERROR(v.Section("update", o.update, kEdgeUpdateKeys));
  KD_RETURN_IF_ERROR(v.Section("output", o.output, kEdgeOutputKeys));
  KD_RETURN_IF_ERROR(v.Section("http", o.http, kHttpKeys));
  return v.Finish();
}

// ---------------------------------------------------------------------------------------------
// kdlearnd
// ---------------------------------------------------------------------------------------------

// Plaintext sockets accept frames from anyone who can reach them: loopback only.
void CheckLoopbackWhenInsecure(const LearnerServerOptions& s, const std::string& p, Checker& c) {
  if (!s.insecure) return;
  c.Require(IsLoopbackEndpoint(s.frames_endpoint), p + "frames_endpoint",
            "\"" + s.frames_endpoint +
                "\" is not a loopback address: server.insecure = true (plaintext) binds only to 127.0.0.1, "
                "[::1], localhost or ipc://; use CURVE (server.secret_key) to serve other hosts");
  c.Require(IsLoopbackEndpoint(s.control_endpoint), p + "control_endpoint",
            "\"" + s.control_endpoint +
                "\" is not a loopback address: server.insecure = true (plaintext) binds only to 127.0.0.1, "
                "[::1], localhost or ipc://; use CURVE (server.secret_key) to serve other hosts");
}

constexpr Key<LearnerServerOptions> kLearnerServerKeys[] = {
    {"frames_endpoint", &LearnerServerOptions::frames_endpoint, Is(Kind::kEndpoint), PathKind::kEndpoint},
    {"control_endpoint", &LearnerServerOptions::control_endpoint, Is(Kind::kEndpoint), PathKind::kEndpoint},
    {"admin_endpoint", &LearnerServerOptions::admin_endpoint, kNoLimit, PathKind::kEndpoint,
     [](const LearnerServerOptions& s, const std::string& p, Checker& c) {
       c.Require(s.admin_endpoint.empty() || (s.admin_endpoint.rfind("ipc://", 0) == 0 && s.admin_endpoint.size() > 6),
                 p + "admin_endpoint", "\"" + s.admin_endpoint + "\" must be an ipc:// endpoint (or empty)");
     }},
    {"secret_key", &LearnerServerOptions::secret_key, kNoLimit, PathKind::kFile,
     [](const LearnerServerOptions& s, const std::string& p, Checker& c) {
       c.Require(s.insecure || !s.secret_key.empty(), p + "secret_key",
                 "missing required key (the learner's CURVE secret key; plaintext needs server.insecure = true)");
     }},
    {"insecure", &LearnerServerOptions::insecure, kNoLimit, PathKind::kNone, &CheckLoopbackWhenInsecure},
    {"credits", &LearnerServerOptions::credits, InRange(1, 4096)},
    {"max_frame_bytes", &LearnerServerOptions::max_frame_bytes, InRange(65536, 67108864)},
    {"heartbeat_ms", &LearnerServerOptions::heartbeat_ms, InRange(100, 60000)},
    {"timeout_ms", &LearnerServerOptions::timeout_ms, kNoLimit, PathKind::kNone,
     [](const LearnerServerOptions& s, const std::string& p, Checker& c) {
       c.Require(s.timeout_ms > s.heartbeat_ms && s.timeout_ms <= 600000, p + "timeout_ms",
                 "out of range: " + Num(s.timeout_ms) + " must be > server.heartbeat_ms (" + Num(s.heartbeat_ms) +
                     ") and <= 600000");
     }},
};

constexpr Key<LearnerStoreOptions> kLearnerStoreKeys[] = {
    {"path", &LearnerStoreOptions::path, Is(Kind::kRequired), PathKind::kFile},
    {"max_bytes", &LearnerStoreOptions::max_bytes, InRange<uint64_t>(4ull << 20, kMaxTomlInt)},
    {"ttl_seconds", &LearnerStoreOptions::ttl_seconds, InRange<uint64_t>(0, kMaxTomlInt)},
    {"sync_writes", &LearnerStoreOptions::sync_writes},
};

constexpr Key<LearnerTeacherOptions> kLearnerTeacherKeys[] = {
    {"model", &LearnerTeacherOptions::model, kNoLimit, PathKind::kFile},
    {"long_side", &LearnerTeacherOptions::long_side, internal::MultipleOf32(128, 1024)},
    {"batch", &LearnerTeacherOptions::batch, InRange(1, 256)},
    {"min_score", &LearnerTeacherOptions::min_score, InRange(0.0, 1.0)},
    {"threads", &LearnerTeacherOptions::threads, InRange(0, 64)},
};

constexpr Key<LearnerTrainingOptions> kLearnerTrainingKeys[] = {
    {"recipe", &LearnerTrainingOptions::recipe, kNoLimit, PathKind::kFile},
    {"device", &LearnerTrainingOptions::device, kNoLimit, PathKind::kNone,
     [](const LearnerTrainingOptions& t, const std::string& p, Checker& c) {
       c.Require(IsTrainingDevice(t.device), p + "device",
                 "\"" + t.device + "\" is not one of auto, cpu, cuda, cuda:N");
     }},
    {"threads", &LearnerTrainingOptions::threads, InRange(1, 256)},
    {"sched_idle", &LearnerTrainingOptions::sched_idle},
    {"nice", &LearnerTrainingOptions::nice, InRange(0, 19)},
    {"yield_above_fps", &LearnerTrainingOptions::yield_above_fps, InRange(0.0, 1e9)},
    {"yield_max_s", &LearnerTrainingOptions::yield_max_s, InRange(0.1, 3600.0)},
    {"bootstrap", &LearnerTrainingOptions::bootstrap, kNoLimit, PathKind::kFile},
    {"round_iterations", &LearnerTrainingOptions::round_iterations, InRange(1, 1000000)},
    {"round_frames", &LearnerTrainingOptions::round_frames, InRange(8, 100000)},
    {"min_frames", &LearnerTrainingOptions::min_frames, AtLeast(1)},
    {"min_new_frames", &LearnerTrainingOptions::min_new_frames, AtLeast(0)},
    {"replay_capacity", &LearnerTrainingOptions::replay_capacity, InRange(1, 10000000)},
    {"fresh_window", &LearnerTrainingOptions::fresh_window, InRange(1, 10000000)},
    {"fresh_fraction", &LearnerTrainingOptions::fresh_fraction, InRange(0.0, 1.0)},
    {"student_long_side", &LearnerTrainingOptions::student_long_side, internal::MultipleOf32(64, 1024)},
    {"seed", &LearnerTrainingOptions::seed, InRange<uint64_t>(0, kMaxTomlInt)},
    {"sparse_rounds", &LearnerTrainingOptions::sparse_rounds},
};

constexpr Key<LearnerGateOptions> kLearnerGateKeys[] = {
    {"holdout_every", &LearnerGateOptions::holdout_every, InRange(2, 1000)},
    {"holdout_span_ms", &LearnerGateOptions::holdout_span_ms, InRange(0, 3600000)},
    {"holdout_window", &LearnerGateOptions::holdout_window, InRange(1, 100000)},
    {"min_holdout", &LearnerGateOptions::min_holdout, kNoLimit, PathKind::kNone,
     [](const LearnerGateOptions& g, const std::string& p, Checker& c) {
       c.Require(g.min_holdout >= 1 && g.min_holdout <= g.holdout_window, p + "min_holdout",
                 "out of range: " + Num(g.min_holdout) +
                     " is not in [1, gate.holdout_window = " + Num(g.holdout_window) + "]");
     }},
    {"margin", &LearnerGateOptions::margin, InRange(-1.0, 1.0)},
    {"gt_min_score", &LearnerGateOptions::gt_min_score, InRange(0.0, 1.0)},
};

constexpr Key<LearnerPublishOptions> kLearnerPublishKeys[] = {
    {"signing_key", &LearnerPublishOptions::signing_key, kNoLimit, PathKind::kFile,
     [](const LearnerPublishOptions& pub, const std::string& p, Checker& c) {
       c.Require(!pub.signing_key.empty(), p + "signing_key",
                 "missing required key (the ed25519 secret key that signs updates; updates are always signed, "
                 "server.insecure only turns transport encryption off)");
     }},
    {"manifest_ttl_s", &LearnerPublishOptions::manifest_ttl_s, InRange(60, 31536000)},
    {"chunk_bytes", &LearnerPublishOptions::chunk_bytes, InRange(4096, 4194304)},
    {"delta_min_abs_change", &LearnerPublishOptions::delta_min_abs_change, InRange(0.0, 1.0)},
    {"delta_max_ap_loss", &LearnerPublishOptions::delta_max_ap_loss, InRange(0.0, 1.0)},
    {"delta_wide_fraction", &LearnerPublishOptions::delta_wide_fraction, InRange(0.0, 1.0)},
    {"delta_max_fraction", &LearnerPublishOptions::delta_max_fraction, kNoLimit, PathKind::kNone,
     [](const LearnerPublishOptions& pub, const std::string& p, Checker& c) {
       c.Require(pub.delta_max_fraction > 0 && pub.delta_max_fraction <= 1, p + "delta_max_fraction",
                 "out of range: " + Num(pub.delta_max_fraction) + " is not in (0, 1]");
     }},
    {"keep_versions", &LearnerPublishOptions::keep_versions, InRange(1, 100)},
};

constexpr Key<LearnerRolloutOptions> kLearnerRolloutKeys[] = {
    {"auto", &LearnerRolloutOptions::auto_start},
    {"canary", &LearnerRolloutOptions::canary, Is(Kind::kOptionalId)},
    {"canary_probation_s", &LearnerRolloutOptions::canary_probation_s, InRange(0.0, 86400.0)},
    {"failure_threshold", &LearnerRolloutOptions::failure_threshold, InRange(1, 1000)},
};

constexpr Key<LearnerScheduleOptions> kLearnerScheduleKeys[] = {
    {"floor_s", &LearnerScheduleOptions::floor_s, InRange(1.0, 86400.0)},
    {"drift_weight", &LearnerScheduleOptions::drift_weight, InRange(0.0, 1000.0)},
    {"drift_threshold", &LearnerScheduleOptions::drift_threshold, InRange(0.0, 100.0)},
    {"stale_weight", &LearnerScheduleOptions::stale_weight, InRange(0.0, 1000.0)},
    {"stale_horizon_s", &LearnerScheduleOptions::stale_horizon_s, InRange(1.0, 31536000.0)},
    {"backoff_after", &LearnerScheduleOptions::backoff_after, InRange(1, 1000)},
    {"backoff_base_s", &LearnerScheduleOptions::backoff_base_s, InRange(0.0, 86400.0)},
    {"backoff_max_s", &LearnerScheduleOptions::backoff_max_s, InRange(0.0, 86400.0), PathKind::kNone,
     [](const LearnerScheduleOptions& s, const std::string& p, Checker& c) {
       c.Require(s.backoff_max_s >= s.backoff_base_s, p + "backoff_max_s",
                 "out of range: " + Num(s.backoff_max_s) + " is below schedule.backoff_base_s (" +
                     Num(s.backoff_base_s) + ")");
     }},
};

constexpr Key<LearnerClusterOptions> kLearnerClusterKeys[] = {
    {"enabled", &LearnerClusterOptions::enabled},
    {"listen", &LearnerClusterOptions::listen, kNoLimit, PathKind::kNone,
     [](const LearnerClusterOptions& cl, const std::string& p, Checker& c) {
       std::string host;
       int port = 0;
       Status st = ParseHostPort(cl.listen, &host, &port);
       c.Require(st.ok(), p + "listen", st.message());
     }},
    {"secret_file", &LearnerClusterOptions::secret_file, kNoLimit, PathKind::kFile,
     [](const LearnerClusterOptions& cl, const std::string& p, Checker& c) {
       c.Require(!cl.enabled || !cl.secret_file.empty(), p + "secret_file",
                 "missing required key (the secret shared with the workers; needed when cluster.enabled = true)");
     }},
    {"worker_timeout_s", &LearnerClusterOptions::worker_timeout_s, InRange(1.0, 3600.0)},
    {"heartbeat_s", &LearnerClusterOptions::heartbeat_s, kNoLimit, PathKind::kNone,
     [](const LearnerClusterOptions& cl, const std::string& p, Checker& c) {
       c.Require(cl.heartbeat_s >= 0.05 && cl.heartbeat_s <= cl.worker_timeout_s / 3, p + "heartbeat_s",
                 "out of range: " + Num(cl.heartbeat_s) + " is not in [0.05, cluster.worker_timeout_s / 3]");
     }},
};

// The keys of a [[groups]] and a [[devices]] element carry no limits: CheckGroups and CheckDevices
// check them, interleaved with the rules across elements (duplicates), in the order reported.
constexpr Key<LearnerGroupOptions> kLearnerGroupKeys[] = {
    {"name", &LearnerGroupOptions::name},
    {"devices", &LearnerGroupOptions::devices},
};

constexpr Key<LearnerDeviceOptions> kLearnerDeviceKeys[] = {
    {"id", &LearnerDeviceOptions::id},
    {"key", &LearnerDeviceOptions::key, kNoLimit, PathKind::kFile},
};

constexpr Key<LearnerLogOptions> kLearnerLogKeys[] = {
    {"level", &LearnerLogOptions::level, Is(Kind::kLogLevel)},
};

// Group names and device ids are ids; a device is in at most one group.
void CheckGroups(const LearnerOptions& o, Checker& c) {
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
}

// Device ids are unique; each device has a CURVE key unless the server is plaintext.
void CheckDevices(const LearnerOptions& o, Checker& c) {
  std::set<std::string> ids;
  for (size_t i = 0; i < o.devices.size(); ++i) {
    const LearnerDeviceOptions& d = o.devices[i];
    const std::string key = "devices[" + std::to_string(i) + "]";
    c.Id(key + ".id", d.id);
    c.Require(ids.insert(d.id).second, key + ".id", "duplicate device id \"" + d.id + "\"");
    c.Require(o.server.insecure || !d.key.empty(), key + ".key",
              "missing required key (the device's CURVE public key; none needs server.insecure = true)");
  }
}

// Sections in file order; [[groups]] and [[devices]] are read and checked before [log], as they
// always were (the first error reported stays the same), and written after it.
template <typename O, typename V>
Status VisitLearner(O& o, V& v) {
  KD_RETURN_IF_ERROR(v.Section("server", o.server, kLearnerServerKeys));
  KD_RETURN_IF_ERROR(v.Section("store", o.store, kLearnerStoreKeys));
  KD_RETURN_IF_ERROR(v.Section("teacher", o.teacher, kLearnerTeacherKeys));
  KD_RETURN_IF_ERROR(v.Section("training", o.training, kLearnerTrainingKeys));
  KD_RETURN_IF_ERROR(v.Section("gate", o.gate, kLearnerGateKeys));
  KD_RETURN_IF_ERROR(v.Section("publish", o.publish, kLearnerPublishKeys));
  KD_RETURN_IF_ERROR(v.Section("rollout", o.rollout, kLearnerRolloutKeys));
  KD_RETURN_IF_ERROR(v.Section("schedule", o.schedule, kLearnerScheduleKeys));
  KD_RETURN_IF_ERROR(v.Section("cluster", o.cluster, kLearnerClusterKeys));
  KD_RETURN_IF_ERROR(v.Array("groups", o.groups, kLearnerGroupKeys, &CheckGroups));
  KD_RETURN_IF_ERROR(v.Array("devices", o.devices, kLearnerDeviceKeys, &CheckDevices));
  KD_RETURN_IF_ERROR(v.Section("log", o.log, kLearnerLogKeys));
  KD_RETURN_IF_ERROR(v.Section("http", o.http, kHttpKeys));
  return v.Finish();
}

// ---------------------------------------------------------------------------------------------
// The documents
// ---------------------------------------------------------------------------------------------

void Check(const EdgeOptions& o, Checker& c) {
  internal::CheckVisitor<EdgeOptions> v(o, c);
  (void)VisitEdge(o, v);  // checking reports through `c`, never a Status
}

void Check(const LearnerOptions& o, Checker& c) {
  c.Required("store.path", o.store.path);  // the one required key is reported before any other problem
  internal::CheckVisitor<LearnerOptions> v(o, c);
  (void)VisitLearner(o, v);
}

Status Read(const toml::table& root, const internal::Sources& src, EdgeOptions* o) {
  internal::ReadVisitor v(root, src);
  return VisitEdge(*o, v);
}

Status Read(const toml::table& root, const internal::Sources& src, LearnerOptions* o) {
  internal::ReadVisitor v(root, src);
  return VisitLearner(*o, v);
}

// Parses `text` (the content of the config file `path`; nullopt = no file), applies the overrides,
// reads and validates.
template <typename Options>
Result<Options> Parse(std::optional<std::string_view> text, const std::string& path,
                      const std::vector<std::string>& overrides) {
  internal::Sources src;
  auto root = internal::ParseDocument(text, path, overrides, &src);
  if (!root.ok()) return root.status();
  Options options;
  KD_RETURN_IF_ERROR(Read(*root, src, &options));
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
  auto text = internal::ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return Parse<Options>(std::string_view(*text), path, overrides);
}

}  // namespace

namespace internal {

std::vector<KeyInfo> EdgeKeys() {
  ListVisitor v;
  const EdgeOptions o;
  (void)VisitEdge(o, v);
  return v.Take();
}

std::vector<KeyInfo> LearnerKeys() {
  ListVisitor v;
  const LearnerOptions o;
  (void)VisitLearner(o, v);
  return v.Take();
}

}  // namespace internal

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
  internal::TomlWriter w;
  w.Comment("kdedge effective configuration");
  internal::WriteVisitor v(w);
  (void)VisitEdge(o, v);  // writing cannot fail
  return w.Take();
}

std::string ToToml(const LearnerOptions& o) {
  internal::TomlWriter w;
  w.Comment("kdlearnd effective configuration");
  internal::WriteVisitor v(w);
  (void)VisitLearner(o, v);
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

}  // namespace kd::config
