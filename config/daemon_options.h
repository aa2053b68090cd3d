// EdgeOptions (kdedge) and LearnerOptions (kdlearnd): the daemons' configuration, loaded from a
// TOML file (config/examples/kdedge.toml, kdlearnd.toml) with "section.key=value" overrides.
// Plain values, thread-compatible; the loaders are pure functions of their arguments (they read
// the file and the CWD, never the environment: see EnvOverrides for KD_EDGE_* / KD_LEARND_*).
// toml++ stays private to this module. Unknown keys, wrong types, out-of-range values and missing
// required keys are InvalidArgument errors naming the source (file or override), the key path and
// the problem; a missing file is NotFound.
//
// Precedence: overrides > file > defaults. Overrides are applied to the parsed TOML table before
// it is read and validated, so they obey the same rules (an unknown key is an error). An override
// value is TOML ("500", "true", "[\"a\", \"b\"]", "\"x\"") or, if it does not parse as one TOML
// value, a bare string (tcp://host:7700, cam-1); a string key also takes a value that parses as
// something else verbatim (device_id=123 is the string "123"). An inline table is merged key by
// key (uplink={kbps=500.0, max_fps=1.0}); [[groups]] and [[devices]] are replaced as a whole
// (groups=[{name="a", devices=["x"]}]).
//
// Paths: relative paths read from the file are resolved against the file's directory; relative
// paths from overrides against the CWD. Both become absolute, so the effective config (ToToml)
// shows exactly what is opened. Path keys: edge source.uri (unless a URL "x://" or "v4l2:N"),
// model.dir, model.bootstrap, learner.server_key, learner.client_key, update.trusted_keys,
// output.detections (unless "-" or ""); learner server.secret_key, store.path, teacher.model,
// training.recipe, training.bootstrap, publish.signing_key, devices[].key; and the path of every
// ipc:// endpoint. Secrets are file paths, never key material, so ToToml has nothing to redact.
//
// Unsigned keys hold 0..2^63-1 (TOML integers are signed 64-bit).
#ifndef KD_CONFIG_DAEMON_OPTIONS_H_
#define KD_CONFIG_DAEMON_OPTIONS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kd::config {

// ----------------------------------------------------------------------------------------------
// kdedge
// ----------------------------------------------------------------------------------------------

struct EdgeSourceOptions {
  std::string uri;       // REQUIRED: video file, image folder, rtsp:// / http(s)://, "v4l2:N" or /dev/videoN
  bool loop = false;     // start the file again when it ends
  int passes = 0;        // passes over the file when loop (0 = unlimited). REQUIRES: >= 0
  bool realtime = true;  // pace frames at fps like a live camera
  double fps = 0;        // pacing rate (0 = the source's own). REQUIRES: 0..240
  int64_t begin = 0;     // first frame index. REQUIRES: >= 0
  int64_t end = 0;       // one past the last frame (0 = to the end). REQUIRES: 0 or > begin
  // Effect per pass (index = pass mod size; empty = none): "none", "dark:F" (F in (0,1]),
  // "bright:F" (F in [1,4]), "blur:K" (odd K in 3..31). Parse with ParsePassEffect.
  std::vector<std::string> pass_effects;
  bool operator==(const EdgeSourceOptions&) const = default;
};

struct EdgeModelOptions {
  std::string dir;                 // REQUIRED: A/B slot directory
  std::string bootstrap;           // factory .kdw installed when dir is empty ("" = none)
  uint64_t bootstrap_version = 1;  // version given to the bootstrap weights. REQUIRES: >= 1
  int threads = 1;                 // inference threads. REQUIRES: 1..64
  double score_threshold = 0.3;    // detections emitted at or above. REQUIRES: 0..1
  bool operator==(const EdgeModelOptions&) const = default;
};

