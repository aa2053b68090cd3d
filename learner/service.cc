#include "learner/service.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <torch/torch.h>

#include "base/file_system.h"
#include "base/host_port.h"
#include "base/log.h"
#include "base/thread_name.h"
#include "base/thread_priority.h"
#include "config/distill_options.h"
#include "learner/admin.h"
#include "learner/catalogue.h"
#include "learner/control.h"
#include "learner/ingest.h"
#include "learner/labeller.h"
#include "learner/loop_state.h"
#include "learner/observe.h"
#include "learner/preflight.h"
#include "learner/publisher.h"
#include "learner/remote_teacher.h"
#include "learner/trainer.h"
#include "model/teacher.h"
#include "model/threads.h"
#include "model/weights_file.h"
#include "storage/sample_store.h"
#include "update/signing.h"
#include "wire/curve_keys.h"
#include "wire/endpoint.h"

#include "cluster/kv_store.h"
#include "cluster/membership.h"
#include "ops/series.h"

namespace kd::learner {
namespace fs = std::filesystem;

namespace {

// Edges see credits drop to zero, and frames in flight land, before the sockets close.
constexpr std::chrono::milliseconds kDrainGrace{200};

// How often the coordinator reads its workers' heartbeats and admits joins.
constexpr std::chrono::milliseconds kMembershipPoll{200};

}  // namespace

struct LearnerService::Impl {
  Impl(const config::LearnerOptions& options, const Clock& c) : opt(options), clock(c), state(options, c) {}

  Status Init();
  Status LoadRecipe();
  Status EnrollConfiguredDevices();
  Status BindSockets();
  Status OpenCluster();
  void PollMembership();
  void Stop();

  const config::LearnerOptions opt;
  const Clock& clock;
  LoopState state;
  config::DistillOptions recipe;
  torch::Device device{torch::kCPU};
  std::string admin_ep;

  // Resources, in the order they are opened.
  std::unique_ptr<storage::SampleStore> store;
  std::unique_ptr<model::CenterNetTeacher> teacher;
  std::unique_ptr<CenterNetTeacherPass> teacher_pass;
  std::optional<model::LoadedStudent> bootstrap;
  std::unique_ptr<wire::Context> ctx;
  std::unique_ptr<wire::Authenticator> auth;
  std::unique_ptr<wire::Server> frames, control;
  std::unique_ptr<wire::AdminServer> admin;
  std::unique_ptr<cluster::KvStore> cluster_store;  // [cluster] on: workers connect here
  std::unique_ptr<cluster::WorkerPool> workers;
  // [cluster] on: the labeller's teacher, on label workers when any (else teacher_pass).
  std::unique_ptr<RemoteTeacherPass> remote_teacher;

  // Stages, lowest first.
  std::unique_ptr<Catalogue> catalogue;
  std::unique_ptr<Publisher> publisher;
  std::unique_ptr<IngestStage> ingest_stage;
  std::unique_ptr<LabelStage> label_stage;
  std::unique_ptr<TrainStage> train_stage;
  std::unique_ptr<ControlStage> control_stage;
  std::unique_ptr<AdminStage> admin_stage;
  StatusSources sources;
  ops::SeriesRing series{720, kSeriesIntervalS};
  std::mutex sample_mu;  // the sampler waits on it between samples (woken to stop)
  std::condition_variable sample_cv;

  void SampleSeries();
  // Called first on the labeller and trainer threads: training.sched_idle or training.nice for
  // them and the LibTorch workers they start (a failure leaves normal priority and says so).
  void RunInBackground(const char* stage) const;

