// bench_schedule: the round scheduler (learner/round_scheduler.h) against a uniform split of
// trainer time, under drift, on real parts: a `kdlearnd serve` process (the real teacher, RocksDB,
// the real gate) and simulated cameras that upload real frames of the sample video over ZeroMQ.
//
// Each arm starts a fresh learner from the same factory student with --cameras cameras (each its
// own group). Warm-up: every camera uploads --warm-frames clean frames. Then the drift: the first
// --drifting cameras upload --drift-frames frames under --effect (the demo's lighting drop), the
// others more clean frames; the learner labels them as they come and trains for --seconds. The
// arms differ only in [schedule]: "scheduler" is the shipped default; "uniform" sets the drift and
// staleness weights to 0 and turns the backoff off, which leaves an equal split of trainer time.
//
// From the learner's round log it reports, per arm: the rounds and trainer seconds given to the
// drifting and the steady cameras, and the gate's held-out AP (.50:.95, against the refined
// teacher labels of the camera's held-out frames) of each drifting camera's deployed model over
// time (the last round in each --bucket-s window) and at the end.
//
//   bench_schedule --factory F.kdw [--kdlearnd build/daemon/kdlearnd] [--cameras 4] [--drifting 2]
//                  [--effect dark:0.45] [--warm-frames 40] [--drift-frames 80] [--iterations 10]
//                  [--seconds 420] [--bucket-s 60] [--json F]
// Prints tables and writes JSON. Not a test: every number is a measurement of this run.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/bench_support.h"
#include "config/daemon_options.h"
#include "edge/capture.h"
#include "update/signing.h"

namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

struct Arm {
  std::string name;
  std::string schedule;  // the [schedule] section
};