struct EdgeLearnerOptions {
  std::string frames_endpoint = "tcp://127.0.0.1:7700";   // ZeroMQ endpoint of the learner's frame port
  std::string control_endpoint = "tcp://127.0.0.1:7701";  // ZeroMQ endpoint of the learner's control port
  std::string server_key;        // path of the learner's CURVE public key ("" = plaintext; only with insecure)
  std::string client_key;        // path of this device's CURVE secret key file (required unless insecure)
  bool insecure = false;         // plaintext transport, no CURVE (tests, labs); updates are still verified
  int heartbeat_ms = 2000;       // REQUIRES: 100..60000
  int timeout_ms = 6000;         // peer declared dead after this silence. REQUIRES: > heartbeat_ms, <= 600000
  int reconnect_max_ms = 30000;  // cap of the reconnect back-off. REQUIRES: 100..600000
  bool operator==(const EdgeLearnerOptions&) const = default;
};

struct EdgeUplinkOptions {
  double kbps = 2000;  // upload budget (kilobit/s). REQUIRES: 1..1e6
  double max_fps = 2;  // frames uploaded per second at most (long-run). REQUIRES: 0.01..120
  // Frames per selection: a chosen frame and the ones after it, consecutive, so the learner can
  // smooth its labels over time (edge/frame_selector.h, step 6). REQUIRES: 1..64
  int burst_frames = 7;
  int jpeg_quality = 85;         // REQUIRES: 10..100
  int max_long_side = 768;       // downscale uploads to this long side (px; 0 = keep). REQUIRES: 0 or 64..8192
  int max_jpeg_bytes = 1048576;  // larger encodings are re-encoded smaller or dropped. REQUIRES: 4096..8388608
  int buffer_frames = 256;       // un-acked frames kept for resend. REQUIRES: 1..100000
  int resend_after_ms = 3000;    // resend an un-acked frame after this. REQUIRES: 100..600000
  bool operator==(const EdgeUplinkOptions&) const = default;
};

struct EdgeUpdateOptions {
  std::vector<std::string> trusted_keys;  // paths of ed25519 public keys. REQUIRED (non-empty), insecure or not
  int probation_frames = 100;             // frames a trial model must run cleanly. REQUIRES: 1..1e6
  double probation_seconds = 10;          // and for at least this long (s). REQUIRES: 0..3600
  double max_latency_ratio = 3;           // trial fails if latency > ratio x committed model's. REQUIRES: 1..100
  int max_trial_starts = 3;               // crash-loop guard: trial starts before giving up. REQUIRES: 1..100
  int download_window = 8;                // chunk requests in flight. REQUIRES: 1..64
  bool operator==(const EdgeUpdateOptions&) const = default;
};

struct EdgeOutputOptions {
  std::string detections = "-";    // JSON lines: "-" = stdout, "" = off, else a file path (appended)
  int status_interval_ms = 2000;   // status line/report period. REQUIRES: 100..600000
  std::string log_level = "info";  // trace, debug, info, warn, error
  bool operator==(const EdgeOutputOptions&) const = default;
};

// The management HTTP server (/metrics, /livez, /readyz, /api/v1/status, the web page). It has no
// authentication: it binds loopback unless configured otherwise (docs/OPERATIONS.md).
struct HttpOptions {
  std::string listen;  // "host:port" ("" = no server); the daemons' defaults are below
  bool operator==(const HttpOptions&) const = default;
};
inline constexpr char kEdgeHttpListen[] = "127.0.0.1:9471";
inline constexpr char kLearnerHttpListen[] = "127.0.0.1:9470";

struct EdgeOptions {
  std::string device_id;  // REQUIRED: 1..64 chars of [A-Za-z0-9._-], not "." or ".."
  EdgeSourceOptions source;
  EdgeModelOptions model;
  EdgeLearnerOptions learner;
  EdgeUplinkOptions uplink;
  EdgeUpdateOptions update;
  EdgeOutputOptions output;
  HttpOptions http{kEdgeHttpListen};

  bool operator==(const EdgeOptions&) const = default;
};

// ----------------------------------------------------------------------------------------------
// kdlearnd
// ----------------------------------------------------------------------------------------------

