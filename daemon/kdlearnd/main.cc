// kdlearnd: the learner.
//   serve    the daemon: ingest frames from edges, label, train continually, publish and roll out
//   distill  train a student from the teacher on a video range, write weights + a report (offline)
//   label    write the teacher's detections as COCO JSON (offline)
//   labels   dump the labels a (stopped) learner stored for a camera, as JSON lines
#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/assets.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/thread_name.h"
#include "config/daemon_options.h"
#include "config/distill_options.h"
#include "daemon/common/cli_common.h"
#include "daemon/common/daemon_main.h"
#include "daemon/common/operate.h"
#include "daemon/common/signals.h"
#include "eval/coco_json.h"
#include "learner/dataset.h"
#include "learner/distiller.h"
#include "learner/preflight.h"
#include "learner/service.h"
#include "learner/teacher_record.h"
#include "learner/worker.h"
#include "model/threads.h"
#include "model/weights_file.h"
#include "storage/sample_store.h"

#include "cluster/membership.h"
#include "ops/web_assets.h"

namespace kd {
namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "kdlearnd: error: %s\n", s.ToString().c_str());
  return s.IsInvalidArgument() || s.IsNotFound() ? 2 : 1;
}

torch::Device PickDevice() {
  return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
}

std::vector<int> LabelsFromNames(const std::vector<std::string>& names, Status* status) {
  std::vector<int> labels;
  for (const auto& n : names) {
    const int l = CocoLabelFromName(n);
    if (l < 0) *status = Status::InvalidArgument("unknown COCO class '" + n + "'");
    labels.push_back(l);
  }
  return labels;
}

void PrintProgress(const char* what, size_t done, size_t total, const Stopwatch& sw) {
  if (done % 25 != 0 && done != total) return;
  const double secs = sw.ElapsedSeconds();
  const double eta = done ? secs / static_cast<double>(done) * static_cast<double>(total - done) : 0;
  std::fprintf(stderr, "%s %zu/%zu  %.1f frames/s  ETA %.0fs\n", what, done, total,
               static_cast<double>(done) / std::max(secs, 1e-9), eta);
}

