#include "learner/worker.h"

#include <chrono>
#include <memory>
#include <thread>
#include <unistd.h>

#include <torch/torch.h>

#include "base/host_port.h"
#include "base/log.h"
#include "base/text.h"
#include "config/distill_options.h"
#include "learner/label_job.h"
#include "learner/labeller.h"
#include "learner/preflight.h"
#include "learner/remote_teacher.h"
#include "learner/round_job.h"
#include "learner/round_trainer.h"
#include "learner/trainer.h"
#include "model/teacher.h"
#include "model/threads.h"
#include "model/weights_file.h"

#include "cluster/kv_store.h"
#include "cluster/membership.h"

namespace kd::learner {
namespace {

std::string DefaultName() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) std::snprintf(host, sizeof host, "unknown");
  return std::string(host) + ":" + std::to_string(getpid());
}

void SleepUnlessStopped(double seconds, const std::atomic<bool>& stop) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!stop && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

// What a worker needs across its memberships: the teacher, the recipe, the device.
struct WorkerContext {
  std::unique_ptr<model::CenterNetTeacher> teacher;
  std::unique_ptr<CenterNetTeacherPass> teacher_pass;  // a label worker's
  config::DistillOptions recipe;
  torch::Device device{torch::kCPU};
};

// Trains one job; the result carries either weights or the error.
RoundResult Train(WorkerContext& ctx, std::unique_ptr<RoundTrainer>& trainer, const RoundJob& job,
                  const std::atomic<bool>& stop) {
  RoundResult out;
  out.group = job.group;
  out.epoch = job.epoch;
  try {
    auto data = AssembleFromFrames(job.frames);
    if (!data.ok()) {
      out.error = "round data: " + data.status().ToString();
      return out;
    }
    std::optional<model::LoadedStudent> start_model;
    update::TensorMap start_state;
    RoundStart start;
    start.token = job.token;
    start.anchor = job.anchor;
    if (!job.start_kdw.empty()) {
      auto loaded = model::DecodeWeights(std::vector<uint8_t>(job.start_kdw.begin(), job.start_kdw.end()));
      if (!loaded.ok()) {
        out.error = "start weights: " + loaded.status().ToString();
        return out;
      }
      start_model = std::move(loaded).value();
      start_state = update::StateOf(*start_model->student);
      start.arch = &start_model->student->options();
      start.state = &start_state;
      // The recipe's CAKD branch follows the student, as in the coordinator (learner/service.cc).
      config::DistillOptions recipe = ctx.recipe;
      recipe.cakd = start_model->student->options().one_to_one;
      recipe.cakd_stride = start_model->student->options().one_to_one_stride;
      if (recipe.cakd) recipe.crosskd = true;
      if (!trainer || recipe.cakd != ctx.recipe.cakd || recipe.crosskd != ctx.recipe.crosskd) {
        ctx.recipe = recipe;
        trainer = std::make_unique<RoundTrainer>(*ctx.teacher, ctx.device, ctx.recipe);
      }
    }
    if (!trainer) trainer = std::make_unique<RoundTrainer>(*ctx.teacher, ctx.device, ctx.recipe);
    auto trained = trainer->Train(
        job.group, *data, start,
        {.iterations = job.iterations, .seed = job.seed, .update_fraction = job.update_fraction}, nullptr, stop);
    if (!trained.ok()) {
      out.error = trained.status().ToString();
      return out;
    }
    out.round = trained->round;
    out.frames = trained->frames;
    out.steps = trained->steps;
    out.loss = trained->loss;
    out.seconds = trained->seconds;
    out.stopped = trained->stopped;
    model::Student student(trained->arch);
    if (Status st = update::LoadState(*student, trained->state); !st.ok()) {
      out.error = st.ToString();
      return out;
    }
    model::WeightsMeta meta;
    meta.created_by = "kdlearnd worker";
    auto kdw = model::EncodeWeights(*student, meta, model::WeightDtype::kF32);
    if (!kdw.ok()) {
      out.error = kdw.status().ToString();
      return out;
    }
    out.trained_kdw.assign(kdw->begin(), kdw->end());
  } catch (const std::exception& e) {
    out.error = "LibTorch: " + FirstLine(e.what());
  }
  return out;
}

}  // namespace