struct LearnerServerOptions {
  std::string frames_endpoint = "tcp://*:7700";   // ZeroMQ bind endpoint for frames
  std::string control_endpoint = "tcp://*:7701";  // ZeroMQ bind endpoint for control
  // kdctl's endpoint; must start with ipc://. "" = "ipc://<store.path>/admin.sock" (the loaders
  // fill it in; see AdminEndpoint for options edited in code).
  std::string admin_endpoint;
  std::string secret_key;  // path of the learner's CURVE secret key (required unless insecure)
  bool insecure = false;   // plaintext transport on loopback endpoints only (tests, labs); updates stay signed
  // Frames in flight (un-acknowledged) per device: the learner may hold this many of a device's
  // frames in its receive buffers (32 x ~80 KB = 2.5 MB). One camera's upload rate is bounded by
  // credits / ack round trip (measured: 16 -> 32 took one edge from ~1,800 to ~2,200 frames/s,
  // RESULTS.md). REQUIRES: 1..4096
  int credits = 32;
  int max_frame_bytes = 4194304;  // larger frame messages are rejected. REQUIRES: 65536..67108864
  int heartbeat_ms = 2000;        // REQUIRES: 100..60000
  int timeout_ms = 6000;          // REQUIRES: > heartbeat_ms, <= 600000
  bool operator==(const LearnerServerOptions&) const = default;
};

struct LearnerStoreOptions {
  std::string path;                 // REQUIRED: sample store directory
  uint64_t max_bytes = 8ull << 30;  // store size cap (bytes; oldest evicted). REQUIRES: >= 4 MiB
  uint64_t ttl_seconds = 0;         // frames older than this are evicted (0 = no TTL)
  bool sync_writes = true;          // fdatasync the log (frame journal, WAL) on every write batch
  bool operator==(const LearnerStoreOptions&) const = default;
};

struct LearnerTeacherOptions {
  std::string model;    // teacher model directory/file ("" = the fetched asset)
  int long_side = 512;  // teacher input long side (px). REQUIRES: multiple of 32, 128..1024
  // Frames per teacher forward. 2 measured best on CPU (bench_speed: 8 frames per forward cost
  // 2.6x the time per frame at 512 px and 6x at 768 px: activations of hundreds of MB come as fresh
  // pages every forward); on a GPU, 8-32. REQUIRES: 1..256
  int batch = 2;
  double min_score = 0.05;  // teacher boxes kept. REQUIRES: 0..1
  int threads = 0;          // the labeller's LibTorch threads (0 = training.threads). REQUIRES: 0..64
  bool operator==(const LearnerTeacherOptions&) const = default;
};