int RunDistill(const std::string& video, const std::string& frames, const std::string& out,
               const std::string& config_path, int64_t seed, const std::string& init, int threads, int iterations,
               const std::string& heldout, bool fp16) {
  kd::model::SetComputeThreads(threads);
  config::DistillOptions recipe;
  if (!config_path.empty()) {
    auto r = config::LoadDistillOptions(config_path);
    if (!r.ok()) return Fail(r.status());
    recipe = *r;
  }
  if (seed >= 0) recipe.seed = static_cast<uint64_t>(seed);
  if (iterations > 0) recipe.iterations = iterations;
  if (Status s = recipe.Validate(); !s.ok()) return Fail(s);
  auto range = daemon::ParseFrameRange(frames);
  if (!range.ok()) return Fail(range.status());
  // Everything that can be checked before labelling and training is checked first: a typo in
  // --out or --init must not cost the minutes of a run.
  if (Status s = daemon::CheckWritablePath("--out", out); !s.ok()) return Fail(s);
  std::optional<model::LoadedStudent> init_weights;
  if (!init.empty()) {
    auto loaded = model::LoadWeights(init);
    if (!loaded.ok()) return Fail(loaded.status().WithContext("--init"));
    init_weights = std::move(loaded).value();
  }
  if (!heldout.empty()) {
    if (auto hr = daemon::ParseFrameRange(heldout); !hr.ok()) return Fail(hr.status().WithContext("--heldout"));
  }
  auto teacher = model::CenterNetTeacher::Load(AssetPath("centernet.json"), PickDevice());
  if (!teacher.ok()) return Fail(teacher.status().WithContext("teacher (run scripts/fetch_assets.sh)"));
  learner::DatasetOptions dopt;
  dopt.student_long_side = recipe.student.input_long_side;
  dopt.teacher_long_side = recipe.teacher_long_side;
  dopt.refine = recipe.refine;
  Status ls;
  dopt.labels = LabelsFromNames(recipe.student.classes, &ls);
  if (!ls.ok()) return Fail(ls);
  Stopwatch sw;
  auto data = learner::BuildDataset(video, range->begin, range->end, **teacher, dopt,
                                    [&](size_t d, size_t t) { PrintProgress("teacher", d, t, sw); });
  if (!data.ok()) return Fail(data.status());
  KD_LOG(kInfo) << "teacher labelled " << data->size() << " frames in " << sw.ElapsedSeconds() << " s";
  auto sopt = learner::StudentOptionsFor(recipe, *data);
  if (!sopt.ok()) return Fail(sopt.status());
  model::Student student(*sopt);
  uint64_t base_version = 0;
  if (init_weights) {
    if (init_weights->student->options().ArchJson() != sopt->ArchJson()) {
      return Fail(Status::InvalidArgument("--init weights have a different architecture than the recipe"));
    }
    student = init_weights->student;
    base_version = init_weights->meta.model_version;
  }
  learner::Distiller distiller(recipe, student, **teacher, (*teacher)->device());
  std::vector<size_t> rows(data->size());
  std::iota(rows.begin(), rows.end(), 0);
  auto report = distiller.Train(*data, rows, [](const learner::TrainProgress& p) {
    if (p.iteration % 50 != 0 && p.iteration != p.iterations) return;
    std::string losses;
    for (const auto& [k, v] : p.stats.losses) losses += " " + k + "=" + std::to_string(v).substr(0, 6);
    std::fprintf(stderr, "iter %d/%d%s  %.1f frames/s  ETA %.0fs\n", p.iteration, p.iterations, losses.c_str(),
                 p.frames_per_second, p.eta_seconds);
  });
  if (!report.ok()) return Fail(report.status());
  model::WeightsMeta meta;
  meta.model_version = base_version + 1;
  meta.base_version = base_version;
  meta.created_by = "kdlearnd distill";
  meta.created_unix_s = SystemClock::Get().WallMicros() / 1000000;
  if (Status s = model::SaveWeights(out, *student, meta, fp16 ? model::WeightDtype::kF16 : model::WeightDtype::kF32);
      !s.ok()) {
    return Fail(s);
  }
  nlohmann::json rep = {{"weights", out},
                        {"video", video},
                        {"frames", frames},
                        {"iterations", report->iterations},
                        {"skipped_steps", report->skipped_steps},
                        {"train_seconds", report->seconds},
                        {"final_losses", report->final_losses},
                        {"seed", recipe.seed}};
  if (!heldout.empty()) {
    auto hr = daemon::ParseFrameRange(heldout);
    if (!hr.ok()) return Fail(hr.status());
    auto hdata = learner::BuildDataset(video, hr->begin, hr->end, **teacher, dopt);
    if (!hdata.ok()) return Fail(hdata.status());
    std::vector<size_t> hrows(hdata->size());
    std::iota(hrows.begin(), hrows.end(), 0);
    auto m = learner::EvaluateStudent(*student, *hdata, hrows);
    if (!m.ok()) return Fail(m.status());
    std::fprintf(stderr, "held-out %s vs teacher pseudo-GT:\n%s\n", heldout.c_str(),
                 eval::FormatMetricsTable(*m).c_str());
    rep["heldout"] = {{"frames", heldout}, {"ap", m->ap}, {"ap50", m->ap50}, {"ap75", m->ap75}, {"ar100", m->ar100}};
  }
  {
    std::ofstream report_file(out + ".report.json", std::ios::trunc);
    report_file << rep.dump(2) << "\n";
    if (!report_file) return Fail(Status::IOError("cannot write '" + out + ".report.json'"));
  }
  std::fprintf(stderr, "wrote %s (version %llu) and %s.report.json\n", out.c_str(),
               static_cast<unsigned long long>(meta.model_version), out.c_str());
  return 0;
}