  std::atomic<bool> draining{false}, stopping{false};
  std::vector<std::thread> threads;
  bool stopped = false;
};

// [cluster]: the c10d store workers join, with this start's world generation (one more than the
// last start's, kept in the store directory so that workers of an earlier start are fenced).
Status LearnerService::Impl::OpenCluster() {
  if (!opt.cluster.enabled) return Status::Ok();
  KD_ASSIGN_OR_RETURN(const std::string secret, cluster::ReadSecretFile(opt.cluster.secret_file));
  const std::string generation_path = (fs::path(opt.store.path) / "cluster_generation").string();
  uint64_t generation = 1;
  if (auto bytes = FileSystem::Default().ReadFile(generation_path); bytes.ok()) {
    try {
      generation = std::stoull(std::string(bytes->begin(), bytes->end())) + 1;
    } catch (const std::exception&) {
      return Status::Corruption(generation_path + ": not a number");
    }
  }
  const std::string text = std::to_string(generation) + "\n";
  KD_RETURN_IF_ERROR(WriteFileAtomic(FileSystem::Default(), generation_path,
                                     std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
  std::string host;
  int port = 0;
  KD_RETURN_IF_ERROR(ParseHostPort(opt.cluster.listen, &host, &port).WithContext("cluster.listen"));
  KD_ASSIGN_OR_RETURN(cluster_store,
                      cluster::KvStore::Serve({.host = host, .port = port, .timeout_s = opt.cluster.worker_timeout_s}));
  KD_ASSIGN_OR_RETURN(
      workers,
      cluster::WorkerPool::Open(
          *cluster_store,
          {.secret = secret, .generation = generation, .worker_timeout_s = opt.cluster.worker_timeout_s}, clock));
  KD_LOG(kInfo) << "cluster: workers join at " << host << ":" << cluster_store->port() << " (generation " << generation
                << ")" << (IsLoopbackHost(host) ? "" : "; a PRIVATE network only: the store is unencrypted");
  return Status::Ok();
}

void LearnerService::Impl::PollMembership() {
  while (!stopping) {
    (void)workers->Poll();
    std::this_thread::sleep_for(kMembershipPoll);
  }
}

void LearnerService::Impl::RunInBackground(const char* stage) const {
  if (opt.training.sched_idle) {
    Status st = SetCurrentThreadIdle();
    if (st.ok()) return;
    KD_LOG(kWarn) << stage << ": not under SCHED_IDLE (" << st.ToString() << "); training.nice applies";
  }
  if (opt.training.nice == 0) return;
  if (Status st = SetCurrentThreadNice(opt.training.nice); !st.ok()) {
    KD_LOG(kWarn) << stage << ": runs at normal priority: " << st.ToString();
  }
}

Status LearnerService::Impl::LoadRecipe() {
  if (!opt.training.recipe.empty()) {
    KD_ASSIGN_OR_RETURN(recipe, config::LoadDistillOptions(opt.training.recipe));
  }
  if (opt.training.bootstrap.empty()) return Status::Ok();
  KD_ASSIGN_OR_RETURN(auto b, model::LoadWeights(opt.training.bootstrap));
  bootstrap = std::move(b);
  // The student's classes and its one-to-one branch come from the bootstrap model. CAKD trains
  // the one-to-one branch on cross-head predictions, so an NMS-free bootstrap needs CrossKD too.
  recipe.cakd = bootstrap->student->options().one_to_one;
  recipe.cakd_stride = bootstrap->student->options().one_to_one_stride;
  if (recipe.cakd && !recipe.crosskd) {
    KD_LOG(kWarn) << "training.bootstrap is NMS-free (one-to-one branch): CAKD trains that branch on cross-head "
                     "predictions, so crosskd is turned on for this learner";
    recipe.crosskd = true;
  }
  return recipe.Validate().WithContext("training.recipe with training.bootstrap");
}

Status LearnerService::Impl::EnrollConfiguredDevices() {
  for (const auto& d : opt.devices) {
    std::string key;
    if (!d.key.empty()) {
      KD_ASSIGN_OR_RETURN(key, wire::ReadCurvePublicKey(d.key));
    }
    KD_RETURN_IF_ERROR(EnrollDevice(state, auth.get(), d.id, key));
  }
  KD_ASSIGN_OR_RETURN(const auto persisted, catalogue->LoadDevices());
  for (const auto& rec : persisted) {
    if (rec.revoked) {
      // A kdctl revocation outlives restarts, also for devices listed in the config file.
      {
        std::lock_guard lock(state.mu);
        DeviceInfo& d = state.Device(rec.id);
        d.enrolled = false;
        d.public_key = rec.public_key;
      }
      if (auth) auth->Revoke(rec.id);
      continue;
    }
    KD_RETURN_IF_ERROR(EnrollDevice(state, auth.get(), rec.id, rec.public_key));
  }
  return Status::Ok();
}

Status LearnerService::Impl::BindSockets() {
  wire::Limits limits;
  limits.max_payload_bytes = static_cast<size_t>(opt.server.max_frame_bytes);
  wire::ServerOptions fo;
  fo.endpoint = opt.server.frames_endpoint;
  fo.limits = limits;
  fo.heartbeat_ivl_ms = opt.server.heartbeat_ms;
  fo.heartbeat_timeout_ms = opt.server.timeout_ms;
  fo.heartbeat_ttl_ms = opt.server.timeout_ms;
  fo.authenticator = auth.get();
  if (!opt.server.insecure) {
    KD_ASSIGN_OR_RETURN(fo.curve, wire::ReadCurveKeyPair(opt.server.secret_key));
  }
  KD_ASSIGN_OR_RETURN(frames, wire::Server::Bind(*ctx, fo));
  wire::ServerOptions co = fo;
  co.endpoint = opt.server.control_endpoint;
  co.limits.max_payload_bytes = std::max<size_t>(1 << 20, static_cast<size_t>(opt.publish.chunk_bytes) * 2);
  co.linger_ms = 1000;
  KD_ASSIGN_OR_RETURN(control, wire::Server::Bind(*ctx, co));
  admin_ep = opt.server.admin_endpoint.empty() ? "ipc://" + (fs::path(opt.store.path) / "admin.sock").string()
                                               : opt.server.admin_endpoint;
  KD_ASSIGN_OR_RETURN(admin, wire::AdminServer::Bind(*ctx, admin_ep));
  return Status::Ok();
}

Status LearnerService::Impl::Init() {
  model::SetComputeThreads(opt.training.threads);
  model::TuneAllocatorForTensors();
  device = PickTrainingDevice(opt.training.device);
  KD_RETURN_IF_ERROR(LoadRecipe());

  storage::StoreOptions so;
  so.path = opt.store.path;
  so.max_bytes = opt.store.max_bytes;
  so.ttl_seconds = opt.store.ttl_seconds;
  so.sync_writes = opt.store.sync_writes;
  KD_ASSIGN_OR_RETURN(store, storage::SampleStore::Open(so));
  const std::string artifacts_dir = (fs::path(opt.store.path) / "artifacts").string();
  KD_RETURN_IF_ERROR(FileSystem::Default().CreateDirs(artifacts_dir));

  // Updates are always signed (the config requires the key, insecure or not).
  KD_ASSIGN_OR_RETURN(auto signing_key, update::ReadSigningKey(opt.publish.signing_key));

  const std::string teacher_path = TeacherModelPath(opt);
  auto teacher_or = model::CenterNetTeacher::Load(teacher_path, device);
  if (!teacher_or.ok()) return teacher_or.status().WithContext("teacher " + teacher_path);
  teacher = std::move(teacher_or).value();
  // Ingest first: before each forward the labeller waits while a backlog floods in.
  teacher_pass = std::make_unique<CenterNetTeacherPass>(*teacher, static_cast<size_t>(opt.teacher.batch), [this] {
    state.pressure.PauseWhileBusy(stopping, [this] { state.beats.labeller.Beat(); });
  });

  catalogue = std::make_unique<Catalogue>(state, *store, artifacts_dir);
  publisher = std::make_unique<Publisher>(state, *catalogue, std::move(signing_key), clock);
  KD_RETURN_IF_ERROR(catalogue->Load());
  KD_ASSIGN_OR_RETURN(const size_t records, catalogue->RebuildFromStore());
  if (records > 0) {
    KD_LOG(kInfo) << "rebuilt replay and hold-out sets from " << records << " stored teacher records";
  }

  // Sockets: the ZAP handler first (a CURVE server without one accepts any client key).
  ctx = std::make_unique<wire::Context>();
  if (!opt.server.insecure) {
    KD_ASSIGN_OR_RETURN(auth, wire::Authenticator::Start(*ctx));
  }
  KD_RETURN_IF_ERROR(EnrollConfiguredDevices());
  KD_RETURN_IF_ERROR(BindSockets());
  KD_RETURN_IF_ERROR(OpenCluster());

  if (workers) remote_teacher = std::make_unique<RemoteTeacherPass>(*workers, *teacher_pass);
  label_stage = std::make_unique<LabelStage>(
      state, *store, *catalogue, remote_teacher ? static_cast<TeacherPass&>(*remote_teacher) : *teacher_pass,
      recipe.refine);
  ingest_stage = std::make_unique<IngestStage>(state, *store, clock, draining, [this] { label_stage->Wake(); });
  train_stage = std::make_unique<TrainStage>(state, *store, *catalogue, *publisher, *teacher, device, recipe,
                                             bootstrap ? &*bootstrap : nullptr, clock, workers.get());
  control_stage = std::make_unique<ControlStage>(state, *publisher, *catalogue, clock);
  sources = StatusSources{.store = store.get(),
                          .frames = frames.get(),
                          .auth = auth.get(),
                          .draining = &draining,
                          .teacher_loaded = teacher != nullptr,
                          .started_unix_s = clock.WallMicros() / 1'000'000,
                          .schedule = [this] { return train_stage->ScheduleJson(); }};
  admin_stage = std::make_unique<AdminStage>(state, *catalogue, *publisher, auth.get(), sources, clock);

  threads.emplace_back([this] {
    SetCurrentThreadName("kd-ingest");
    ingest_stage->Run(*frames, stopping);
  });
  threads.emplace_back([this] {
    SetCurrentThreadName("kd-labeller");
    RunInBackground("labeller");
    label_stage->Run(stopping);
  });
  threads.emplace_back([this] {
    SetCurrentThreadName("kd-trainer");
    RunInBackground("trainer");
    train_stage->Run(stopping);
  });
  threads.emplace_back([this] {
    SetCurrentThreadName("kd-control");
    control_stage->Run(*control, stopping);
  });
  threads.emplace_back([this] {
    SetCurrentThreadName("kd-admin");
    admin_stage->Run(*admin, stopping);
  });
  threads.emplace_back([this] {
    SetCurrentThreadName("kd-series");
    SampleSeries();
  });
  if (workers) {
    threads.emplace_back([this] {
      SetCurrentThreadName("kd-membership");
      PollMembership();
    });
  }
  KD_LOG(kInfo) << "kdlearnd ready: frames " << frames->bound_endpoint() << ", control " << control->bound_endpoint()
                << ", admin " << admin_ep << ", device " << device.str() << ", "
                << (opt.server.insecure ? "INSECURE (no CURVE)" : "CURVE + ZAP allowlist");
  if (opt.server.insecure) {
    KD_LOG(kWarn) << "INSECURE: server.insecure = true: frames and control travel in plaintext and any process "
                     "that reaches "
                  << opt.server.frames_endpoint << " can send frames as any device (loopback only; for tests and labs)";
  }
  return Status::Ok();
}

// The dashboard's series: one sample per interval until the service stops.
void LearnerService::Impl::SampleSeries() {
  std::unique_lock lock(sample_mu);
  while (!stopping) {
    std::map<std::string, double> gauges, counters;
    LearnerSeriesSample(state, sources, &gauges, &counters);
    series.Append(static_cast<double>(clock.WallMicros()) / 1e6, gauges, counters);
    sample_cv.wait_for(lock, std::chrono::duration<double>(kSeriesIntervalS), [this] { return stopping.load(); });
  }
}

void LearnerService::Impl::Stop() {
  if (stopped) return;
  stopped = true;
  draining = true;
  std::this_thread::sleep_for(kDrainGrace);
  {
    std::lock_guard lock(sample_mu);
    stopping = true;
  }
  sample_cv.notify_all();
  if (label_stage) label_stage->Wake();
  if (ctx) ctx->Shutdown();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  threads.clear();
  // Stages borrow the sockets and the store: they go first.
  admin_stage.reset();
  control_stage.reset();
  train_stage.reset();
  ingest_stage.reset();
  label_stage.reset();
  remote_teacher.reset();
  workers.reset();
  cluster_store.reset();
  admin.reset();
  frames.reset();
  control.reset();
  auth.reset();
  ctx.reset();
  if (store) {
    Status st = store->Flush();
    if (!st.ok()) {
      KD_LOG(kWarn) << "flush on shutdown: " << st.ToString();
    }
    publisher.reset();
    catalogue.reset();
    store.reset();
  }
  uint64_t received = 0, writes = 0;
  {
    std::lock_guard lock(state.mu);
    received = state.frames_received;
    writes = state.ingest_writes;
  }
  KD_LOG(kInfo) << "kdlearnd stopped (ingest: " << received << " frames stored or acked again in " << writes
                << " synced writes)";
}

Result<std::unique_ptr<LearnerService>> LearnerService::Start(const config::LearnerOptions& options,
                                                              const Clock& clock) {
  auto impl = std::make_unique<Impl>(options, clock);
  Status st = impl->Init();
  if (!st.ok()) {
    impl->Stop();
    return st;
  }
  return std::unique_ptr<LearnerService>(new LearnerService(std::move(impl)));
}

LearnerService::LearnerService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LearnerService::~LearnerService() { Drain(); }
void LearnerService::Drain() { impl_->Stop(); }
std::string LearnerService::StatusJson() const { return impl_->admin_stage ? impl_->admin_stage->StatusJson() : "{}"; }
std::vector<ops::MetricFamily> LearnerService::Metrics() const {
  return LearnerMetrics(impl_->state, impl_->sources, impl_->clock.WallMicros());
}
ops::HealthReport LearnerService::Live() const { return LearnerLiveness(impl_->state); }
ops::HealthReport LearnerService::Ready() const { return LearnerReadiness(impl_->state, impl_->sources); }
std::string LearnerService::SeriesJson() const { return impl_->series.Json(); }
std::string LearnerService::RoundsJson(const std::string& group, size_t limit) const {
  return impl_->admin_stage ? impl_->admin_stage->RoundsJson(group, limit) : "{\"groups\":{}}";
}
std::string LearnerService::frames_endpoint() const { return impl_->frames ? impl_->frames->bound_endpoint() : ""; }
std::string LearnerService::control_endpoint() const { return impl_->control ? impl_->control->bound_endpoint() : ""; }
std::string LearnerService::admin_endpoint() const { return impl_->admin_ep; }

}  // namespace kd::learner