struct LearnerTrainingOptions {
  std::string recipe;           // distill TOML (config/examples/distill.toml format; "" = built-in defaults)
  std::string device = "auto";  // auto, cpu, cuda, cuda:N
  int threads = 2;              // CPU threads. REQUIRES: 1..256
  // The labeller and trainer threads, and the LibTorch workers they start, run in the background:
  // frames are stored and acked, and devices answered, before teacher and training work takes the
  // cores (base/thread_priority.h). By default at nice value `nice` (0 = same priority as ingest).
  // sched_idle: under SCHED_IDLE instead, a core only when no other thread wants it. Ingest first
  // (one edge: 2,144 acked frames/s against 1,943, means of 6 runs), but the live loop learned half
  // as fast beside two cameras (its LibTorch thread teams stall whenever another thread wakes;
  // RESULTS.md, seventeenth stop). For a learner that mostly ingests. REQUIRES: nice 0..19
  bool sched_idle = false;
  int nice = 10;
  // Ingest first (learner/ingest_pressure.h): while ingest stores more than yield_above_fps frames/s
  // (a backlog draining after an outage; budgeted uploads stay far below), the labeller waits before
  // each teacher forward and the trainer before each step, yield_max_s at most at a time. With the
  // labeller at nice 10 only, ingest acked 15-26 % fewer frames/s (paired means; RESULTS.md,
  // twentieth stop).
  // 0 = never wait. REQUIRES: yield_above_fps >= 0; yield_max_s 0.1..3600
  double yield_above_fps = 200;
  double yield_max_s = 10;
  std::string bootstrap;       // initial student .kdw, published as version 1 ("" = train from scratch)
  int round_iterations = 100;  // optimiser steps per round. REQUIRES: 1..1e6
  int round_frames = 256;      // frames in a round's dataset. REQUIRES: 8..100000
  int min_frames = 64;         // labelled frames before the first round. REQUIRES: >= 1
  // Frames labelled since a group's last round started before its next one may start: a round on
  // the same labels again mostly re-tests the gate, and on a shared CPU it takes the cores from the
  // teacher, whose labels are what the student lacks (RESULTS.md). 0 = rounds back to back.
  // REQUIRES: >= 0
  int min_new_frames = 32;
  int replay_capacity = 4096;   // replay buffer frames per group. REQUIRES: 1..10000000
  int fresh_window = 512;       // most recent frames counted as fresh. REQUIRES: 1..10000000
  double fresh_fraction = 0.5;  // share of a round's frames drawn from the fresh window. REQUIRES: 0..1
  int student_long_side = 384;  // student input long side (px). REQUIRES: multiple of 32, 64..1024
  uint64_t seed = 0;
  // Sparse rounds: after each published version, rounds train only publish.delta_max_fraction of
  // each parameter tensor away from it (the coordinates that moved farthest in a dense probe, after
  // AMS), so the top-k delta ships them without loss instead of the wide delta or full weights
  // (learner/round_trainer.h, docs/METHODS.md). Default true: in the demo every update shipped at
  // 8.3 % of the fp32 weights, against 20 % dense, with the same human-box AP within the spread of
  // runs (docs/RESULTS.md, "Fourteenth stop").
  bool sparse_rounds = true;
  bool operator==(const LearnerTrainingOptions&) const = default;
};

struct LearnerGateOptions {
  // One in N spans of labelled frames is held out: exactly one of each N consecutive spans, the
  // one a hash of the block picks (learner/loop_state.h IsHoldout). REQUIRES: 2..1000
  int holdout_every = 10;
  // Frames whose seqs (the edge's wall-clock microseconds, wire/PROTOCOL.md) fall in the same span
  // of this many ms share the split, so a burst of near-identical consecutive frames is all
  // training or all hold-out: split per frame, most held-out frames had a twin in training and the
  // gate was flattered. 0 = per frame (for seqs that are counters). REQUIRES: 0..3600000
  int holdout_span_ms = 10000;
  int holdout_window = 100;   // most recent held-out frames per camera used. REQUIRES: 1..100000
  int min_holdout = 10;       // held-out frames needed to gate. REQUIRES: 1..holdout_window
  double margin = 0.01;       // AP (.50:.95) gain over the running model needed to publish. REQUIRES: -1..1
  double gt_min_score = 0.3;  // teacher boxes used as held-out ground truth. REQUIRES: 0..1
  bool operator==(const LearnerGateOptions&) const = default;
};