int RunLabel(const std::string& video, const std::string& frames, const std::string& size, const std::string& coco_out,
             const std::string& results_out, double min_score, int threads, bool refine,
             const std::string& config_path) {
  kd::model::SetComputeThreads(threads);
  auto range = daemon::ParseFrameRange(frames);
  if (!range.ok()) return Fail(range.status());
  learner::DatasetOptions dopt;
  if (refine) {
    config::DistillOptions recipe;
    if (!config_path.empty()) {
      auto r = config::LoadDistillOptions(config_path);
      if (!r.ok()) return Fail(r.status());
      recipe = *r;
    }
    dopt.refine = recipe.refine;
    dopt.refine.enabled = true;
  }
  dopt.labels.clear();
  for (int l = 0; l < kCocoNumClasses; ++l) dopt.labels.push_back(l);
  int w = 0, h = 0;
  if (!size.empty()) {
    if (Status s = daemon::ParseSize(size, &w, &h); !s.ok()) return Fail(s);
    dopt.teacher_width = w;
    dopt.teacher_height = h;
  }
  auto teacher = model::CenterNetTeacher::Load(AssetPath("centernet.json"), PickDevice());
  if (!teacher.ok()) return Fail(teacher.status().WithContext("teacher (run scripts/fetch_assets.sh)"));
  dopt.student_long_side = 64;  // the student view is unused here; keep it small
  Stopwatch sw;
  auto data = learner::BuildDataset(video, range->begin, range->end, **teacher, dopt,
                                    [&](size_t d, size_t t) { PrintProgress("teacher", d, t, sw); });
  if (!data.ok()) return Fail(data.status());
  if (w && std::abs(static_cast<double>(w) / h - static_cast<double>(data->orig_width) / data->orig_height) > 0.02) {
    KD_LOG(kWarn) << "--size " << size << " does not keep the camera aspect (" << data->orig_width << "x"
                  << data->orig_height << "): boxes will be distorted";
  }
  std::vector<size_t> rows(data->size());
  std::iota(rows.begin(), rows.end(), 0);
  auto gt = learner::TeacherGroundTruth(*data, rows, static_cast<float>(min_score));
  if (Status s = eval::WriteCocoGroundTruth(coco_out, gt, data->orig_width, data->orig_height, dopt.labels); !s.ok()) {
    return Fail(s);
  }
  if (!results_out.empty()) {
    if (Status s = eval::WriteCocoResults(results_out, data->teacher_dets); !s.ok()) return Fail(s);
  }
  std::fprintf(stderr, "wrote teacher labels of %zu frames (%dx%d input) to %s\n", data->size(), data->teacher_width,
               data->teacher_height, coco_out.c_str());
  return 0;
}

// One JSON line per labelled frame of `device`: {"seq", "capture_time_us", "detections": [{"box":
// [x1,y1,x2,y2] in the frame's pixels, "label" (COCO index), "score"}]}: the detection targets as
// the labeller stored them (refined when the recipe refines). The learner must be stopped (the
// store is opened for writing, and RocksDB allows one process).
int RunLabels(const std::string& store_path, const std::string& device, const std::string& out_path) {
  storage::StoreOptions so;
  so.path = store_path;
  so.create_if_missing = false;
  auto store = storage::SampleStore::Open(so);
  if (!store.ok()) return Fail(store.status().WithContext("--store"));
  std::ofstream out(out_path, std::ios::trunc);
  if (!out) return Fail(Status::IOError("cannot write '" + out_path + "'"));
  size_t rows = 0;
  Status inner;
  Status st = (*store)->ScanTeacher(device, 0, 0, [&](const storage::TeacherRecord& rec) {
    auto frame = (*store)->GetFrame(device, rec.seq);
    auto row = learner::DecodeTeacherRow(rec.blob);
    if (!frame.ok() || !*frame || !row.ok()) {
      inner = !frame.ok() ? frame.status() : !row.ok() ? row.status() : Status::NotFound("frame of a teacher record");
      inner = inner.WithContext("seq " + std::to_string(rec.seq));
      return false;
    }
    nlohmann::json dets = nlohmann::json::array();
    for (const auto& d : row->teacher) {
      dets.push_back({{"box", {d.box.x1, d.box.y1, d.box.x2, d.box.y2}}, {"label", d.label}, {"score", d.score}});
    }
    out << nlohmann::json{{"seq", rec.seq}, {"capture_time_us", (*frame)->capture_time_us}, {"detections", dets}}.dump()
        << "\n";
    ++rows;
    return true;
  });
  if (!st.ok()) return Fail(st);
  if (!inner.ok()) return Fail(inner);
  if (!out.flush()) return Fail(Status::IOError("cannot write '" + out_path + "' (disk full?)"));
  std::fprintf(stderr, "wrote the labels of %zu frames of %s to %s\n", rows, device.c_str(), out_path.c_str());
  return 0;
}