Status RunWorker(const config::LearnerOptions& options, const WorkerRunOptions& run, const std::atomic<bool>& stop) {
  std::string host;
  int port = 0;
  KD_RETURN_IF_ERROR(ParseHostPort(run.coordinator, &host, &port).WithContext("--coordinator"));
  if (port == 0) return Status::InvalidArgument("--coordinator: needs the coordinator's port");
  if (options.cluster.secret_file.empty()) {
    return Status::InvalidArgument("cluster.secret_file: missing (the secret shared with the coordinator)");
  }
  KD_ASSIGN_OR_RETURN(const std::string secret, cluster::ReadSecretFile(options.cluster.secret_file));

  model::SetComputeThreads(options.training.threads);
  model::TuneAllocatorForTensors();
  WorkerContext ctx;
  ctx.device = PickTrainingDevice(options.training.device);
  if (!options.training.recipe.empty()) {
    KD_ASSIGN_OR_RETURN(ctx.recipe, config::LoadDistillOptions(options.training.recipe));
  }
  const std::string teacher_path = TeacherModelPath(options);
  auto teacher = model::CenterNetTeacher::Load(teacher_path, ctx.device);
  if (!teacher.ok()) return teacher.status().WithContext("teacher " + teacher_path);
  ctx.teacher = std::move(teacher).value();
  if (run.role == cluster::WorkerRole::kLabel) {
    ctx.teacher_pass = std::make_unique<CenterNetTeacherPass>(*ctx.teacher, static_cast<size_t>(options.teacher.batch));
    // As the coordinator's labeller: teacher.threads when set (0 = training.threads).
    if (options.teacher.threads > 0) model::SetThisThreadsComputeThreads(options.teacher.threads);
  }

  const std::string name = run.name.empty() ? DefaultName() : run.name;
  while (!stop) {
    auto store = cluster::KvStore::Connect({.host = host, .port = port, .timeout_s = options.cluster.worker_timeout_s});
    if (!store.ok()) {
      KD_LOG(kWarn) << "worker: coordinator " << run.coordinator << ": " << store.status().message() << " (retrying)";
      SleepUnlessStopped(run.reconnect_s, stop);
      continue;
    }
    auto link = cluster::WorkerLink::Join(**store, {.secret = secret,
                                                    .name = name,
                                                    .role = run.role,
                                                    .generation = run.generation,
                                                    .heartbeat_s = options.cluster.heartbeat_s,
                                                    .join_timeout_s = options.cluster.worker_timeout_s});
    if (!link.ok()) {
      if (link.status().code() == Status::Code::kPermissionDenied) return link.status();
      KD_LOG(kWarn) << "worker: join: " << link.status().message() << " (retrying)";
      SleepUnlessStopped(run.reconnect_s, stop);
      continue;
    }
    KD_LOG(kInfo) << cluster::WorkerRoleName(run.role) << " worker " << (*link)->id() << " (" << name
                  << ") joined generation " << (*link)->generation() << " at " << run.coordinator << ", device "
                  << ctx.device.str();
    std::unique_ptr<RoundTrainer> trainer;  // per membership: a new member gets new placements
    while (!stop) {
      auto job_bytes = (*link)->NextJob(1.0, stop);
      if (!job_bytes.ok()) {
        if (job_bytes.status().code() == Status::Code::kPermissionDenied) {
          KD_LOG(kWarn) << "worker: " << job_bytes.status().message() << " (dropped)";
          continue;
        }
        KD_LOG(kWarn) << "worker: " << job_bytes.status().message();
        break;  // declared dead, or the coordinator is gone: join again
      }
      if (!job_bytes->has_value()) continue;
      if (run.role == cluster::WorkerRole::kLabel) {
        auto job = DecodeLabelJob(**job_bytes);
        LabelResult result;
        if (!job.ok()) {
          result.error = job.status().ToString();
        } else {
          result = AnswerLabelJob(*job, *ctx.teacher_pass, stop);
        }
        if (result.error.empty()) {
          KD_LOG(kInfo) << "worker: labelled " << result.rows.size() << " frames in " << result.seconds << " s";
        } else {
          KD_LOG(kWarn) << "worker: label job: " << result.error;
        }
        if (Status st = (*link)->PutResult(EncodeLabelResult(result)); !st.ok()) {
          KD_LOG(kWarn) << "worker: result: " << st.message();
          break;
        }
        continue;
      }
      auto job = DecodeRoundJob(**job_bytes);
      RoundResult result;
      if (!job.ok()) {
        result.error = job.status().ToString();
      } else {
        result = Train(ctx, trainer, *job, stop);
        if (result.error.empty()) {
          KD_LOG(kInfo) << "worker: group " << job->group << " round " << result.round << ": " << result.steps
                        << " steps on " << result.frames << " frames in " << result.seconds << " s, loss "
                        << result.loss;
        } else {
          KD_LOG(kWarn) << "worker: group " << job->group << ": " << result.error;
        }
      }
      if (Status st = (*link)->PutResult(EncodeRoundResult(result)); !st.ok()) {
        KD_LOG(kWarn) << "worker: result: " << st.message();
        break;
      }
    }
    if (stop) {
      (void)(*link)->Leave();
      KD_LOG(kInfo) << "worker " << (*link)->id() << " left";
      return Status::Ok();
    }
    link->reset();
    SleepUnlessStopped(run.reconnect_s, stop);
  }
  return Status::Ok();
}

}  // namespace kd::learner