struct LearnerPublishOptions {
  std::string signing_key;             // path of the ed25519 secret key. REQUIRED, insecure or not
  int manifest_ttl_s = 86400;          // manifest validity (s). REQUIRES: 60..31536000
  int chunk_bytes = 65536;             // download chunk size. REQUIRES: 4096..4194304
  double delta_min_abs_change = 1e-3;  // weights changing less are left out of a delta. REQUIRES: 0..1
  // Top-k: at most this fraction of each tensor's elements ships in a delta (largest changes first; the
  // rest follow in later deltas once they have moved far enough). Default 0.2: with q8 values and a
  // bitmask the median demo delta is 9.3 % of the fp32 weights (0.25: 10.5 %); the cost is a few
  // AP50 points in the first rounds after the factory model, gone by the fourth (RESULTS.md).
  // REQUIRES: (0, 1]
  double delta_max_fraction = 0.2;
  // A delta whose reconstruction scores more than this below the full fp16 weights in held-out AP
  // is not shipped: the version goes out as full weights (92 KB fp16 for the default student), and
  // the gate judges those. Default 0.01: top-k deltas kept AP50 but lost up to 0.4 AP in the first
  // rounds after the factory model (RESULTS.md, fifth stop). REQUIRES: 0..1
  double delta_max_ap_loss = 0.01;
  // The second rung of the update ladder (learner/gate.h, ClimbUpdateLadder): when the top-k delta
  // loses more than delta_max_ap_loss, a delta with at most this fraction of each tensor is tried
  // (1 = every weight that changed by more than delta_min_abs_change, still q8) before the version
  // ships as full fp16 weights. Why: in the demos of the twelfth stop 16 of 22 gated rounds dropped
  // the top-k delta, so devices mostly downloaded full weights (docs/RESULTS.md). A value at or
  // below delta_max_fraction turns the rung off. REQUIRES: 0..1
  double delta_wide_fraction = 1.0;
  int keep_versions = 3;  // published versions kept per group. REQUIRES: 1..100
  bool operator==(const LearnerPublishOptions&) const = default;
};

struct LearnerRolloutOptions {
  bool auto_start = true;          // TOML key "auto": start a rollout when a version passes the gate
  std::string canary;              // device id of the canary ("" = the first device of the group to report)
  double canary_probation_s = 10;  // wait after the canary commits before the rest. REQUIRES: 0..86400
  int failure_threshold = 1;       // failure reports that halt and roll back. REQUIRES: 1..1000
  bool operator==(const LearnerRolloutOptions&) const = default;
};

// [[groups]]: devices that share one student. Devices in no group get their own (name = id).
struct LearnerGroupOptions {
  std::string name;                  // same charset as a device id
  std::vector<std::string> devices;  // non-empty; a device is in at most one group
  bool operator==(const LearnerGroupOptions&) const = default;
};

// [[devices]]: static enrollment, in addition to `kdctl enroll`.
struct LearnerDeviceOptions {
  std::string id;   // device id (unique)
  std::string key;  // path of the device's CURVE public key file (required unless server.insecure)
  bool operator==(const LearnerDeviceOptions&) const = default;
};

// [schedule]: which group trains next on a free trainer (learner/round_scheduler.h).
struct LearnerScheduleOptions {
  double floor_s = 600;          // a ready group waits at most this long for a round (s). REQUIRES: 1..86400
  double drift_weight = 4;       // share added per unit of drift (relative rise in disagreement). REQUIRES: 0..1000
  double drift_threshold = 0.2;  // drift that counts as drifting (ends a backoff). REQUIRES: 0..100
  double stale_weight = 1;       // share added per stale_horizon_s of deployed-model age (at most 3). REQUIRES: 0..1000
  double stale_horizon_s = 3600;  // REQUIRES: 1..31536000
  int backoff_after = 3;          // rejected rounds in a row, without drift, before backing off. REQUIRES: 1..1000
  double backoff_base_s = 60;     // first backoff; doubles per further rejection (s). REQUIRES: 0..86400
  double backoff_max_s = 1800;    // REQUIRES: >= backoff_base_s, <= 86400
  bool operator==(const LearnerScheduleOptions&) const = default;
};

// [cluster]: training rounds on `kdlearnd worker` processes (cluster/PROTOCOL.md). Off: this
// process trains every group itself.
struct LearnerClusterOptions {
  bool enabled = false;
  // host:port of the coordinator's c10d store, which workers connect to. A private learner
  // network only: the store has no authentication or encryption of its own (joins and jobs are
  // authenticated with the shared secret, but anyone who reaches the port can disturb it).
  // The host must be a numeric address; port 0 = any free port (logged).
  std::string listen = "127.0.0.1:29600";
  std::string secret_file;       // path of the shared secret (>= 16 bytes). REQUIRED when enabled
  double worker_timeout_s = 10;  // a worker silent this long is dead and its groups move. REQUIRES: 1..3600
  double heartbeat_s = 1;        // workers beat this often (s). REQUIRES: 0.05..worker_timeout_s/3
  bool operator==(const LearnerClusterOptions&) const = default;
};

