// bench_accuracy: real accuracy. Scores student weights files on frames of the sample video against
// the human boxes of ../shared/eval (person, COCO AP .50:.95 / AP50 / AP75, with that folder's own
// scorer, score.py), side by side with the teacher on the same frames: its raw boxes and its
// refined labels (learner/refine.h: fused over scales, smoothed over time, and each alone). Each
// student is also scored against the refined labels and against the raw teacher (boxes >= 0.3),
// which is what a learner without human boxes can see.
// The human boxes are evaluation only: nothing here trains on them. When the folder is missing
// the bench says so and reports the teacher-relative columns only.
//   bench_accuracy [--weights a.kdw --weights b.kdw ...] [--frames 0:636] [--eval-dir DIR]
//                  [--config recipe.toml] [--json out.json] [--threads 2]
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <optional>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/assets.h"
#include "base/clock.h"
#include "bench/accuracy_support.h"
#include "config/distill_options.h"
#include "daemon/common/cli_common.h"
#include "eval/coco_eval.h"
#include "learner/dataset.h"
#include "learner/distiller.h"
#include "learner/refine.h"
#include "model/threads.h"
#include "model/weights_file.h"

namespace {

using kd::FrameDetections;
using nlohmann::json;

struct Scores {
  std::optional<json> human;                     // score.py's JSON (AP, AP50, AP75, ...)
  std::optional<kd::eval::CocoMetrics> refined;  // against the refined teacher labels (>= 0.3)
  std::optional<kd::eval::CocoMetrics> teacher;  // against the raw teacher boxes (>= 0.3)
};

// The dataset's teacher_dets (or a student's detections) against `gt` rows (>= 0.3), person..truck.
std::optional<kd::eval::CocoMetrics> AgainstLabels(const kd::learner::DistillDataset& labels,
                                                   const std::vector<FrameDetections>& dets) {
  std::vector<size_t> rows(labels.size());
  std::iota(rows.begin(), rows.end(), 0);
  auto m = kd::eval::EvaluateCoco(kd::learner::TeacherGroundTruth(labels, rows, 0.3f), dets, {0});
  if (!m.ok()) {
    std::fprintf(stderr, "bench_accuracy: %s\n", m.status().ToString().c_str());
    return std::nullopt;
  }
  return *m;
}

std::string Cell(const std::optional<json>& h, const char* key) {
  if (!h) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.3f", h->value(key, -1.0));
  return buf;
}
std::string Cell(const std::optional<kd::eval::CocoMetrics>& m, double kd::eval::CocoMetrics::*field) {
  if (!m) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.3f", (*m).*field);
  return buf;
}

json ToJson(const Scores& s) {
  json j;
  if (s.human)
    j["human"] = {{"ap", (*s.human)["AP"]},
                  {"ap50", (*s.human)["AP50"]},
                  {"ap75", (*s.human)["AP75"]},
                  {"ar100", (*s.human)["AR100"]}};
  if (s.refined) j["refined_labels"] = {{"ap", s.refined->ap}, {"ap50", s.refined->ap50}, {"ap75", s.refined->ap75}};
  if (s.teacher) j["raw_teacher"] = {{"ap", s.teacher->ap}, {"ap50", s.teacher->ap50}, {"ap75", s.teacher->ap75}};
  return j;
}

}  // namespace

