// bench_ablation: the distillation ablation on vtest.avi at one fixed budget (same iterations,
// data order, initialisation and augmentation for every arm):
//   a pseudo-labels only, b + prediction mimicking, c pseudo-labels + CrossKD instead,
//   d c + CAKD (NMS-free), e d + adaptive hard samples; the CrossKD departures on c:
//   f the neck tap, g the teacher-scale cross head, h both; i d with the one-to-one branch at
//   stride 8 (the shipped recipe), j i + adaptive hard samples (config::AblationArm).
// Trains on frames [0,636). Each run is scored three ways: against the human boxes of those
// frames (../shared/eval, person, with its scorer; skipped with a note when the folder is
// missing), and on held-out frames [636,795) against the refined teacher labels (boxes >= 0.3,
// refined as the recipe's [refine] says) and against the raw teacher (one scale). A one-to-one
// (CAKD) student is scored on human boxes without and with the 3x3 peak test. Prints mean, std,
// and per-seed paired differences against the first arm listed (the baseline), with the seeds
// it wins on AP against human boxes; writes JSON. --quick is a CI smoke test (a few minutes).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/assets.h"
#include "base/clock.h"
#include "bench/accuracy_support.h"
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
  int iterations = 600, seeds = 3, first_seed = 1, threads = 2;
  std::string arms = "abcde", json_path, config_path, save_dir, eval_dir = KD_SHARED_EVAL_DIR;
  app.add_flag("--quick", quick, "CI smoke test: 64 training frames, 32 held-out, 25 iterations, 1 seed");
  app.add_option("--iterations", iterations, "Optimiser steps per run (the fixed budget)")->capture_default_str();
  app.add_option("--seeds", seeds, "Seeds per arm")->capture_default_str();
  app.add_option("--first-seed", first_seed,
                 "First seed (runs seeds first..first+seeds-1: a later seed can be added without rerunning the others)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--arms", arms, "Arms to run, in order")->capture_default_str();
  app.add_option("--threads", threads, "CPU threads")->capture_default_str();
  app.add_option("--config", config_path, "Base recipe TOML (arms switch its losses)");
  app.add_option("--json", json_path, "Write the results as JSON here");
  app.add_option("--eval-dir", eval_dir, "Folder with score.py and the human boxes")->capture_default_str();
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
  kd::learner::DatasetOptions raw_opt = dopt;
  raw_opt.refine.enabled = false;  // the teacher's own boxes at teacher_long_side
  auto held_raw = kd::learner::BuildDataset(kd::AssetPath("vtest.avi"), held_begin, held_end, **teacher, raw_opt);
  for (const auto* d : {&train, &held, &held_raw}) {
    if (!d->ok()) {
      std::fprintf(stderr, "bench_ablation: %s\n", d->status().ToString().c_str());
      return 1;
    }
  }
  const bool have_humans = kd::bench::HaveHumanBoxes(eval_dir);
  const std::string human_frames = "0:" + std::to_string(train_end);
  if (!have_humans) {
    std::printf("no human boxes at %s (score.py missing): the human columns are left out\n", eval_dir.c_str());
  }
  const std::string tmp_dir = (std::filesystem::temp_directory_path() / "kd_bench_ablation").string();
  std::filesystem::create_directories(tmp_dir);
  std::fprintf(stderr, "teacher labelled %zu + %zu frames in %.0f s\n", train->size(), held->size(),
               total.ElapsedSeconds());
  std::vector<size_t> train_rows(train->size()), held_rows(held->size());
  std::iota(train_rows.begin(), train_rows.end(), 0);
  std::iota(held_rows.begin(), held_rows.end(), 0);

  std::map<char, std::vector<double>> ap50, ap, human_ap;
  nlohmann::json runs = nlohmann::json::array();
  for (char arm : arms) {
    auto recipe = kd::config::AblationArm(arm, base);
    if (!recipe.ok()) {
      std::fprintf(stderr, "bench_ablation: %s\n", recipe.status().ToString().c_str());
      return 2;
    }
    for (int s = first_seed; s < first_seed + seeds; ++s) {
      recipe->seed = static_cast<uint64_t>(s);
      torch::manual_seed(recipe->seed);  // identical student initialisation across arms
      auto sopt = kd::learner::StudentOptionsFor(*recipe, *train);
      kd::model::Student student(*sopt);
      kd::learner::Distiller d(*recipe, student, **teacher, torch::kCPU);
      auto rep = d.Train(*train, train_rows);
      auto m = kd::learner::EvaluateStudent(*student, *held, held_rows);
      auto raw_m = kd::learner::EvaluateStudent(*student, *held_raw, held_rows);
      if (!rep.ok() || !m.ok() || !raw_m.ok()) {
        std::fprintf(stderr, "bench_ablation: run failed: %s\n",
                     (!rep.ok() ? rep.status()
                      : !m.ok() ? m.status()
                                : raw_m.status())
                         .ToString()
                         .c_str());
        return 1;
      }
      // Against the human boxes of the training frames, with the student's own decoding and,
      // for a one-to-one student, with the 3x3 peak test too.
      nlohmann::json human = nlohmann::json::object();
      if (have_humans) {
        std::vector<bool> peak_tests = {false};
        if (student->options().one_to_one) peak_tests.push_back(true);
        for (bool peak : peak_tests) {
          kd::model::DecodeOptions decode;
          decode.one_to_one_peak_test = peak;
          std::vector<kd::FrameDetections> dets;
          auto fit = kd::learner::EvaluateStudent(*student, *train, train_rows, 0.3f, &dets, decode);
          if (!fit.ok()) {
            std::fprintf(stderr, "bench_ablation: %s\n", fit.status().ToString().c_str());
            return 1;
          }
          const std::string name = std::string(1, arm) + "_seed" + std::to_string(s) + (peak ? "_peak" : "");
          auto h = kd::bench::ScoreAgainstHumans(eval_dir, dets, human_frames, tmp_dir, name);
          if (!h) return 1;
          human[peak ? "peak_test" : "own"] = {{"ap", (*h)["AP"]}, {"ap50", (*h)["AP50"]}, {"ap75", (*h)["AP75"]}};
        }
        human_ap[arm].push_back(human["own"]["ap"].get<double>());
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
      std::fprintf(stderr,
                   "arm %c seed %d: human AP %s, held-out vs refined AP50 %.4f AP %.4f, vs raw teacher AP %.4f (%.0f "
                   "s, %d skipped steps)\n",
                   arm, s, human.contains("own") ? human["own"]["ap"].dump().c_str() : "-", m->ap50, m->ap, raw_m->ap,
                   rep->seconds, rep->skipped_steps);
      runs.push_back({{"arm", std::string(1, arm)},
                      {"seed", s},
                      {"ap50", m->ap50},
                      {"ap", m->ap},
                      {"ap75", m->ap75},
                      {"ar100", m->ar100},
                      {"raw_teacher", {{"ap", raw_m->ap}, {"ap50", raw_m->ap50}, {"ap75", raw_m->ap75}}},
                      {"human", human},
                      {"train_seconds", rep->seconds},
                      {"skipped_steps", rep->skipped_steps},
                      {"final_losses", rep->final_losses}});
    }
  }
  static const std::map<char, const char*> kNames = {
      {'a', "pseudo-labels only"},       {'b', "+ prediction mimicking"},      {'c', "pseudo-labels + CrossKD"},
      {'d', "c + CAKD (NMS-free)"},      {'e', "d + adaptive hard samples"},   {'f', "c, neck tap"},
      {'g', "c, teacher-scale head"},    {'h', "c, neck tap + teacher scale"}, {'i', "d, one-to-one at stride 8"},
      {'j', "i + adaptive hard samples"}};
  std::printf(
      "\nablation: %d iterations, %d seed(s) from seed %d, train [0,%lld), held-out [%lld,%lld), %.0f s total\n",
      base.iterations, seeds, first_seed, static_cast<long long>(train_end), static_cast<long long>(held_begin),
      static_cast<long long>(held_end), total.ElapsedSeconds());
  const char baseline = arms.empty() ? 0 : arms[0];
  std::printf("%-4s %-28s %16s %16s %16s   %s\n", "arm", "recipe", "human AP", "held-out AP", "held-out AP50",
              ("per-seed paired difference in human AP vs arm " + std::string(1, baseline) + " (seeds won)").c_str());
  // Paired differences per seed against the baseline, with the number of seeds it wins.
  auto paired = [&](const std::map<char, std::vector<double>>& metric, char a, char b, std::string* text,
                    nlohmann::json* diffs) {
    int wins = 0;
    if (!metric.count(a) || !metric.count(b)) return wins;
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
  auto cell = [](const Stat& st, bool have) {
    char buf[32];
    if (!have) return std::string("-");
    std::snprintf(buf, sizeof buf, "%.4f+-%.4f", st.mean, st.std);
    return std::string(buf);
  };
  nlohmann::json summary = nlohmann::json::array();
  for (char arm : arms) {
    auto s50 = MeanStd(ap50[arm]), sap = MeanStd(ap[arm]), shuman = MeanStd(human_ap[arm]);
    std::string text, held_text;
    nlohmann::json dhuman = nlohmann::json::array(), dap = nlohmann::json::array();
    int wins_human = 0, wins_ap = 0;
    if (arm != baseline) {
      wins_human = paired(human_ap, arm, baseline, &text, &dhuman);
      wins_ap = paired(ap, arm, baseline, &held_text, &dap);
    }
    std::printf("%-4c %-28s %16s %16s %16s   %s\n", arm, kNames.at(arm), cell(shuman, have_humans).c_str(),
                cell(sap, true).c_str(), cell(s50, true).c_str(), text.c_str());
    summary.push_back({{"arm", std::string(1, arm)},
                       {"name", kNames.at(arm)},
                       {"baseline", std::string(1, baseline)},
                       {"human_ap_mean", have_humans ? nlohmann::json(shuman.mean) : nlohmann::json()},
                       {"human_ap_std", have_humans ? nlohmann::json(shuman.std) : nlohmann::json()},
                       {"ap50_mean", s50.mean},
                       {"ap50_std", s50.std},
                       {"ap_mean", sap.mean},
                       {"ap_std", sap.std},
                       {"human_ap_diff_vs_baseline", dhuman},
                       {"ap_diff_vs_baseline", dap},
                       {"human_ap_wins_vs_baseline", wins_human},
                       {"ap_wins_vs_baseline", wins_ap}});
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{{"bench", "ablation"},
                                               {"quick", quick},
                                               {"iterations", base.iterations},
                                               {"seeds", seeds},
                                               {"first_seed", first_seed},
                                               {"human_frames", have_humans ? human_frames : ""},
                                               {"runs", runs},
                                               {"summary", summary},
                                               {"seconds", total.ElapsedSeconds()}}
                                    .dump(2)
                             << "\n";
  }
  return 0;
}
