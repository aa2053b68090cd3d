// bench_cluster: training capacity of the learner spread over `kdlearnd worker` processes
// (cluster/PROTOCOL.md), measured on real parts: a `kdlearnd serve` coordinator with the real
// teacher and RocksDB, N worker processes joined over its c10d store on 127.0.0.1, and simulated
// cameras that upload real frames of the sample video over ZeroMQ.
//
// For each worker count (0 = no cluster: the coordinator trains itself) the same labelled store
// (labelled once, then copied) is served and every group stays ready; for --measure-seconds the
// bench samples the status once a second and counts finished rounds per group. It reports rounds
// per minute, the longest wait of a group between two finished rounds, and the cameras that
// capacity serves at the stated freshness (each camera its own group, one round per group every
// --freshness-s seconds: rounds/s x freshness). The gate stays on (it runs on the coordinator);
// backoff is off and rounds do not wait for new labels (training.min_new_frames = 0), so that every group stays ready
// (this measures capacity, not the policy).
//
// Labelling with label workers (`kdlearnd worker --role label`): for each --label-workers count a
// fresh coordinator that only labels (0 = no cluster: its own teacher) receives the same uploads;
// the bench reports the wall time until every frame is labelled and the CPU seconds the
// coordinator and the label workers spent (/proc/PID/stat), i.e. what moving the teacher off the
// coordinator frees there and what the label jobs' transport costs.
//
//   bench_cluster [--kdlearnd build/daemon/kdlearnd] [--workers 0,1,2,3] [--groups 6]
//                 [--frames-per-camera 24] [--iterations 10] [--measure-seconds 180]
//                 [--freshness-s 60] [--label-workers 0,1] [--json F]
// Prints a table and writes JSON. Not a test: every number is a measurement of this run.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/bench_support.h"
#include "model/student.h"
#include "model/weights_file.h"
#include "update/signing.h"

namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

using kd::bench::Child;
using kd::bench::FreePort;
using kd::bench::Labelled;

json Status(const fs::path& dir) { return kd::bench::Admin(dir / "store", R"({"cmd":"status"})"); }

std::string Config(const fs::path& dir, int frames_port, int control_port, int cluster_port, bool cluster,
                   int iterations) {
  return "[server]\nframes_endpoint = \"tcp://127.0.0.1:" + std::to_string(frames_port) +
         "\"\ncontrol_endpoint = \"tcp://127.0.0.1:" + std::to_string(control_port) +
         "\"\ninsecure = true\n[store]\npath = \"store\"\n[teacher]\nbatch = 4\n[training]\nthreads = 1\nrecipe = \"" +
         (dir / "recipe.toml").string() + "\"\nbootstrap = \"" + (dir / "factory.kdw").string() +
         "\"\nmin_frames = 8\nmin_new_frames = 0\nround_frames = 64\nround_iterations = " + std::to_string(iterations) +
         "\n[gate]\nholdout_every = 4\nholdout_span_ms = 0\nmin_holdout = 4\n[rollout]\nauto = false\n"
         "[schedule]\nbackoff_after = 1000\n[cluster]\nenabled = " +
         (cluster ? "true" : "false") + "\nlisten = \"127.0.0.1:" + std::to_string(cluster_port) +
         "\"\nsecret_file = \"" + (dir / "cluster.secret").string() + "\"\n[publish]\nsigning_key = \"" +
         (dir / "s.key").string() + "\"\n";
}

// Uploads `frames_per_camera` frames of the sample video for each camera (each its own stretch of
// the video); returns the frames acknowledged.
size_t Upload(int frames_port, int groups, int frames_per_camera) {
  size_t acked = 0;
  for (int cam = 0; cam < groups; ++cam) {
    const int64_t begin = static_cast<int64_t>(cam) * 100;
    acked += kd::bench::UploadVideoFrames(frames_port, "cam-" + std::to_string(cam), begin, begin + frames_per_camera,
                                          1, nullptr);
  }
  return acked;
}

