// bench_loop: the continual loop's systems numbers, measured on real parts (a kdlearnd process
// with the real teacher, RocksDB with synced writes, CURVE over loopback TCP, real EdgeAgents).
//   ingest   frames/s acknowledged (durable) for 1 and 32 (--edges) simulated edges sending real JPEGs as
//            fast as their credit windows allow, with ack latency percentiles; then, the edges
//            stopped, frames/s the teacher labels of what they sent (--label-seconds; beside the
//            same spinning processes with --busy-cores);
//   rollout  two edges on vtest.avi, a learner publishing on every round: per version, seconds
//            from publish to both edges running it and to both committed; delta bytes against
//            full fp32 and fp16 snapshots; frames dropped (target 0) and the longest gap between two
//            inferred frames; edge inference ms/frame while downloading or on probation vs idle.
// Prints tables and writes JSON (--json). Not a test: every number is a measurement of this run.
//   bench_loop [--kdlearnd build/daemon/kdlearnd] [--ingest-seconds 10] [--edges 1,32] [--credits 32]
//              [--busy-cores N] [--label-seconds 0] [--set KEY=VALUE ...]
//              [--rollout-seconds 120] [--skip-ingest] [--skip-rollout] [--json F]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <signal.h>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/wait.h>

#include "base/assets.h"
#include "config/daemon_options.h"
#include "edge/agent.h"
#include "media/image_ops.h"
#include "media/video_source.h"
#include "model/student.h"
#include "model/weights_file.h"
#include "update/signing.h"
#include "wire/curve_keys.h"
#include "wire/endpoint.h"
#include "wire/message.h"

namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

struct Learner {
  pid_t pid = -1;
  // `sets`: more `--set KEY=VALUE` overrides for kdlearnd (bench_loop --set).
  void Start(const std::string& bin, const std::string& config, const std::string& log,
             const std::vector<std::string>& sets = {}) {
    std::vector<std::string> args = {bin, "serve", "--config", config, "--set", "http.listen=\"127.0.0.1:0\""};
    for (const auto& s : sets) args.insert(args.end(), {"--set", s});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid = ::fork();
    if (pid == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fd, 2);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
  }
  // SIGTERM and reap: before the bench deletes the learner's directory, since a learner still
  // writing there made remove_all throw, and the uncaught exception left the learner running.
  void Stop() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
  }
  ~Learner() { Stop(); }
};

// Processes that each keep a core busy (a plain spin loop, not niced): "another process saturates
// a core" while the learner ingests and labels. Killed on destruction.
struct Spinners {
  std::vector<pid_t> pids;
  explicit Spinners(int n) {
    for (int i = 0; i < n; ++i) {
      const pid_t pid = ::fork();
      if (pid == 0) {
        volatile uint64_t x = 0;
        while (true) x = x + 1;
      }
      pids.push_back(pid);
    }
  }
  ~Spinners() {
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    for (pid_t pid : pids) ::waitpid(pid, nullptr, 0);
  }
};

// Frames the learner's teacher has labelled so far (kdctl status --json).
uint64_t LabelledFrames(const fs::path& dir) {
  auto st = kd::wire::AdminCall("ipc://" + (dir / "store" / "admin.sock").string(), R"({"cmd":"status"})",
                                milliseconds(5000));
  if (!st.ok()) return 0;
  const json doc = json::parse(*st, nullptr, false);
  // The learner's own count: frames of devices outside any group are labelled too.
  if (!doc.is_object() || !doc.contains("learner")) return 0;
  return doc["learner"].value("frames_labelled", uint64_t{0});
}

std::string KeyPair(const fs::path& dir, const std::string& name) {
  auto k = kd::wire::GenerateCurveKeyPair().value();
  KD_CHECK(kd::wire::WriteCurveKeyPair((dir / (name + ".key")).string(), (dir / (name + ".pub")).string(), k).ok());
  return k.public_key;
}

// `credits`: the learner's window of un-acknowledged frames per device (the product's default: 32).
std::string LearnerConfig(int frames_port, int control_port, const std::string& extra, int credits = 32) {
  return "[server]\nframes_endpoint = \"tcp://127.0.0.1:" + std::to_string(frames_port) +
         "\"\ncontrol_endpoint = \"tcp://127.0.0.1:" + std::to_string(control_port) +
         "\"\nsecret_key = \"learner.key\"\ncredits = " + std::to_string(credits) +
         "\n[store]\npath = \"store\"\nsync_writes = true\n" + extra;
}

// ---- ingest ---------------------------------------------------------------------------------