int RunServe(const daemon::ConfigFlags& flags) {
  const daemon::DaemonConfig<config::LearnerOptions> kLearner = {
      .program = "kdlearnd",
      .env_prefix = config::kLearnerEnvPrefix,
      .load = &config::LoadLearnerOptions,
      .to_toml = &config::ToToml,
      .preflight = &learner::PreflightLearner,
      .log_level = [](const config::LearnerOptions& o) -> const std::string& { return o.log.level; }};
  auto start = daemon::StartDaemon(kLearner, flags);
  if (!start.options) return start.exit_code;
  const config::LearnerOptions& options = *start.options;
  KD_LOG(kInfo) << "effective configuration:\n" << config::ToToml(options);
  auto service = learner::LearnerService::Start(options);
  if (!service.ok()) return Fail(service.status());
  const learner::LearnerService& s = **service;
  daemon::Operated op;
  op.http.listen = options.http.listen;
  op.handlers.daemon = "kdlearnd";
  op.handlers.metrics = [&s] { return s.Metrics(); };
  op.handlers.live = [&s] { return s.Live(); };
  op.handlers.ready = [&s] { return s.Ready(); };
  op.handlers.status_json = [&s] { return s.StatusJson(); };
  op.handlers.routes["/api/v1/series"] = [&s](const std::map<std::string, std::string>&) {
    return ops::HttpReply::Json(s.SeriesJson());
  };
  op.handlers.routes["/api/v1/rounds"] = [&s](const std::map<std::string, std::string>& params) {
    auto group = params.find("group");
    size_t limit = 0;
    if (auto l = params.find("limit"); l != params.end()) limit = std::strtoull(l->second.c_str(), nullptr, 10);
    return ops::HttpReply::Json(s.RoundsJson(group == params.end() ? "" : group->second, limit));
  };
  op.handlers.assets = ops::LearnerWebAssets();
  const int sig = daemon::RunOperated(std::move(op));
  if (sig < 0) {
    (*service)->Drain();
    return 1;
  }
  KD_LOG(kInfo) << "signal " << sig << ": draining";
  (*service)->Drain();
  return 0;
}

// `kdlearnd worker`: trains round jobs for a coordinating `kdlearnd serve` (learner/worker.h).
int RunWorkerProcess(const daemon::ConfigFlags& flags, const std::string& coordinator, int64_t generation,
                     const std::string& name, const std::string& role) {
  const auto parsed_role = cluster::ParseWorkerRole(role);
  if (!parsed_role) return Fail(Status::InvalidArgument("--role: \"" + role + "\" is neither train nor label"));
  std::vector<std::string> overrides = config::EnvOverrides(config::kLearnerEnvPrefix, environ);
  overrides.insert(overrides.end(), flags.overrides.begin(), flags.overrides.end());
  auto options = config::LoadLearnerOptions(flags.config_path, overrides);
  if (!options.ok()) return Fail(options.status());
  learner::WorkerRunOptions run;
  run.coordinator = coordinator;
  if (generation > 0) run.generation = static_cast<uint64_t>(generation);
  run.name = name;
  run.role = *parsed_role;
  std::atomic<bool> stop{false};
  Status result;
  std::thread worker([&] {
    SetCurrentThreadName("kd-worker");
    result = learner::RunWorker(*options, run, stop);
    if (!result.ok()) ::kill(::getpid(), SIGTERM);  // wake the main thread
  });
  const int sig = daemon::WaitForTerminationSignal(-1);
  stop = true;
  worker.join();
  if (!result.ok()) {
    std::fprintf(stderr, "kdlearnd worker: error: %s\n", result.ToString().c_str());
    return result.code() == Status::Code::kPermissionDenied || result.IsInvalidArgument() || result.IsNotFound() ? 2
                                                                                                                 : 1;
  }
  KD_LOG(kInfo) << "signal " << sig << ": worker stopped";
  return 0;
}

}  // namespace
}  // namespace kd