int main(int argc, char** argv) {
  kd::model::TuneAllocatorForTensors();
  CLI::App app{"Real accuracy: student weights and the teacher against human boxes of the sample video"};
  std::vector<std::string> weights;
  std::string frames = "0:636", eval_dir = KD_SHARED_EVAL_DIR, config_path, json_path, video;
  int threads = 2;
  app.add_option("--weights", weights, "Student weights to score (repeatable)");
  app.add_option("--frames", frames, "Half-open 0-based frame range A:B")->capture_default_str();
  app.add_option("--eval-dir", eval_dir, "Folder with score.py and the human boxes")->capture_default_str();
  app.add_option("--config", config_path, "Recipe whose [refine] makes the refined labels (default: built-in)");
  app.add_option("--video", video, "Video (default: the sample video)");
  app.add_option("--json", json_path, "Write the results as JSON here");
  app.add_option("--threads", threads, "CPU threads for LibTorch")->capture_default_str()->check(CLI::Range(1, 256));
  CLI11_PARSE(app, argc, argv);
  kd::model::SetComputeThreads(threads);
  if (video.empty()) video = kd::AssetPath("vtest.avi");

  auto range = kd::daemon::ParseFrameRange(frames);
  if (!range.ok()) {
    std::fprintf(stderr, "bench_accuracy: %s\n", range.status().ToString().c_str());
    return 2;
  }
  kd::config::DistillOptions recipe;
  if (!config_path.empty()) {
    auto r = kd::config::LoadDistillOptions(config_path);
    if (!r.ok()) {
      std::fprintf(stderr, "bench_accuracy: %s\n", r.status().ToString().c_str());
      return 2;
    }
    recipe = *r;
  }
  const bool have_humans = kd::bench::HaveHumanBoxes(eval_dir);
  if (!have_humans) {
    std::printf("no human boxes at %s (score.py missing): reporting the teacher-relative columns only\n",
                eval_dir.c_str());
  }
  std::vector<kd::model::LoadedStudent> students;
  for (const auto& w : weights) {
    auto loaded = kd::model::LoadWeights(w);
    if (!loaded.ok()) {
      std::fprintf(stderr, "bench_accuracy: %s: %s\n", w.c_str(), loaded.status().ToString().c_str());
      return 2;
    }
    students.push_back(std::move(loaded).value());
  }
  auto teacher = kd::model::CenterNetTeacher::Load(kd::AssetPath("centernet.json"));
  if (!teacher.ok()) {
    std::fprintf(stderr, "bench_accuracy: %s (run scripts/fetch_assets.sh)\n", teacher.status().ToString().c_str());
    return 1;
  }
  const std::string tmp_dir = (std::filesystem::temp_directory_path() / "kd_bench_accuracy").string();
  std::filesystem::create_directories(tmp_dir);

  // The teacher's labels: raw (one scale) and fused over the recipe's scales; each also smoothed.
  kd::learner::DatasetOptions dopt;
  dopt.labels = {0};  // person: what the human boxes mark
  dopt.teacher_long_side = recipe.teacher_long_side;
  dopt.student_long_side = recipe.student.input_long_side;
  dopt.teacher_min_score = 0.01f;  // every box the scorer may rank
  kd::Stopwatch sw;
  auto raw = kd::learner::BuildDataset(video, range->begin, range->end, **teacher, dopt);
  if (!raw.ok()) {
    std::fprintf(stderr, "bench_accuracy: %s\n", raw.status().ToString().c_str());
    return 1;
  }
  const double raw_s = sw.ElapsedSeconds();
  kd::learner::DatasetOptions fopt = dopt;
  fopt.refine = recipe.refine;
  fopt.refine.enabled = true;
  fopt.refine.smooth = false;  // smoothed below, so that each step is measured alone too
  sw.Reset();
  auto fused = kd::learner::BuildDataset(video, range->begin, range->end, **teacher, fopt);
  if (!fused.ok()) {
    std::fprintf(stderr, "bench_accuracy: %s\n", fused.status().ToString().c_str());
    return 1;
  }
  const double fused_s = sw.ElapsedSeconds();
  auto smoothed = *raw;
  kd::learner::SmoothDatasetLabels(&smoothed, recipe.refine);
  auto refined = *fused;
  kd::learner::SmoothDatasetLabels(&refined, recipe.refine);

  struct Row {
    std::string name;
    Scores scores;
  };
  std::vector<Row> rows;
  auto score_row = [&](const std::string& name, const std::vector<FrameDetections>& dets, bool vs_labels) {
    Row r{name, {}};
    if (have_humans)
      r.scores.human = kd::bench::ScoreAgainstHumans(eval_dir, dets, frames, tmp_dir, std::to_string(rows.size()));
    if (vs_labels) {
      r.scores.refined = AgainstLabels(refined, dets);
      r.scores.teacher = AgainstLabels(*raw, dets);
    }
    rows.push_back(std::move(r));
  };
  const std::string sides = [&] {
    std::string s = std::to_string(recipe.teacher_long_side);
    for (int side : recipe.refine.extra_long_sides) s += "+" + std::to_string(side);
    return s;
  }();
  score_row("teacher, raw (" + std::to_string(raw->teacher_width) + "x" + std::to_string(raw->teacher_height) + ")",
            raw->teacher_dets, false);
  score_row("teacher, fused over " + sides, fused->teacher_dets, false);
  score_row("teacher, smoothed (+-" + std::to_string(recipe.refine.smooth_radius) + " frames)", smoothed.teacher_dets,
            false);
  score_row("teacher, refined (fused + smoothed)", refined.teacher_dets, false);
  for (size_t i = 0; i < students.size(); ++i) {
    auto& s = *students[i].student;
    s.eval();
    // The student at its own input size: a dataset view at that size (the raw one if it matches).
    std::vector<size_t> all(raw->size());
    std::iota(all.begin(), all.end(), 0);
    if (std::max(s.options().input_width, s.options().input_height) != raw->student_width &&
        std::max(s.options().input_width, s.options().input_height) != raw->student_height) {
      std::fprintf(stderr, "bench_accuracy: %s: input %dx%d differs from the recipe's student size %dx%d\n",
                   weights[i].c_str(), s.options().input_width, s.options().input_height, raw->student_width,
                   raw->student_height);
      return 2;
    }
    std::vector<FrameDetections> dets;
    sw.Reset();
    auto m = kd::learner::EvaluateStudent(s, *raw, all, 0.3f, &dets);
    if (!m.ok()) {
      std::fprintf(stderr, "bench_accuracy: %s: %s\n", weights[i].c_str(), m.status().ToString().c_str());
      return 1;
    }
    score_row("student " + std::filesystem::path(weights[i]).filename().string(), dets, true);
  }

  std::printf("\nframes %s of %s (%zu); teacher %.1f s raw, %.1f s over %s; human boxes: %s\n", frames.c_str(),
              video.c_str(), raw->size(), raw_s, fused_s, sides.c_str(),
              have_humans ? (eval_dir + "/pets09-s2l1/gt.txt").c_str() : "absent");
  std::printf("%-44s | %-23s | %-17s | %-17s\n", "detector (person)", "vs human: AP AP50 AP75", "vs refined AP AP50",
              "vs teacher AP AP50");
  json out = {{"frames", frames}, {"video", video}, {"eval_dir", have_humans ? eval_dir : ""}, {"rows", json::array()}};
  for (const auto& r : rows) {
    using M = kd::eval::CocoMetrics;
    std::printf("%-44s | %5s %5s %5s       | %5s %5s       | %5s %5s\n", r.name.c_str(),
                Cell(r.scores.human, "AP").c_str(), Cell(r.scores.human, "AP50").c_str(),
                Cell(r.scores.human, "AP75").c_str(), Cell(r.scores.refined, &M::ap).c_str(),
                Cell(r.scores.refined, &M::ap50).c_str(), Cell(r.scores.teacher, &M::ap).c_str(),
                Cell(r.scores.teacher, &M::ap50).c_str());
    json j = ToJson(r.scores);
    j["name"] = r.name;
    out["rows"].push_back(j);
  }
  if (!json_path.empty()) {
    std::ofstream f(json_path, std::ios::trunc);
    f << out.dump(2) << "\n";
    if (!f) {
      std::fprintf(stderr, "bench_accuracy: cannot write %s\n", json_path.c_str());
      return 1;
    }
  }
  return 0;
}