std::string Config(const fs::path& dir, int frames_port, int control_port, const std::string& factory, int iterations,
                   const std::string& schedule) {
  return "[server]\nframes_endpoint = \"tcp://127.0.0.1:" + std::to_string(frames_port) +
         "\"\ncontrol_endpoint = \"tcp://127.0.0.1:" + std::to_string(control_port) +
         "\"\ninsecure = true\n[store]\npath = \"store\"\n[training]\nthreads = 1\nnice = 0\nrecipe = \"" +
         (dir / "recipe.toml").string() + "\"\nbootstrap = \"" + factory +
         "\"\nmin_frames = 16\nmin_new_frames = 0\nround_frames = 64\nround_iterations = " +
         std::to_string(iterations) +
         "\n[gate]\nholdout_every = 5\nholdout_span_ms = 0\nmin_holdout = 5\nholdout_window = 20\n[rollout]\nauto = "
         "false\n" +
         schedule + "[publish]\nsigning_key = \"" + (dir / "s.key").string() + "\"\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_schedule: the round scheduler against a uniform split under drift"};
  std::string kdlearnd = "build/daemon/kdlearnd", factory, effect_spec = "dark:0.45", json_path;
  int cameras = 4, drifting = 2, warm_frames = 40, drift_frames = 80, iterations = 10;
  double seconds = 420, bucket_s = 60;
  app.add_option("--kdlearnd", kdlearnd)->capture_default_str();
  app.add_option("--factory", factory, "The cameras' factory student (.kdw), e.g. the demo's out/demo/factory.kdw")
      ->required();
  app.add_option("--cameras", cameras)->capture_default_str();
  app.add_option("--drifting", drifting, "How many of the cameras drift")->capture_default_str();
  app.add_option("--effect", effect_spec, "The drift: none, dark:F, bright:F or blur:K")->capture_default_str();
  app.add_option("--warm-frames", warm_frames)->capture_default_str();
  app.add_option("--drift-frames", drift_frames)->capture_default_str();
  app.add_option("--iterations", iterations, "training.round_iterations")->capture_default_str();
  app.add_option("--seconds", seconds, "Training time after the drift starts")->capture_default_str();
  app.add_option("--bucket-s", bucket_s)->capture_default_str();
  app.add_option("--json", json_path, "Write the results here");
  CLI11_PARSE(app, argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  kdlearnd = fs::absolute(kdlearnd).string();
  factory = fs::absolute(factory).string();
  auto effect = kd::config::ParsePassEffect(effect_spec);
  KD_CHECK_MSG(effect.ok(), effect.status().ToString());
  const kd::config::PassEffect drift_effect = *effect;

  const std::vector<Arm> arms = {
      {"scheduler", ""},  // the shipped [schedule] defaults
      {"uniform", "[schedule]\ndrift_weight = 0.0\nstale_weight = 0.0\nbackoff_after = 1000\n"}};
  const fs::path root = fs::temp_directory_path() / ("kd_bench_schedule_" + std::to_string(::getpid()));
  fs::remove_all(root);
  json out{{"cameras", cameras},         {"drifting", drifting},         {"effect", effect_spec},
           {"warm_frames", warm_frames}, {"drift_frames", drift_frames}, {"round_iterations", iterations},
           {"seconds", seconds},         {"arms", json::array()}};
  for (const Arm& arm : arms) {
    const fs::path dir = root / arm.name;
    fs::create_directories(dir);
    auto key = kd::update::GenerateSigningKey().value();
    KD_CHECK(kd::update::WriteSigningKey((dir / "s.key").string(), (dir / "s.pub").string(), key).ok());
    // The shipped recipe with the teacher at one scale, so that labelling keeps up on a small machine.
    std::ofstream(dir / "recipe.toml") << "[refine]\nextra_long_sides = []\n";
    const int fp = kd::bench::FreePort(), cp = kd::bench::FreePort();
    std::ofstream(dir / "kdlearnd.toml") << Config(dir, fp, cp, factory, iterations, arm.schedule);
    kd::bench::Child learner(
        {kdlearnd, "serve", "--config", (dir / "kdlearnd.toml").string(), "--set", "http.listen=\"\""},
        (dir / "kdlearnd.log").string());
    const fs::path store = dir / "store";
    // Warm-up: clean frames from every camera (camera c watches its own stretch of the video).
    size_t sent = 0;
    for (int c = 0; c < cameras; ++c) {
      const int64_t begin = static_cast<int64_t>(c) * 150;
      sent += kd::bench::UploadVideoFrames(fp, "cam-" + std::to_string(c), begin, begin + warm_frames, 1, nullptr);
    }
    while (kd::bench::Labelled(kd::bench::Admin(store, R"({"cmd":"status"})")) < sent) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    // The drift, then training for `seconds`.
    const auto t0 = SteadyClock::now();
    const double t0_unix = static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                   std::chrono::system_clock::now().time_since_epoch())
                                                   .count()) /
                           1e6;
    for (int c = 0; c < cameras; ++c) {
      const int64_t begin = static_cast<int64_t>(c) * 150 + warm_frames;
      std::function<kd::media::Frame(const kd::media::Frame&)> fx;
      if (c < drifting) fx = [&](const kd::media::Frame& f) { return kd::edge::ApplyPassEffect(f, drift_effect); };
      (void)kd::bench::UploadVideoFrames(fp, "cam-" + std::to_string(c), begin, begin + drift_frames,
                                         static_cast<uint64_t>(warm_frames) + 1, fx);
    }
    while (std::chrono::duration<double>(SteadyClock::now() - t0).count() < seconds) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
    const json status = kd::bench::Admin(store, R"({"cmd":"status"})");
    const json log = kd::bench::Admin(store, R"({"cmd":"rounds","limit":0})");
    json arm_out{{"arm", arm.name}, {"groups", json::object()}};
    double drift_rounds = 0, steady_rounds = 0, drift_s = 0, steady_s = 0;
    const json schedule = status.value("schedule", json::object()).value("groups", json::object());
    std::printf("\n== %s ==\n%-8s %8s %7s %10s %8s  %s\n", arm.name.c_str(), "camera", "drifting", "rounds",
                "trainer s", "AP end", "AP of the deployed model over time (last round per bucket)");
    for (int c = 0; c < cameras; ++c) {
      const std::string g = "cam-" + std::to_string(c);
      json rounds = json::array();
      if (log.contains("groups") && log["groups"].contains(g)) rounds = log["groups"][g].value("rounds", json::array());
      std::map<int, double> by_bucket;
      double ap_end = -1;
      int after_drift = 0;
      for (const auto& r : rounds) {
        const double t = r.value("time_unix_s", 0.0) - t0_unix;
        if (t < 0 || !r.contains("ap_deployed")) continue;
        ++after_drift;
        // What the camera runs after this round: the candidate when it was published.
        const double ap =
            r.contains("published_version") ? r.value("ap_candidate", -1.0) : r.value("ap_deployed", -1.0);
        by_bucket[static_cast<int>(t / bucket_s)] = ap;
        ap_end = ap;
      }
      const json sg = schedule.value(g, json::object());
      const double trainer_s = sg.value("trainer_seconds", 0.0);
      const uint64_t n_rounds = sg.value("rounds", uint64_t{0});
      (c < drifting ? drift_rounds : steady_rounds) += static_cast<double>(n_rounds);
      (c < drifting ? drift_s : steady_s) += trainer_s;
      std::string series;
      json series_json = json::array();
      for (const auto& [b, ap] : by_bucket) {
        char cell[48];
        std::snprintf(cell, sizeof cell, "%ds:%.3f ", static_cast<int>((b + 1) * bucket_s), ap);
        series += cell;
        series_json.push_back({{"until_s", (b + 1) * bucket_s}, {"ap", ap}});
      }
      std::printf("%-8s %8s %7llu %10.1f %8.3f  %s\n", g.c_str(), c < drifting ? "yes" : "no",
                  static_cast<unsigned long long>(n_rounds), trainer_s, ap_end, series.c_str());
      arm_out["groups"][g] = {{"drifting", c < drifting},
                              {"rounds", n_rounds},
                              {"gated_rounds_after_drift", after_drift},
                              {"trainer_seconds", trainer_s},
                              {"ap_end", ap_end},
                              {"ap_over_time", series_json},
                              {"drift_signal", sg.value("drift", 0.0)}};
    }
    std::printf("trainer seconds: drifting cameras %.0f (%.0f rounds), steady cameras %.0f (%.0f rounds)\n", drift_s,
                drift_rounds, steady_s, steady_rounds);
    std::fflush(stdout);
    arm_out["drifting_trainer_seconds"] = drift_s;
    arm_out["steady_trainer_seconds"] = steady_s;
    out["arms"].push_back(arm_out);
  }
  fs::remove_all(root);
  if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
  return 0;
}