// CPU seconds (user + system, all threads) a live process has used so far.
double CpuSeconds(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), {});
  const size_t close = text.rfind(')');  // the command name may hold spaces
  if (close == std::string::npos) return 0;
  std::istringstream rest(text.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14 || i == 15) ticks += std::stod(field);  // utime, stime
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

std::vector<int> ParseCounts(const std::string& list) {
  std::vector<int> out;
  for (size_t pos = 0; pos < list.size();) {
    const size_t comma = list.find(',', pos);
    out.push_back(std::stoi(list.substr(pos, comma - pos)));
    pos = comma == std::string::npos ? list.size() : comma + 1;
  }
  return out;
}

std::map<std::string, uint64_t> Rounds(const json& st) {
  std::map<std::string, uint64_t> out;
  if (st.contains("schedule") && st["schedule"].contains("groups")) {
    for (const auto& [name, g] : st["schedule"]["groups"].items()) out[name] = g.value("rounds", uint64_t{0});
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_cluster: training capacity with 0..N kdlearnd worker processes"};
  std::string kdlearnd = "build/daemon/kdlearnd", json_path, workers_list = "0,1,2,3", label_list = "0,1";
  int groups = 6, frames_per_camera = 24, iterations = 10;
  double measure_s = 180, freshness_s = 60;
  app.add_option("--kdlearnd", kdlearnd)->capture_default_str();
  app.add_option("--workers", workers_list, "Worker counts to measure (0 = the coordinator trains itself)")
      ->capture_default_str();
  app.add_option("--groups", groups, "Cameras, each its own group")->capture_default_str();
  app.add_option("--frames-per-camera", frames_per_camera)->capture_default_str();
  app.add_option("--iterations", iterations, "training.round_iterations")->capture_default_str();
  app.add_option("--measure-seconds", measure_s)->capture_default_str();
  app.add_option("--freshness-s", freshness_s, "Every group needs a finished round this often")->capture_default_str();
  app.add_option("--label-workers", label_list, "Label worker counts to measure labelling with (\"\" = none)")
      ->capture_default_str();
  app.add_option("--json", json_path, "Write the results here");
  bool keep = false;
  app.add_flag("--keep", keep, "Keep the run directories (logs, stores) and print where");
  CLI11_PARSE(app, argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  kdlearnd = fs::absolute(kdlearnd).string();
  const std::vector<int> worker_counts = ParseCounts(workers_list), label_counts = ParseCounts(label_list);

  // One labelled store, made once.
  const fs::path root = fs::temp_directory_path() / ("kd_bench_cluster_" + std::to_string(::getpid()));
  fs::remove_all(root);
  const fs::path seed = root / "seed";
  fs::create_directories(seed);
  {
    kd::model::StudentOptions so;
    so.input_width = 384;
    so.input_height = 288;
    kd::model::Student s(so);
    s->eval();
    kd::model::WeightsMeta meta;
    meta.model_version = 1;
    KD_CHECK(kd::model::SaveWeights((seed / "factory.kdw").string(), *s, meta).ok());
    auto key = kd::update::GenerateSigningKey().value();
    KD_CHECK(kd::update::WriteSigningKey((seed / "s.key").string(), (seed / "s.pub").string(), key).ok());
    std::ofstream(seed / "cluster.secret") << "bench-cluster-shared-secret-0123456789\n";
    // The shipped recipe with the teacher at one scale (labelling the seed store in minutes, not
    // tens of minutes, on a small machine); training is the shipped CrossKD recipe.
    std::ofstream(seed / "recipe.toml") << "[refine]\nextra_long_sides = []\n";
  }
  {
    const int fp = FreePort(), cp = FreePort();
    std::ofstream cfg(seed / "label.toml");
    std::string text = Config(seed, fp, cp, FreePort(), false, iterations);
    text.replace(text.find("min_frames = 8"), 14, "min_frames = 1000000");  // label only
    cfg << text;
    cfg.close();
    const auto t0 = SteadyClock::now();
    Child learner({kdlearnd, "serve", "--config", (seed / "label.toml").string(), "--set", "http.listen=\"\""},
                  (seed / "label.log").string());
    const size_t acked = Upload(fp, groups, frames_per_camera);
    KD_CHECK_MSG(acked == static_cast<size_t>(groups * frames_per_camera), "not every frame was acknowledged");
    while (Labelled(Status(seed)) < acked) std::this_thread::sleep_for(milliseconds(500));
    std::printf("seed store: %zu frames of %d cameras uploaded and labelled in %.0f s\n", acked, groups,
                std::chrono::duration<double>(SteadyClock::now() - t0).count());
    std::fflush(stdout);
  }

  json out{{"groups", groups},
           {"frames_per_camera", frames_per_camera},
           {"round_iterations", iterations},
           {"measure_seconds", measure_s},
           {"freshness_s", freshness_s},
           {"runs", json::array()},
           {"labelling", json::array()}};

  // Labelling on the coordinator against label workers: same uploads, a label-only coordinator.
  if (!label_counts.empty()) {
    std::printf("\n%-14s %8s %8s %10s %18s %20s\n", "label workers", "frames", "wall s", "frames/s",
                "coordinator CPU s", "label workers CPU s");
  }
  for (int label_workers : label_counts) {
    const fs::path dir = root / ("label" + std::to_string(label_workers));
    fs::create_directories(dir);
    for (const char* f : {"factory.kdw", "s.key", "s.pub", "cluster.secret", "recipe.toml"})
      fs::copy(seed / f, dir / f);
    const int fp = FreePort(), cp = FreePort(), cluster_port = FreePort();
    std::string text = Config(dir, fp, cp, cluster_port, label_workers > 0, iterations);
    text.replace(text.find("min_frames = 8"), 14, "min_frames = 1000000");  // label only
    std::ofstream(dir / "kdlearnd.toml") << text;
    Child learner({kdlearnd, "serve", "--config", (dir / "kdlearnd.toml").string(), "--set", "http.listen=\"\""},
                  (dir / "kdlearnd.log").string());
    std::vector<std::unique_ptr<Child>> labellers;
    for (int w = 0; w < label_workers; ++w) {
      labellers.push_back(std::make_unique<Child>(
          std::vector<std::string>{kdlearnd, "worker", "--config", (dir / "kdlearnd.toml").string(), "--coordinator",
                                   "127.0.0.1:" + std::to_string(cluster_port), "--name", "l" + std::to_string(w),
                                   "--role", "label"},
          (dir / ("label" + std::to_string(w) + ".log")).string()));
    }
    // Every label worker is in (teacher loaded, joined) before the first frame arrives.
    const auto join_deadline = SteadyClock::now() + std::chrono::seconds(300);
    while (label_workers > 0 && SteadyClock::now() < join_deadline) {
      const json st = Status(dir);
      int alive = 0;
      if (st.contains("schedule") && st["schedule"].contains("workers")) {
        for (const auto& w : st["schedule"]["workers"]) {
          alive += w.value("role", "") == "label" && w.value("state", "") == "alive";
        }
      }
      if (alive == label_workers) break;
      std::this_thread::sleep_for(milliseconds(500));
    }
    const double coordinator_cpu0 = CpuSeconds(learner.pid());
    double labellers_cpu0 = 0;
    for (const auto& l : labellers) labellers_cpu0 += CpuSeconds(l->pid());
    const auto t0 = SteadyClock::now();
    const size_t acked = Upload(fp, groups, frames_per_camera);
    while (Labelled(Status(dir)) < acked) std::this_thread::sleep_for(milliseconds(200));
    const double wall = std::chrono::duration<double>(SteadyClock::now() - t0).count();
    const double coordinator_cpu = CpuSeconds(learner.pid()) - coordinator_cpu0;
    double labellers_cpu1 = 0;
    for (const auto& l : labellers) labellers_cpu1 += CpuSeconds(l->pid());
    const double labellers_cpu = labellers_cpu1 - labellers_cpu0;
    std::printf("%-14d %8zu %8.1f %10.2f %18.1f %20.1f\n", label_workers, acked, wall,
                static_cast<double>(acked) / wall, coordinator_cpu, labellers_cpu);
    std::fflush(stdout);
    out["labelling"].push_back({{"label_workers", label_workers},
                                {"frames", acked},
                                {"wall_s", wall},
                                {"frames_per_s", static_cast<double>(acked) / wall},
                                {"coordinator_cpu_s", coordinator_cpu},
                                {"label_workers_cpu_s", labellers_cpu}});
  }

  std::printf("\n%-8s %10s %12s %16s %22s\n", "workers", "rounds", "rounds/min", "longest wait s",
              "cameras at freshness");
  for (int workers : worker_counts) {
    const fs::path dir = root / ("w" + std::to_string(workers));
    fs::copy(seed, dir, fs::copy_options::recursive);
    fs::remove(dir / "store" / "admin.sock");
    const int fp = FreePort(), cp = FreePort(), cluster_port = FreePort();
    std::ofstream(dir / "kdlearnd.toml") << Config(dir, fp, cp, cluster_port, workers > 0, iterations);
    Child learner({kdlearnd, "serve", "--config", (dir / "kdlearnd.toml").string(), "--set", "http.listen=\"\""},
                  (dir / "kdlearnd.log").string());
    std::vector<std::unique_ptr<Child>> pool;
    for (int w = 0; w < workers; ++w) {
      pool.push_back(std::make_unique<Child>(
          std::vector<std::string>{kdlearnd, "worker", "--config", (dir / "kdlearnd.toml").string(), "--coordinator",
                                   "127.0.0.1:" + std::to_string(cluster_port), "--name", "w" + std::to_string(w)},
          (dir / ("worker" + std::to_string(w) + ".log")).string()));
    }
    // Warm-up: every group has finished one round (workers joined, start weights sent).
    const auto warm_deadline = SteadyClock::now() + std::chrono::seconds(900);
    while (SteadyClock::now() < warm_deadline) {
      const auto r = Rounds(Status(dir));
      if (static_cast<int>(r.size()) == groups &&
          std::all_of(r.begin(), r.end(), [](const auto& kv) { return kv.second >= 1; })) {
        break;
      }
      std::this_thread::sleep_for(milliseconds(1000));
    }
    std::map<std::string, uint64_t> last = Rounds(Status(dir)), first = last;
    std::map<std::string, double> last_at, longest;
    const auto t0 = SteadyClock::now();
    for (const auto& [g, n] : last) last_at[g] = 0, longest[g] = 0;
    while (true) {
      std::this_thread::sleep_for(milliseconds(1000));
      const double t = std::chrono::duration<double>(SteadyClock::now() - t0).count();
      const auto now = Rounds(Status(dir));
      for (const auto& [g, n] : now) {
        if (n != last[g]) {
          longest[g] = std::max(longest[g], t - last_at[g]);
          last_at[g] = t;
          last[g] = n;
        }
      }
      if (t >= measure_s) {
        for (auto& [g, at] : last_at) longest[g] = std::max(longest[g], t - at);  // still waiting at the end
        break;
      }
    }
    uint64_t rounds = 0;
    double wait = 0;
    for (const auto& [g, n] : last) rounds += n - first[g];
    for (const auto& [g, w] : longest) wait = std::max(wait, w);
    const double per_min = static_cast<double>(rounds) / measure_s * 60;
    const double cameras = static_cast<double>(rounds) / measure_s * freshness_s;
    std::printf("%-8d %10llu %12.2f %16.1f %22.1f\n", workers, static_cast<unsigned long long>(rounds), per_min, wait,
                cameras);
    std::fflush(stdout);
    out["runs"].push_back({{"workers", workers},
                           {"rounds", rounds},
                           {"rounds_per_min", per_min},
                           {"longest_wait_s", wait},
                           {"cameras_at_freshness", cameras}});
  }
  if (keep) {
    std::printf("runs kept in %s\n", root.c_str());
  } else {
    fs::remove_all(root);
  }
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
