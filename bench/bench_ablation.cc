// bench_ablation: the distillation ablation on vtest.avi at one fixed budget (same iterations,
// data order, initialisation and augmentation for every arm):
//   a pseudo-labels only, b + prediction mimicking, c pseudo-labels + CrossKD instead,
//   d + CAKD (NMS-free), e + adaptive hard samples.
// Trains on frames [0,636), evaluates AP50/AP against the teacher's labels (boxes >= 0.3 after
// NMS, refined as the recipe's [refine] says) on held-out [636,795). Real accuracy (human boxes)
// is bench_accuracy's: save the arms' weights with `kdlearnd distill` and score them there. Prints mean, std and
// per-seed paired differences; writes JSON. --quick is a CI smoke test (a few minutes on 2 cores).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <numeric>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/assets.h"
#include "base/clock.h"
#include "config/distill_options.h"
#include "learner/dataset.h"
#include "learner/distiller.h"
#include "model/threads.h"
#include "model/weights_file.h"

namespace {

struct Stat {
  double mean = 0, std = 0;
};
Stat MeanStd(const std::vector<double>& v) {
  Stat s;
  if (v.empty()) return s;
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  if (v.size() > 1) {
    double ss = 0;
    for (double x : v) ss += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(ss / static_cast<double>(v.size() - 1));
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  kd::model::TuneAllocatorForTensors();
  CLI::App app{"Distillation ablation on the sample video"};
  bool quick = false;
  int iterations = 600, seeds = 3, threads = 2;
  std::string arms = "abcde", json_path, config_path, save_dir;
  app.add_flag("--quick", quick, "CI smoke test: 64 training frames, 32 held-out, 25 iterations, 1 seed");
  app.add_option("--iterations", iterations, "Optimiser steps per run (the fixed budget)")->capture_default_str();
  app.add_option("--seeds", seeds, "Seeds per arm")->capture_default_str();
  app.add_option("--arms", arms, "Arms to run, in order")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads")->capture_default_str();
  app.add_option("--config", config_path, "Base recipe TOML (arms switch its losses)");
  app.add_option("--json", json_path, "Write the results as JSON here");
  app.add_option("--save-weights", save_dir,
                 "Write each run's student here as <arm>_seed<N>.kdw (score them with bench_accuracy)");
  CLI11_PARSE(app, argc, argv);
  kd::model::SetComputeThreads(threads);

  int64_t train_end = 636, held_begin = 636, held_end = 795;
  kd::config::DistillOptions base;
  if (!config_path.empty()) {
    auto r = kd::config::LoadDistillOptions(config_path);
    if (!r.ok()) {
      std::fprintf(stderr, "bench_ablation: %s\n", r.status().ToString().c_str());
      return 2;
    }
    base = *r;
  }
  base.iterations = iterations;
  if (quick) {
    train_end = 64;
    held_end = 668;
    base.iterations = 25;
    base.warmup = 5;
    base.batch_size = 4;
    base.student.input_long_side = 256;
    base.refine.extra_long_sides.clear();  // one teacher scale: the smoothing alone keeps it quick
    seeds = 1;
  }
  auto teacher = kd::model::CenterNetTeacher::Load(kd::AssetPath("centernet.json"));
  if (!teacher.ok()) {
    std::fprintf(stderr, "bench_ablation: %s (run scripts/fetch_assets.sh)\n", teacher.status().ToString().c_str());
    return 1;
  }
  kd::learner::DatasetOptions dopt;
  dopt.student_long_side = base.student.input_long_side;
  dopt.teacher_long_side = base.teacher_long_side;
  dopt.refine = base.refine;  // the detection targets (and the held-out labels) as the recipe refines them
  kd::Stopwatch total;
  auto train = kd::learner::BuildDataset(kd::AssetPath("vtest.avi"), 0, train_end, **teacher, dopt);
  auto held = kd::learner::BuildDataset(kd::AssetPath("vtest.avi"), held_begin, held_end, **teacher, dopt);
  if (!train.ok() || !held.ok()) {
    std::fprintf(stderr, "bench_ablation: %s\n", (train.ok() ? held.status() : train.status()).ToString().c_str());
    return 1;
  }
  std::fprintf(stderr, "teacher labelled %zu + %zu frames in %.0f s\n", train->size(), held->size(),
               total.ElapsedSeconds());
  std::vector<size_t> train_rows(train->size()), held_rows(held->size());
  std::iota(train_rows.begin(), train_rows.end(), 0);
  std::iota(held_rows.begin(), held_rows.end(), 0);

  std::map<char, std::vector<double>> ap50, ap;
  nlohmann::json runs = nlohmann::json::array();
  for (char arm : arms) {
    auto recipe = kd::config::AblationArm(arm, base);
    if (!recipe.ok()) {
      std::fprintf(stderr, "bench_ablation: %s\n", recipe.status().ToString().c_str());
      return 2;
    }
    for (int s = 1; s <= seeds; ++s) {
      recipe->seed = static_cast<uint64_t>(s);
      torch::manual_seed(recipe->seed);  // identical student initialisation across arms
      auto sopt = kd::learner::StudentOptionsFor(*recipe, *train);
      kd::model::Student student(*sopt);
      kd::learner::Distiller d(*recipe, student, **teacher, torch::kCPU);
      auto rep = d.Train(*train, train_rows);
      auto m = kd::learner::EvaluateStudent(*student, *held, held_rows);
      if (!rep.ok() || !m.ok()) {
        std::fprintf(stderr, "bench_ablation: run failed: %s\n",
                     (rep.ok() ? m.status() : rep.status()).ToString().c_str());
        return 1;
      }
      if (!save_dir.empty()) {
        const std::string path = save_dir + "/" + std::string(1, arm) + "_seed" + std::to_string(s) + ".kdw";
        kd::model::WeightsMeta meta;
        meta.model_version = 1;
        meta.created_by = "bench_ablation";
        if (auto st = kd::model::SaveWeights(path, *student, meta, kd::model::WeightDtype::kF32); !st.ok()) {
          std::fprintf(stderr, "bench_ablation: %s\n", st.ToString().c_str());
          return 1;
        }
      }
      ap50[arm].push_back(m->ap50);
      ap[arm].push_back(m->ap);
      std::fprintf(stderr, "arm %c seed %d: AP50 %.4f AP %.4f (%.0f s, %d skipped steps)\n", arm, s, m->ap50, m->ap,
                   rep->seconds, rep->skipped_steps);
      runs.push_back({{"arm", std::string(1, arm)},
                      {"seed", s},
                      {"ap50", m->ap50},
                      {"ap", m->ap},
                      {"ap75", m->ap75},
                      {"ar100", m->ar100},
                      {"train_seconds", rep->seconds},
                      {"skipped_steps", rep->skipped_steps},
                      {"final_losses", rep->final_losses}});
    }
  }
  static const std::map<char, const char*> kNames = {{'a', "pseudo-labels only"},
                                                     {'b', "+ prediction mimicking"},
                                                     {'c', "pseudo-labels + CrossKD"},
                                                     {'d', "+ CAKD (NMS-free)"},
                                                     {'e', "+ adaptive hard samples"}};
  std::printf("\nablation: %d iterations, %d seed(s), train [0,%lld), held-out [%lld,%lld), %.0f s total\n",
              base.iterations, seeds, static_cast<long long>(train_end), static_cast<long long>(held_begin),
              static_cast<long long>(held_end), total.ElapsedSeconds());
  std::printf("%-4s %-26s %16s %16s   %s\n", "arm", "recipe", "AP50 mean+-std", "AP mean+-std",
              "per-seed paired difference vs the previous arm (AP50 | AP)");
  // Paired differences per seed against the previous arm, with the number of seeds it wins.
  auto paired = [&](const std::map<char, std::vector<double>>& metric, char a, char b, std::string* text,
                    nlohmann::json* diffs) {
    int wins = 0;
    for (size_t i = 0; i < metric.at(a).size() && i < metric.at(b).size(); ++i) {
      const double dd = metric.at(a)[i] - metric.at(b)[i];
      wins += dd > 0;
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%+.4f ", dd);
      *text += buf;
      diffs->push_back(dd);
    }
    *text += "(" + std::to_string(wins) + "/" + std::to_string(diffs->size()) + ")";
    return wins;
  };
  nlohmann::json summary = nlohmann::json::array();
  char prev = 0;
  for (char arm : arms) {
    auto s50 = MeanStd(ap50[arm]), sap = MeanStd(ap[arm]);
    std::string text;
    nlohmann::json d50 = nlohmann::json::array(), dap = nlohmann::json::array();
    int wins50 = 0, wins_ap = 0;
    if (prev) {
      wins50 = paired(ap50, arm, prev, &text, &d50);
      text += " | ";
      wins_ap = paired(ap, arm, prev, &text, &dap);
    }
    std::printf("%-4c %-26s %8.4f+-%.4f %8.4f+-%.4f   %s\n", arm, kNames.at(arm), s50.mean, s50.std, sap.mean, sap.std,
                text.c_str());
    summary.push_back({{"arm", std::string(1, arm)},
                       {"name", kNames.at(arm)},
                       {"ap50_mean", s50.mean},
                       {"ap50_std", s50.std},
                       {"ap_mean", sap.mean},
                       {"ap_std", sap.std},
                       {"ap50_diff_vs_previous", d50},
                       {"ap_diff_vs_previous", dap},
                       {"ap50_wins_vs_previous", wins50},
                       {"ap_wins_vs_previous", wins_ap}});
    prev = arm;
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{{"bench", "ablation"},
                                               {"quick", quick},
                                               {"iterations", base.iterations},
                                               {"seeds", seeds},
                                               {"runs", runs},
                                               {"summary", summary},
                                               {"seconds", total.ElapsedSeconds()}}
                                    .dump(2)
                             << "\n";
  }
  return 0;
}