int main(int argc, char** argv) {
  kd::model::ReexecWithRuntimeSettings(argv);  // may re-execute this program once (model/threads.h)
  kd::model::TuneAllocatorForTensors();
  CLI::App app{"kdlearnd: the learner of the kd continual distillation system"};
  app.require_subcommand(1);
  std::string log_level = "info";
  app.add_option("--log-level", log_level, "debug|info|warn|error")->capture_default_str();

  auto* distill = app.add_subcommand("distill", "Train a student from the teacher on a video range");
  std::string video, frames, out, config, init, heldout;
  int64_t seed = -1;
  int threads = 2, iterations = 0;
  distill->add_option("--video", video, "Video file, image folder or stream")->required();
  distill->add_option("--frames", frames, "Half-open 0-based frame range A:B (default: all)");
  distill->add_option("--out", out, "Output weights file (.kdw)")->required();
  distill->add_option("--config", config, "TOML recipe (default: built-in, see config/examples/distill.toml)");
  distill->add_option("--seed", seed, "Random seed (overrides the config)");
  distill->add_option("--init", init, "Start from these weights instead of from scratch");
  bool fp16 = false;
  distill->add_flag("--fp16", fp16, "Write the weights in fp16 (half the size; what devices should ship with)");
  distill->add_option("--iterations", iterations, "Optimiser steps (overrides the config)");
  distill->add_option("--heldout", heldout, "Also evaluate on this frame range against the teacher");
  distill->add_option("--threads", threads, "CPU threads for LibTorch")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));

  auto* label = app.add_subcommand("label", "Write the teacher's detections as COCO ground-truth JSON");
  std::string size, coco_out, results_out;
  double min_score = 0.3;
  label->add_option("--video", video, "Video file, image folder or stream")->required();
  label->add_option("--frames", frames, "Half-open 0-based frame range A:B (default: all)");
  label->add_option("--size", size, "Teacher input WxH, multiples of 32 (default: long side 512 at the camera aspect)");
  label->add_option("--coco-out", coco_out, "COCO ground-truth JSON of teacher boxes >= --min-score")->required();
  label->add_option("--results-out", results_out, "Also write all teacher detections (>= 0.05) as COCO results");
  label->add_option("--min-score", min_score, "Score threshold for the ground truth")->capture_default_str();
  bool refine = false;
  label->add_flag("--refine", refine,
                  "Refine the boxes as training does (scales fused, smoothed over consecutive frames)");
  label->add_option("--config", config, "TOML recipe whose [refine] --refine uses (default: built-in)");
  label->add_option("--threads", threads, "CPU threads for LibTorch")->capture_default_str()->check(CLI::Range(1, 256));

  auto* labels = app.add_subcommand("labels", "Dump the labels a stopped learner stored for a camera (JSON lines)");
  std::string store_path, device;
  labels->add_option("--store", store_path, "The learner's store directory")->required();
  labels->add_option("--device", device, "Camera id")->required();
  labels->add_option("--out", out, "Output file (JSON lines)")->required();

  auto* serve = app.add_subcommand("serve", "Run the learner daemon (SIGTERM/SIGINT drain and stop it)");
  kd::daemon::ConfigFlags serve_flags;
  serve->add_option("--config", serve_flags.config_path, "TOML file (see config/examples/kdlearnd.toml)");
  serve->add_option("--set", serve_flags.overrides, "Override a config key: section.key=value (repeatable)");
  serve->add_flag("--check-config", serve_flags.check_only, "Validate the configuration and exit (0 = valid, 2 = not)");
  serve->add_flag("--print-config", serve_flags.print_config, "Print the effective configuration as TOML");

  auto* worker = app.add_subcommand("worker", "Train rounds for a coordinating `kdlearnd serve` ([cluster])");
  kd::daemon::ConfigFlags worker_flags;
  std::string coordinator, worker_name, worker_role = "train";
  int64_t generation = 0;
  worker->add_option("--config", worker_flags.config_path,
                     "The learner's TOML file ([teacher], [training], [cluster])");
  worker->add_option("--set", worker_flags.overrides, "Override a config key: section.key=value (repeatable)");
  worker->add_option("--coordinator", coordinator, "HOST:PORT of the coordinator's cluster.listen")->required();
  worker->add_option("--generation", generation, "Join only this world generation (default: the current one)");
  worker->add_option("--name", worker_name, "Name in the coordinator's status (default: host:pid)");
  worker->add_option("--role", worker_role,
                     "train: train the rounds of the groups placed here; label: run the teacher on the "
                     "coordinator's new frames (default: train)");

  kd::daemon::BlockTerminationSignals();  // before any thread starts: the main thread takes them
  CLI11_PARSE(app, argc, argv);
  kd::LogLevel level;
  if (!kd::ParseLogLevel(log_level, &level)) {
    std::fprintf(stderr, "kdlearnd: error: bad --log-level '%s'\n", log_level.c_str());
    return 2;
  }
  kd::SetLogLevel(level);
  if (*serve) return kd::RunServe(serve_flags);
  if (*worker) return kd::RunWorkerProcess(worker_flags, coordinator, generation, worker_name, worker_role);
  if (*distill) return kd::RunDistill(video, frames, out, config, seed, init, threads, iterations, heldout, fp16);
  if (*labels) return kd::RunLabels(store_path, device, out);
  if (*label) return kd::RunLabel(video, frames, size, coco_out, results_out, min_score, threads, refine, config);
  return 2;
}