json BenchIngest(const std::string& kdlearnd, int edges, double seconds, const std::vector<uint8_t>& jpeg, int w, int h,
                 int busy_cores, int window, double label_seconds, const std::vector<std::string>& sets) {
  const fs::path dir =
      fs::temp_directory_path() / ("kd_bench_ingest_" + std::to_string(::getpid()) + "_" + std::to_string(edges));
  fs::remove_all(dir);
  fs::create_directories(dir);
  KeyPair(dir, "learner");
  auto sign = kd::update::GenerateSigningKey().value();
  KD_CHECK(kd::update::WriteSigningKey((dir / "signing.key").string(), (dir / "signing.pub").string(), sign).ok());
  std::string devices = "[publish]\nsigning_key = \"signing.key\"\n";
  for (int i = 0; i < edges; ++i) {
    KeyPair(dir, "sim-" + std::to_string(i));
    devices += "[[devices]]\nid = \"sim-" + std::to_string(i) + "\"\nkey = \"sim-" + std::to_string(i) + ".pub\"\n";
  }
  const int fp = FreePort(), cp = FreePort();
  std::ofstream(dir / "kdlearnd.toml") << LearnerConfig(fp, cp, "[training]\nmin_frames = 1000000000\n" + devices,
                                                        window);
  Learner learner;
  learner.Start(kdlearnd, (dir / "kdlearnd.toml").string(), (dir / "kdlearnd.log").string(), sets);
  const auto server_pub = kd::wire::ReadCurvePublicKey((dir / "learner.pub").string()).value();

  std::atomic<uint64_t> acked{0};
  std::atomic<bool> go{false}, stop{false};
  std::vector<std::vector<double>> latencies(static_cast<size_t>(edges));
  std::vector<std::thread> threads;
  kd::wire::Context ctx;
  for (int i = 0; i < edges; ++i) {
    threads.emplace_back([&, i] {
      const std::string id = "sim-" + std::to_string(i);
      kd::wire::ClientOptions co;
      co.endpoint = "tcp://127.0.0.1:" + std::to_string(fp);
      co.curve = kd::wire::ReadCurveKeyPair((dir / (id + ".key")).string()).value();
      co.server_public_key = server_pub;
      auto client = kd::wire::Client::Connect(ctx, co).value();
      uint32_t credits = 0;
      uint64_t seq = 1;
      std::map<uint64_t, Clock::time_point> in_flight;
      auto last_hello = Clock::now() - std::chrono::seconds(1);
      while (!stop) {
        if (credits == 0 && Clock::now() - last_hello > milliseconds(200)) {
          kd::wire::Message hello;
          hello.header.type = kd::wire::MsgType::kHello;
          hello.header.device_id = id;
          (void)client->Send(hello);
          last_hello = Clock::now();
        }
        while (go && in_flight.size() < credits) {
          kd::wire::Message m;
          m.header.type = kd::wire::MsgType::kFrame;
          m.header.device_id = id;
          m.header.seq = seq;
          m.header.width = static_cast<uint32_t>(w);
          m.header.height = static_cast<uint32_t>(h);
          m.payload.assign(jpeg.begin(), jpeg.end());
          if (!client->Send(m).ok()) break;
          in_flight[seq++] = Clock::now();
        }
        auto in = client->Receive(milliseconds(5));
        if (!in.ok() || !*in) continue;
        const auto& hd = (*in)->header;
        if (hd.type == kd::wire::MsgType::kAck) {
          auto it = in_flight.find(hd.ack_seq);
          if (it != in_flight.end()) {
            if (go) {
              latencies[static_cast<size_t>(i)].push_back(Seconds(it->second, Clock::now()) * 1e3);
              ++acked;
            }
            in_flight.erase(it);
          }
        }
        if (hd.type == kd::wire::MsgType::kAck || hd.type == kd::wire::MsgType::kCredit) credits = hd.credits;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(3));  // connect + handshake
  std::optional<Spinners> spinners;
  if (busy_cores > 0) spinners.emplace(busy_cores);
  const uint64_t labelled0 = LabelledFrames(dir);
  go = true;
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t n = acked.load();
  const uint64_t labelled = LabelledFrames(dir) - labelled0;
  const double dt = Seconds(t0, Clock::now());
  stop = true;
  for (auto& t : threads) t.join();
  // Labelling alone: the stored backlog, nothing arriving (the labeller then has the cores the
  // ingest took; with --busy-cores the spinners keep theirs).
  double label_rate = 0;
  if (label_seconds > 0) {
    const uint64_t before = LabelledFrames(dir);
    const auto l0 = Clock::now();
    std::this_thread::sleep_for(std::chrono::duration<double>(label_seconds));
    label_rate = static_cast<double>(LabelledFrames(dir) - before) / Seconds(l0, Clock::now());
  }
  spinners.reset();
  // Group commit: how many frames each synced write carried (the learner's own count).
  // And how long the labeller waited for ingest (training.yield_above_fps: ingest first).
  double frames_per_write = 0, yield_s = 0;
  if (auto st = kd::wire::AdminCall("ipc://" + (dir / "store" / "admin.sock").string(), R"({"cmd":"status"})",
                                    milliseconds(5000));
      st.ok()) {
    const json status = json::parse(*st, nullptr, false);
    frames_per_write = status.value("ingest_frames_per_write", 0.0);
    yield_s = status.value("background_yield_s", 0.0);
  }
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  json r{{"edges", edges},
         {"credits", window},
         {"busy_cores", busy_cores},
         {"seconds", dt},
         {"labelled_frames_per_second", static_cast<double>(labelled) / dt},
         {"label_seconds", label_seconds},
         {"labelled_frames_per_second_after", label_rate},
         {"acked_frames", n},
         {"frames_per_second", static_cast<double>(n) / dt},
         {"jpeg_bytes", jpeg.size()},
         {"ack_latency_ms_p50", Percentile(all, 0.5)},
         {"ack_latency_ms_p99", Percentile(all, 0.99)},
         {"frames_per_synced_write", frames_per_write},
         {"background_yield_seconds", yield_s}};
  if (n == 0) std::fprintf(stderr, "no frame acknowledged; learner log: %s\n", (dir / "kdlearnd.log").c_str());
  std::printf(
      "ingest  %2d edges  credits %3d  %d busy cores  %8.1f frames/s acked (sync writes)  ack p50 %6.1f ms  p99 %6.1f "
      "ms  "
      "%5.1f frames/write  %6.1f frames/s labelled  %5.1f s yielded  (%zu B JPEG)\n",
      edges, window, busy_cores, r["frames_per_second"].get<double>(), r["ack_latency_ms_p50"].get<double>(),
      r["ack_latency_ms_p99"].get<double>(), frames_per_write, r["labelled_frames_per_second"].get<double>(), yield_s,
      jpeg.size());
  if (label_seconds > 0) {
    std::printf("label   %2d edges  %d busy cores  %6.2f frames/s labelled over %.0f s after the ingest\n", edges,
                busy_cores, label_rate, label_seconds);
  }
  std::fflush(stdout);
  learner.Stop();
  std::error_code ignored;  // a leftover temporary directory is not worth failing the benchmark for
  if (n > 0) fs::remove_all(dir, ignored);
  return r;
}

// ---- rollout --------------------------------------------------------------------------------

json BenchRollout(const std::string& kdlearnd, double seconds) {
  const fs::path dir = fs::temp_directory_path() / ("kd_bench_rollout_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  KeyPair(dir, "learner");
  KeyPair(dir, "cam-1");
  KeyPair(dir, "cam-2");
  auto sign = kd::update::GenerateSigningKey().value();
  KD_CHECK(kd::update::WriteSigningKey((dir / "signing.key").string(), (dir / "signing.pub").string(), sign).ok());
  kd::model::StudentOptions so;
  so.input_width = 384;
  so.input_height = 288;
  kd::model::Student student(so);
  student->eval();
  KD_CHECK(
      kd::model::SaveWeights((dir / "factory.kdw").string(), *student, {1, 0, "bench", 0}, kd::model::WeightDtype::kF16)
          .ok());
  const uint64_t fp32_bytes = kd::model::EncodeWeights(*student, {}, kd::model::WeightDtype::kF32).value().size();
  const int fp = FreePort(), cp = FreePort();
  std::ofstream(dir / "kdlearnd.toml") << LearnerConfig(
      fp, cp,
      "[training]\nrecipe = \"" + fs::absolute("config/examples/distill.toml").string() +
          "\"\nbootstrap = \"factory.kdw\"\nround_iterations = 20\nround_frames = 48\nmin_frames = 16\n"
          "[gate]\nholdout_every = 6\nholdout_span_ms = 0\nmin_holdout = 4\nmargin = -1.0\n[publish]\nsigning_key = "
          "\"signing.key\"\n"
          "[rollout]\ncanary_probation_s = 0\n[[groups]]\nname = \"lobby\"\ndevices = [\"cam-1\", \"cam-2\"]\n"
          "[[devices]]\nid = \"cam-1\"\nkey = \"cam-1.pub\"\n[[devices]]\nid = \"cam-2\"\nkey = \"cam-2.pub\"\n");
  Learner learner;
  learner.Start(kdlearnd, (dir / "kdlearnd.toml").string(), (dir / "kdlearnd.log").string());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  std::vector<std::unique_ptr<kd::edge::EdgeAgent>> edges;
  const std::vector<std::string> names = {"cam-1", "cam-2"};
  for (const std::string& cam : names) {
    auto opts = kd::config::LoadEdgeOptions(
        "", {"device_id=" + cam, "source.uri=" + kd::AssetPath("vtest.avi"), "source.loop=true", "source.fps=15",
             "model.dir=" + (dir / cam).string(), "model.bootstrap=" + (dir / "factory.kdw").string(),
             "learner.frames_endpoint=tcp://127.0.0.1:" + std::to_string(fp),
             "learner.control_endpoint=tcp://127.0.0.1:" + std::to_string(cp),
             "learner.server_key=" + (dir / "learner.pub").string(),
             "learner.client_key=" + (dir / (cam + ".key")).string(), "uplink.max_fps=3",
             "update.trusted_keys=[\"" + (dir / "signing.pub").string() + "\"]", "update.probation_frames=15",
             "update.probation_seconds=1", "output.detections=", "output.status_interval_ms=250"});
    KD_CHECK_MSG(opts.ok(), opts.status().ToString());
    auto agent = kd::edge::EdgeAgent::Start(*opts);
    KD_CHECK_MSG(agent.ok(), agent.status().ToString());
    edges.push_back(std::move(agent).value());
  }
  const std::string admin = "ipc://" + (dir / "store" / "admin.sock").string();
  struct Version {
    Clock::time_point published, running_all, committed_all;
    bool running = false, committed = false;
    uint64_t delta_bytes = 0, full_bytes = 0;
  };
  std::map<uint64_t, Version> versions;
  // Inference ms per frame, by phase (sampled per 250 ms window, both edges).
  std::map<std::string, std::pair<double, uint64_t>> phase;  // phase -> (ms sum, frames)
  std::vector<kd::edge::EdgeCounters> last(edges.size());
  const auto t0 = Clock::now();
  while (Seconds(t0, Clock::now()) < seconds) {
    std::this_thread::sleep_for(milliseconds(250));
    const auto now = Clock::now();
    auto reply = kd::wire::AdminCall(admin, R"({"cmd":"status"})", milliseconds(2000));
    if (reply.ok()) {
      auto j = json::parse(*reply, nullptr, false);
      if (!j.is_discarded() && j.contains("groups") && j["groups"].contains("lobby")) {
        for (const auto& v : j["groups"]["lobby"]["versions"]) {
          const uint64_t ver = v["version"];
          if (ver <= 1 || versions.count(ver)) continue;
          Version& rec = versions[ver];
          rec.published = now;
          rec.delta_bytes = v["delta_size"];
          rec.full_bytes = v["full_size"];
        }
      }
    }
    for (size_t i = 0; i < edges.size(); ++i) {
      const auto c = edges[i]->counters();
      const std::string ph = c.downloading ? "downloading" : (c.swaps > c.commits + c.rollbacks ? "probation" : "idle");
      auto& p = phase[ph];
      p.first += c.inference_ms_total - last[i].inference_ms_total;
      p.second += c.frames_inferred - last[i].frames_inferred;
      last[i] = c;
    }
    for (auto& [ver, rec] : versions) {
      bool running = true, committed = true;
      for (auto& e : edges) {
        const auto c = e->counters();
        running &= c.running_version >= ver;
        committed &= c.committed_version >= ver;
      }
      if (running && !rec.running) rec.running = true, rec.running_all = now;
      if (committed && !rec.committed) rec.committed = true, rec.committed_all = now;
    }
  }
  json out{{"fp32_full_bytes", fp32_bytes}};
  json vs = json::array();
  std::printf("\nrollout (2 edges, canary then the other; probation 15 frames + 1 s; fp32 weights %llu B)\n",
              static_cast<unsigned long long>(fp32_bytes));
  std::printf("%-8s %12s %12s %10s %14s %16s\n", "version", "delta B", "full B", "delta/fp32", "publish->run s",
              "publish->commit s");
  for (auto& [ver, rec] : versions) {
    const double run_s = rec.running ? Seconds(rec.published, rec.running_all) : -1;
    const double commit_s = rec.committed ? Seconds(rec.published, rec.committed_all) : -1;
    std::printf("v%-7llu %12llu %12llu %10.3f %14.2f %16.2f\n", static_cast<unsigned long long>(ver),
                static_cast<unsigned long long>(rec.delta_bytes), static_cast<unsigned long long>(rec.full_bytes),
                static_cast<double>(rec.delta_bytes) / static_cast<double>(fp32_bytes), run_s, commit_s);
    vs.push_back({{"version", ver},
                  {"delta_bytes", rec.delta_bytes},
                  {"full_bytes", rec.full_bytes},
                  {"publish_to_all_running_s", run_s},
                  {"publish_to_all_committed_s", commit_s}});
  }
  out["versions"] = vs;
  json edges_json = json::array();
  for (size_t i = 0; i < edges.size(); ++i) {
    const auto& e = edges[i];
    const auto c = e->counters();
    std::printf(
        "%s: frames captured %llu, inferred %llu, dropped %llu, longest gap %.1f ms, swaps %llu, commits %llu, "
        "rollbacks %llu, downlink %llu B\n",
        names[i].c_str(), static_cast<unsigned long long>(c.frames_captured),
        static_cast<unsigned long long>(c.frames_inferred), static_cast<unsigned long long>(c.frames_dropped),
        c.max_frame_gap_ms, static_cast<unsigned long long>(c.swaps), static_cast<unsigned long long>(c.commits),
        static_cast<unsigned long long>(c.rollbacks), static_cast<unsigned long long>(c.downlink_bytes));
    edges_json.push_back(json::parse(e->StatusJson()));
  }
  out["edges"] = edges_json;
  json ph = json::object();
  for (auto& [name, p] : phase) {
    const double ms = p.second ? p.first / static_cast<double>(p.second) : 0;
    std::printf("edge inference while %-12s %7.2f ms/frame (%6.1f fps capacity) over %llu frames\n", name.c_str(), ms,
                ms > 0 ? 1000 / ms : 0, static_cast<unsigned long long>(p.second));
    ph[name] = {{"ms_per_frame", ms}, {"frames", p.second}};
  }
  out["inference_by_phase"] = ph;
  for (auto& e : edges) e->Stop(milliseconds(500));
  learner.Stop();
  std::error_code ignored;
  fs::remove_all(dir, ignored);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Continual-loop systems benchmarks (ingest, rollout)"};
  std::string kdlearnd = "build/daemon/kdlearnd", json_path;
  double ingest_seconds = 10, rollout_seconds = 120;
  bool skip_ingest = false, skip_rollout = false;
  int busy_cores = 0, credits = 32;
  double label_seconds = 0;
  std::vector<std::string> sets;
  std::vector<int> edge_counts{1, 32};
  app.add_option("--kdlearnd", kdlearnd, "The kdlearnd binary")->capture_default_str();
  app.add_option("--ingest-seconds", ingest_seconds, "Seconds per ingest run")->capture_default_str();
  app.add_option("--rollout-seconds", rollout_seconds, "Seconds of the rollout run")->capture_default_str();
  app.add_flag("--skip-ingest", skip_ingest);
  app.add_option("--edges", edge_counts, "Simulated edges per ingest run (one run each)")
      ->delimiter(',')
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--credits", credits,
                 "The learner's credit window per device in the ingest runs (the product's default is 32)")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  app.add_flag("--skip-rollout", skip_rollout);
  app.add_option("--busy-cores", busy_cores,
                 "Also run each ingest beside this many spinning processes (contention); 0 = quiet only")
      ->capture_default_str();
  app.add_option("--label-seconds", label_seconds,
                 "After each ingest run, seconds to measure the teacher labelling what arrived (0 = skip)")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--set", sets,
                 "KEY=VALUE passed to the ingest runs' kdlearnd as --set (e.g. training.sched_idle=false)");
  app.add_option("--json", json_path, "Write the results here");
  CLI11_PARSE(app, argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  json out;
  if (!skip_ingest) {
    auto source = kd::media::OpenSource(kd::AssetPath("vtest.avi"), {});
    KD_CHECK_MSG(source.ok(), source.status().ToString());
    auto frame = (*source)->Next().value().value();
    auto small = kd::media::ResizeRgb(frame, 768, 576);
    auto jpeg = kd::media::EncodeJpeg(small, 85).value();
    out["ingest"] = json::array();
    for (int busy : busy_cores > 0 ? std::vector<int>{0, busy_cores} : std::vector<int>{0}) {
      for (int edges : edge_counts) {
        out["ingest"].push_back(BenchIngest(kdlearnd, edges, ingest_seconds, jpeg, small.width, small.height, busy,
                                            credits, label_seconds, sets));
      }
    }
  }
  if (!skip_rollout) out["rollout"] = BenchRollout(kdlearnd, rollout_seconds);
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