struct LearnerLogOptions {
  std::string level = "info";  // trace, debug, info, warn, error
  bool operator==(const LearnerLogOptions&) const = default;
};

struct LearnerOptions {
  LearnerServerOptions server;
  LearnerStoreOptions store;
  LearnerTeacherOptions teacher;
  LearnerTrainingOptions training;
  LearnerGateOptions gate;
  LearnerPublishOptions publish;
  LearnerRolloutOptions rollout;
  LearnerScheduleOptions schedule;
  LearnerClusterOptions cluster;
  std::vector<LearnerGroupOptions> groups;  // default: none (one student per camera)
  std::vector<LearnerDeviceOptions> devices;
  LearnerLogOptions log;
  HttpOptions http{kLearnerHttpListen};

  bool operator==(const LearnerOptions&) const = default;
};

// ----------------------------------------------------------------------------------------------
// Loading
// ----------------------------------------------------------------------------------------------

// Loads `path` ("" = defaults only), applies `overrides` ("section.key=value", e.g. from repeated
// --set flags, applied in order), resolves paths and validates.
Result<EdgeOptions> LoadEdgeOptions(const std::string& path, const std::vector<std::string>& overrides);
Result<LearnerOptions> LoadLearnerOptions(const std::string& path, const std::vector<std::string>& overrides);
// The same from the text of a config file already in memory (what the loaders call after reading
// the file): `path` names it in messages and its directory is the base of the relative paths it
// holds, as if the text had been read from `path` (nothing is opened).
Result<EdgeOptions> ParseEdgeOptions(std::string_view toml, const std::string& path,
                                     const std::vector<std::string>& overrides);
Result<LearnerOptions> ParseLearnerOptions(std::string_view toml, const std::string& path,
                                           const std::vector<std::string>& overrides);

// Ranges, required keys and cross-field rules (insecure, groups). Called by the loaders; also for
// options edited in code. Errors are InvalidArgument "key.path: problem".
Status Validate(const EdgeOptions& options);
Status Validate(const LearnerOptions& options);

// The effective configuration as TOML (every key, sections in declaration order), for logs and
// --print-config; it loads back to equal options. Nothing is redacted: secrets are file paths.
std::string ToToml(const EdgeOptions& options);
std::string ToToml(const LearnerOptions& options);

// Environment overrides, for daemons that want them (the loaders never read the environment):
// every NAME=VALUE in `envp` (NULL-terminated, e.g. `environ`) whose NAME starts with `prefix`
// becomes "section.key=VALUE", with the rest of NAME lower-cased and "__" as the section separator:
// KD_EDGE_UPLINK__KBPS=500 -> "uplink.kbps=500", KD_EDGE_DEVICE_ID=cam1 -> "device_id=cam1".
// Put them before the --set flags so that the precedence is --set > env > file > defaults. A
// misspelt variable is then an unknown-key error, like a misspelt key.
inline constexpr std::string_view kEdgeEnvPrefix = "KD_EDGE_";
inline constexpr std::string_view kLearnerEnvPrefix = "KD_LEARND_";
std::vector<std::string> EnvOverrides(std::string_view prefix, const char* const* envp);

// server.admin_endpoint, or "ipc://<store.path>/admin.sock" when it is empty.
std::string AdminEndpoint(const LearnerOptions& options);

// One parsed source.pass_effects entry.
struct PassEffect {
  enum class Kind { kNone, kDark, kBright, kBlur };
  Kind kind = Kind::kNone;
  double factor = 1.0;  // kDark: (0,1]; kBright: [1,4] (brightness multiplier)
  int kernel = 0;       // kBlur: odd kernel size 3..31
};
// Parses "none", "dark:F", "bright:F" or "blur:K"; InvalidArgument naming the problem otherwise.
Result<PassEffect> ParsePassEffect(std::string_view spec);

}  // namespace kd::config

#endif  // KD_CONFIG_DAEMON_OPTIONS_H_
