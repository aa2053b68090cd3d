#include "learner/trainer.h"

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "learner/deployed_model.h"
#include "learner/distiller.h"
#include "learner/gate.h"
#include "learner/teacher_record.h"
#include "media/image_ops.h"
#include "update/delta.h"

namespace kd::learner {
using json = nlohmann::json;

namespace {
// Sleep between passes over the groups when no round started or finished.
constexpr std::chrono::milliseconds kIdleWait{300};
constexpr std::chrono::milliseconds kClusterPoll{100};

// One frame of a round's data: its image and teacher record, decoded; false to skip it.
bool AddFrame(DatasetAssembler& as, const std::string& dev, uint64_t seq, const std::vector<uint8_t>& jpeg,
              const std::vector<uint8_t>& blob) {
  auto image = media::DecodeJpeg(jpeg);
  if (!image.ok()) return false;
  auto row = DecodeTeacherRow(blob);
  if (!row.ok()) {
    KD_LOG(kWarn) << "teacher record " << dev << "/" << seq << ": " << row.status().ToString();
    return false;
  }
  return as.Add(*image, std::move(row).value()).ok();  // another camera size or class set: skipped
}

std::string OneLine(std::string what) {
  what.resize(std::min(what.size(), what.find('\n')));
  return what;
}

}  // namespace

Result<DistillDataset> AssembleFromStore(const storage::SampleStore& store,
                                         const std::vector<std::pair<std::string, uint64_t>>& keys) {
  DatasetAssembler as;
  for (const auto& [dev, seq] : keys) {
    KD_ASSIGN_OR_RETURN(auto frame, store.GetFrame(dev, seq));
    KD_ASSIGN_OR_RETURN(auto rec, store.GetTeacher(dev, seq));
    if (!frame || !rec) continue;  // aged out by retention since it was sampled
    (void)AddFrame(as, dev, seq, frame->jpeg, rec->blob);
  }
  return std::move(as).Finish();
}

Result<DistillDataset> AssembleFromFrames(const std::vector<JobFrame>& frames) {
  DatasetAssembler as;
  for (const auto& f : frames) (void)AddFrame(as, f.device_id, f.seq, f.jpeg, f.teacher_blob);
  return std::move(as).Finish();
}

TrainStage::TrainStage(LoopState& state, const storage::SampleStore& store, Catalogue& catalogue, Publisher& publisher,
                       const model::CenterNetTeacher& teacher, torch::Device device, config::DistillOptions recipe,
                       const model::LoadedStudent* bootstrap, const Clock& clock, cluster::WorkerPool* workers)
    : state_(state),
      store_(store),
      catalogue_(catalogue),
      publisher_(publisher),
      device_(device),
      recipe_(recipe),
      bootstrap_(bootstrap),
      clock_(clock),
      workers_(workers),
      trainer_(teacher, device, std::move(recipe)),
      scheduler_(state.options.schedule) {}

TrainStage::~TrainStage() = default;

void TrainStage::PublishFactoryModels() {
  if (!bootstrap_) return;
  std::vector<std::string> needing;
  {
    std::lock_guard lock(state_.mu);
    for (auto& [name, g] : state_.groups) {
      if (g.latest != 0 || g.devices.empty()) continue;
      g.arch = std::make_shared<const model::StudentOptions>(bootstrap_->student->options());
      needing.push_back(name);
    }
  }
  for (const auto& name : needing) {
    Status st = publisher_.Publish(name, update::StateOf(*bootstrap_->student), PublishScore{});
    if (!st.ok()) {
      KD_LOG(kError) << "group " << name << ": bootstrap: " << st.ToString();
    }
  }
}

std::optional<TrainStage::Prepared> TrainStage::Prepare(const std::string& name) {
  const auto& opt = state_.options;
  Prepared p;
  p.group = name;
  std::lock_guard lock(state_.mu);
  Group& g = state_.groups.at(name);
  if (!g.HasLabelsForARound(opt.training.min_frames, opt.training.min_new_frames)) return std::nullopt;
  g.labelled_at_last_round = g.labelled;
  auto batch = g.sampler->Sample(static_cast<size_t>(opt.training.round_frames));
  for (const auto& c : batch.items) p.train_keys.emplace_back(c.device_id, c.seq);
  for (const auto& [dev, seqs] : g.holdout) {
    for (uint64_t s : seqs) p.holdout_keys.emplace_back(dev, s);
  }
  p.arch = g.arch;
  p.deployed = g.deployed;
  p.latest = g.latest;
  p.reverts = g.reverts;
  return p;
}

RoundStart TrainStage::StartOf(const Prepared& p, uint64_t token) const {
  RoundStart start;
  start.token = token;
  if (p.deployed && p.arch) {
    start.arch = p.arch.get();
    start.state = &p.deployed->state;
    start.anchor = p.latest;
  }
  return start;
}

bool TrainStage::Round(const std::string& name, const std::atomic<bool>& stopping) {
  auto prepared = Prepare(name);
  if (!prepared) return false;
  auto data = AssembleFromStore(store_, prepared->train_keys);
  if (!data.ok()) return false;
  RoundStart start = StartOf(*prepared, prepared->reverts);
  update::TensorMap bootstrap_state;
  model::StudentOptions bootstrap_arch;
  if (!start.state && bootstrap_) {
    bootstrap_arch = bootstrap_->student->options();
    bootstrap_state = update::StateOf(*bootstrap_->student);
    start.arch = &bootstrap_arch;
    start.state = &bootstrap_state;
  }
  const auto on_step = [this, &stopping](double step_s) {
    state_.beats.trainer.Beat();
    {
      std::lock_guard lock(state_.mu);
      ++state_.train_steps;
      state_.train_step_seconds.Observe(step_s);
    }
    // Ingest first: the next step waits while a backlog floods in (learner/ingest_pressure.h).
    state_.pressure.PauseWhileBusy(stopping, [this] { state_.beats.trainer.Beat(); });
  };
  auto trained = trainer_.Train(name, *data, start,
                                {.iterations = state_.options.training.round_iterations,
                                 .seed = state_.options.training.seed,
                                 .update_fraction = UpdateFractionOf(state_.options)},
                                on_step, stopping);
  if (!trained.ok()) {
    KD_LOG(kWarn) << trained.status().message() << "; round skipped";
    return false;
  }
  if (trained->stopped) return true;
  Finish(*prepared, *trained);
  return true;
}

bool TrainStage::Finish(const Prepared& p, const TrainedRound& trained) {
  const auto& opt = state_.options;
  const std::string& name = p.group;
  std::shared_ptr<const model::StudentOptions> arch = p.arch;
  if (!arch) {
    arch = std::make_shared<const model::StudentOptions>(trained.arch);
    std::lock_guard lock(state_.mu);
    state_.groups.at(name).arch = arch;
  }
  const auto& deployed = p.deployed;
  // The candidate as devices would run it: a delta from the deployed version, reconstructed.
  std::optional<update::EncodedDelta> delta;
  update::TensorMap candidate;
  if (deployed) {
    auto enc = update::EncodeDelta(deployed->state, trained.state, trained.parameter_names, DeltaOptionsOf(opt));
    if (!enc.ok()) {
      KD_LOG(kError) << "group " << name << ": delta: " << enc.status().ToString();
      return false;
    }
    delta = std::move(enc).value();
    candidate = delta->reconstructed;
  } else {
    candidate = update::RoundParametersToF16(trained.state, trained.parameter_names);
  }
  auto hold = AssembleFromStore(store_, p.holdout_keys);
  json round{{"round", trained.round},
             {"frames", trained.frames},
             {"steps", trained.steps},
             {"loss", trained.loss},
             {"seconds", trained.seconds}};
  bool published = false;
  const size_t holdout_frames = hold.ok() ? hold->size() : 0;
  if (JudgeCandidate(holdout_frames, 0, 0, opt.gate) == GateVerdict::kWaiting) {
    round["gate"] = GateVerdictName(GateVerdict::kWaiting);
    RecordRound(name, round, p.latest);
    scheduler_.RoundDone(name, trained.seconds, RoundOutcome::kUndecided,
                         static_cast<double>(clock_.MonotonicNanos()) / 1e9);
    return false;
  }
  auto score_new = ScoreOnHoldout(*arch, candidate, *hold, opt.gate);
  HoldoutScore score_old;
  if (deployed) {
    auto r = ScoreOnHoldout(*arch, deployed->state, *hold, opt.gate);
    if (r.ok()) score_old = *r;
  }
  if (!score_new.ok()) {
    KD_LOG(kError) << "group " << name << ": evaluation: " << score_new.status().ToString();
    return false;
  }
  if (delta) {
    // The full weights (fp16) beside the delta's reconstruction: what the top-k costs this round.
    // When it costs more than publish.delta_max_ap_loss of held-out AP, a wide delta is tried, then
    // the version ships as full weights (ClimbUpdateLadder); the gate judges what devices will run.
    auto full = update::RoundParametersToF16(trained.state, trained.parameter_names);
    if (auto f = ScoreOnHoldout(*arch, full, *hold, opt.gate); f.ok()) {
      round["ap_full"] = f->ap;
      round["ap50_full"] = f->ap50;
      std::optional<update::EncodedDelta> wide;
      std::optional<HoldoutScore> wide_score;
      const auto score_wide = [&]() -> std::optional<double> {
        update::DeltaOptions wide_options = DeltaOptionsOf(opt);
        wide_options.max_fraction = opt.publish.delta_wide_fraction;
        auto enc = update::EncodeDelta(deployed->state, trained.state, trained.parameter_names, wide_options);
        if (!enc.ok()) return std::nullopt;
        auto w = ScoreOnHoldout(*arch, enc->reconstructed, *hold, opt.gate);
        if (!w.ok()) return std::nullopt;
        wide = std::move(enc).value();
        wide_score = *w;
        return w->ap;
      };
      const UpdateRung rung = ClimbUpdateLadder(f->ap, score_new->ap, score_wide, opt.publish);
      const std::string topk_loss = "top-k lost " + std::to_string(f->ap - score_new->ap) + " AP";
      if (rung == UpdateRung::kWideDelta) {
        round["delta"] = "widened: " + topk_loss + ", the wide delta " + std::to_string(f->ap - wide_score->ap);
        delta = std::move(wide);
        candidate = delta->reconstructed;
        score_new = *wide_score;
      } else if (rung == UpdateRung::kFull) {
        round["delta"] = "dropped: " + topk_loss +
                         (wide_score ? ", the wide delta " + std::to_string(f->ap - wide_score->ap) : std::string());
        candidate = std::move(full);
        score_new = *f;
        delta.reset();
      }
    }
  }
  const GateVerdict verdict = JudgeCandidate(holdout_frames, score_new->ap, score_old.ap, opt.gate);
  round["ap_candidate"] = score_new->ap;
  round["ap50_candidate"] = score_new->ap50;
  round["ap_deployed"] = score_old.ap;
  round["ap50_deployed"] = score_old.ap50;
  round["holdout_frames"] = holdout_frames;
  round["gate"] = GateVerdictName(verdict);
  const bool pass = verdict == GateVerdict::kPass;
  KD_LOG(kInfo) << "group " << name << " round " << trained.round << ": " << trained.frames << " frames, "
                << trained.steps << " steps in " << trained.seconds << " s, loss " << trained.loss
                << "; held-out AP/AP50 candidate " << score_new->ap << "/" << score_new->ap50
                << (round.contains("ap_full") ? " (full " + std::to_string(round["ap_full"].get<double>()) + ")"
                                              : std::string())
                << (round.contains("delta") ? " [delta " + round["delta"].get<std::string>() + "]" : std::string())
                << " vs deployed v" << p.latest << " " << score_old.ap << "/" << score_old.ap50 << " on "
                << holdout_frames << " frames -> " << (pass ? "publish" : "keep");
  if (pass) {
    Status st = publisher_.Publish(name, candidate,
                                   {.ap = score_new->ap,
                                    .ap_base = score_old.ap,
                                    .ap50 = score_new->ap50,
                                    .ap50_base = score_old.ap50,
                                    .holdout_frames = holdout_frames},
                                   delta ? &*delta : nullptr, p.latest);
    if (!st.ok()) {
      KD_LOG(kError) << "group " << name << ": publish: " << st.ToString();
      round["publish_error"] = st.ToString();
    } else {
      published = true;
      std::lock_guard lock(state_.mu);
      round["published_version"] = state_.groups.at(name).latest;
    }
  }
  RecordRound(name, round, p.latest);
  // A pass whose publish failed is no verdict against the model: the next round tries again.
  const RoundOutcome outcome = published ? RoundOutcome::kPublished
                               : pass    ? RoundOutcome::kUndecided
                                         : RoundOutcome::kRejected;
  scheduler_.RoundDone(name, trained.seconds, outcome, static_cast<double>(clock_.MonotonicNanos()) / 1e9);
  return published;
}

void TrainStage::RecordRound(const std::string& name, json& round, uint64_t deployed_version) {
  const int64_t now_us = clock_.WallMicros();
  round["time_unix_s"] = static_cast<double>(now_us) / 1e6;
  round["deployed_version"] = deployed_version;
  {
    std::lock_guard lock(state_.mu);
    Group& g = state_.groups.at(name);
    uint64_t up = 0, down = 0, backlog = 0;
    for (const auto& dev : g.devices) {
      if (auto it = state_.devices.find(dev); it != state_.devices.end()) {
        up += it->second.uplink_bytes, down += it->second.downlink_bytes, backlog += it->second.frames_unlabelled;
      }
    }
    round["uplink_bytes"] = up;
    round["downlink_bytes"] = down;
    round["label_backlog"] = backlog;
    ++g.rounds;
    ++g.gate_decisions[round.value("gate", std::string("unknown"))];
    g.last_round_json = round.dump();
  }
  // The log is for people and charts: a failed write is logged, never the end of the round.
  if (Status st = catalogue_.AppendRound(name, now_us, round.dump()); !st.ok()) {
    KD_LOG(kWarn) << "group " << name << ": round log: " << st.ToString();
  }
}

std::map<std::string, GroupSignals> TrainStage::ReadyGroups() {
  std::map<std::string, GroupSignals> ready;
  const int64_t now_us = clock_.WallMicros();
  std::lock_guard lock(state_.mu);
  for (const auto& [name, g] : state_.groups) {
    if (!g.HasLabelsForARound(state_.options.training.min_frames, state_.options.training.min_new_frames)) continue;
    if (auto r = retry_after_us_.find(name); r != retry_after_us_.end() && now_us < r->second) continue;
    GroupSignals s;
    s.drift = g.Drift();
    if (auto v = g.versions.find(g.latest); v != g.versions.end() && v->second.created_unix_s > 0) {
      s.deployed_age_s =
          std::max(0.0, static_cast<double>(now_us) / 1e6 - static_cast<double>(v->second.created_unix_s));
    }
    ready.emplace(name, s);
  }
  for (const auto& [worker, job] : in_flight_) ready.erase(job.round.group);
  return ready;
}

void TrainStage::RoundFailed(const std::string& name, const std::string& why) {
  // LibTorch reports failures as exceptions, a worker as an error; one must not end the daemon.
  // The deployed model and everything stored stay as they were; the group tries again after a pause.
  KD_LOG(kError) << "group " << name << ": training round failed: " << OneLine(why) << " (retrying in "
                 << kRetryAfterFailureUs / 1'000'000 << " s)";
  retry_after_us_[name] = clock_.WallMicros() + kRetryAfterFailureUs;
}

void TrainStage::RevertHalted() {
  std::vector<std::string> halted;
  {
    std::lock_guard lock(state_.mu);
    for (const auto& [name, g] : state_.groups) {
      if (g.rollout.stage() == RolloutStage::kHalted) halted.push_back(name);
    }
  }
  for (const auto& name : halted) {
    if (Status st = publisher_.Revert(name); !st.ok()) {
      KD_LOG(kError) << st.ToString();
    }
  }
}

bool TrainStage::RunLocal(const std::atomic<bool>& stopping) {
  auto ready = ReadyGroups();
  auto pick = scheduler_.Pick(ready, static_cast<double>(clock_.MonotonicNanos()) / 1e9);
  if (!pick) return false;
  bool trained = false;
  try {
    trained = Round(*pick, stopping);
  } catch (const std::exception& e) {
    RoundFailed(*pick, e.what());
  }
  return trained;
}

void TrainStage::Run(const std::atomic<bool>& stopping) {
  while (!stopping) {
    state_.beats.trainer.Beat();
    PublishFactoryModels();
    const bool worked = workers_ ? RunCluster(stopping) : RunLocal(stopping);
    RevertHalted();
    PublishSchedule();
    if (!stopping)
      std::this_thread::sleep_for(workers_ ? kClusterPoll : (worked ? std::chrono::milliseconds(0) : kIdleWait));
  }
}

// ---------------------------------------------------------------------------------------------
// Rounds on workers
// ---------------------------------------------------------------------------------------------

void TrainStage::Place() {
  std::vector<uint64_t> alive;  // the workers that train (label workers hold no groups)
  for (const auto& w : workers_->Workers()) {
    if (w.state == cluster::WorkerState::kAlive && w.role == cluster::WorkerRole::kTrain) alive.push_back(w.id);
  }
  // Jobs of workers that are gone are abandoned (their groups train again elsewhere).
  for (auto it = in_flight_.begin(); it != in_flight_.end();) {
    if (!workers_->Alive(it->first)) {
      KD_LOG(kWarn) << "group " << it->second.round.group << ": worker " << it->first
                    << " is gone; its round is abandoned";
      it = in_flight_.erase(it);
    } else {
      ++it;
    }
  }
  std::vector<std::string> groups;
  {
    std::lock_guard lock(state_.mu);
    for (const auto& [name, g] : state_.groups) groups.push_back(name);
  }
  std::map<uint64_t, std::vector<std::string>> load;
  for (uint64_t w : alive) load[w];
  std::vector<std::string> unplaced;
  for (const auto& name : groups) {
    auto it = placement_.find(name);
    if (it != placement_.end() && load.count(it->second.worker)) {
      load[it->second.worker].push_back(name);
    } else {
      if (it != placement_.end()) placement_.erase(it);
      unplaced.push_back(name);
    }
  }
  if (alive.empty()) return;
  auto place = [&](const std::string& name) {
    uint64_t best = alive.front();
    for (uint64_t w : alive) {
      if (load[w].size() < load[best].size()) best = w;
    }
    placement_[name] = Placement{.worker = best, .epoch = next_epoch_++, .token_sent = 0};
    load[best].push_back(name);
    KD_LOG(kInfo) << "group " << name << " placed on worker " << best << " (epoch " << placement_[name].epoch << ")";
  };
  for (const auto& name : unplaced) place(name);
  // Balance: move groups without a round in flight from the busiest worker to the idlest until
  // they differ by at most one (a worker that joined takes its share).
  while (true) {
    uint64_t most = alive.front(), least = alive.front();
    for (uint64_t w : alive) {
      if (load[w].size() > load[most].size()) most = w;
      if (load[w].size() < load[least].size()) least = w;
    }
    if (load[most].size() <= load[least].size() + 1) break;
    auto& from = load[most];
    auto movable = std::find_if(from.begin(), from.end(), [&](const std::string& g) {
      auto f = in_flight_.find(most);
      return f == in_flight_.end() || f->second.round.group != g;
    });
    if (movable == from.end()) break;
    const std::string name = *movable;
    from.erase(movable);
    placement_[name] = Placement{.worker = least, .epoch = next_epoch_++, .token_sent = 0};
    load[least].push_back(name);
    KD_LOG(kInfo) << "group " << name << " moved from worker " << most << " to worker " << least << " (epoch "
                  << placement_[name].epoch << ")";
  }
}

Status TrainStage::Dispatch(uint64_t worker, const std::string& name) {
  auto prepared = Prepare(name);
  if (!prepared) return Status::FailedPrecondition("too few labelled frames");
  Placement& place = placement_.at(name);
  // The start token changes with the placement (a new worker has no trainer for the group) and with
  // a revert (the trainer restarts from the reverted weights).
  const uint64_t token = place.epoch * 1'000'003ULL + prepared->reverts + 1;
  RoundJob job;
  job.group = name;
  job.epoch = place.epoch;
  job.token = token;
  job.iterations = state_.options.training.round_iterations;
  job.seed = state_.options.training.seed;
  job.update_fraction = UpdateFractionOf(state_.options);
  RoundStart start = StartOf(*prepared, token);
  job.anchor = start.anchor;
  // The start weights travel when the worker lacks them: a new token, or (sparse rounds) a newly
  // deployed version to anchor at.
  if (place.token_sent != token || (job.update_fraction < 1 && place.anchor_sent != job.anchor)) {
    const model::StudentImpl* source = nullptr;
    model::Student holder{nullptr};
    if (start.state) {
      holder = model::Student(*start.arch);
      KD_RETURN_IF_ERROR(update::LoadState(*holder, *start.state));
      source = holder.get();
    } else if (bootstrap_) {
      source = bootstrap_->student.get();
    }
    if (source) {
      model::WeightsMeta meta;
      meta.model_version = prepared->latest;
      meta.created_by = "kdlearnd round start";
      KD_ASSIGN_OR_RETURN(auto kdw, model::EncodeWeights(*source, meta, model::WeightDtype::kF32));
      job.start_kdw.assign(kdw.begin(), kdw.end());
    }
  }
  for (const auto& [dev, seq] : prepared->train_keys) {
    KD_ASSIGN_OR_RETURN(auto frame, store_.GetFrame(dev, seq));
    KD_ASSIGN_OR_RETURN(auto rec, store_.GetTeacher(dev, seq));
    if (!frame || !rec) continue;
    job.frames.push_back(
        JobFrame{.device_id = dev, .seq = seq, .jpeg = std::move(frame->jpeg), .teacher_blob = std::move(rec->blob)});
  }
  if (job.frames.empty()) return Status::FailedPrecondition("no stored frames for the round");
  KD_RETURN_IF_ERROR(workers_->SendJob(worker, EncodeRoundJob(job)));
  place.token_sent = token;
  place.anchor_sent = job.anchor;
  in_flight_[worker] =
      InFlight{.round = std::move(*prepared), .epoch = place.epoch, .token = token, .sent_us = clock_.WallMicros()};
  return Status::Ok();
}

void TrainStage::Collect(uint64_t worker) {
  auto got = workers_->TakeResult(worker);
  if (got.ok() && !got->has_value()) return;  // still training
  InFlight job = std::move(in_flight_.at(worker));
  in_flight_.erase(worker);
  const std::string& name = job.round.group;
  if (!got.ok()) {
    KD_LOG(kWarn) << "group " << name << ": worker " << worker << ": " << got.status().ToString();
    if (auto p = placement_.find(name); p != placement_.end()) p->second.token_sent = 0;  // resend the start
    return;
  }
  auto result = DecodeRoundResult(**got);
  if (!result.ok() || result->group != name || result->epoch != job.epoch) {
    RoundFailed(name, "worker " + std::to_string(worker) + " returned a malformed or mismatched result" +
                          (result.ok() ? std::string() : ": " + result.status().ToString()));
    return;
  }
  auto p = placement_.find(name);
  if (p == placement_.end() || p->second.epoch != job.epoch) {
    KD_LOG(kInfo) << "group " << name << ": result of epoch " << job.epoch << " dropped (the group moved)";
    return;
  }
  if (!result->error.empty()) {
    p->second.token_sent = 0;  // the worker may have lost its trainer: send the start again
    RoundFailed(name, "worker " + std::to_string(worker) + ": " + result->error);
    return;
  }
  {
    std::lock_guard lock(state_.mu);
    if (state_.groups.at(name).reverts != job.round.reverts) {
      KD_LOG(kInfo) << "group " << name << ": round result dropped (the group was reverted meanwhile)";
      return;
    }
  }
  if (result->stopped) return;
  auto loaded = model::DecodeWeights(std::vector<uint8_t>(result->trained_kdw.begin(), result->trained_kdw.end()));
  if (!loaded.ok()) {
    RoundFailed(name, "worker " + std::to_string(worker) + ": trained weights: " + loaded.status().ToString());
    return;
  }
  TrainedRound trained;
  trained.state = update::StateOf(*loaded->student);
  trained.parameter_names = update::ParameterNames(*loaded->student);
  trained.arch = loaded->student->options();
  trained.round = result->round;
  trained.frames = result->frames;
  trained.steps = result->steps;
  trained.loss = result->loss;
  trained.seconds = result->seconds;
  {
    std::lock_guard lock(state_.mu);
    state_.train_steps += static_cast<uint64_t>(result->steps);
  }
  try {
    Finish(job.round, trained);
  } catch (const std::exception& e) {
    RoundFailed(name, e.what());
  }
}

bool TrainStage::RunCluster(const std::atomic<bool>& stopping) {
  Place();
  bool worked = false;
  std::vector<uint64_t> busy;
  for (const auto& [worker, job] : in_flight_) busy.push_back(worker);
  for (uint64_t worker : busy) {
    if (stopping) return worked;
    const size_t before = in_flight_.size();
    Collect(worker);
    worked |= in_flight_.size() != before;
  }
  const double now_s = static_cast<double>(clock_.MonotonicNanos()) / 1e9;
  const auto ready = ReadyGroups();
  for (const auto& w : workers_->Workers()) {
    if (stopping) break;
    if (w.state != cluster::WorkerState::kAlive || w.role != cluster::WorkerRole::kTrain || in_flight_.count(w.id)) {
      continue;
    }
    std::map<std::string, GroupSignals> mine;
    for (const auto& [name, signals] : ready) {
      if (auto p = placement_.find(name); p != placement_.end() && p->second.worker == w.id)
        mine.emplace(name, signals);
    }
    auto pick = scheduler_.Pick(mine, now_s);
    if (!pick) continue;
    if (Status st = Dispatch(w.id, *pick); !st.ok()) {
      if (st.code() != Status::Code::kFailedPrecondition || workers_->Alive(w.id)) {
        RoundFailed(*pick, "dispatch to worker " + std::to_string(w.id) + ": " + st.ToString());
      }
      continue;
    }
    worked = true;
  }
  return worked;
}

void TrainStage::PublishSchedule() {
  const double now_s = static_cast<double>(clock_.MonotonicNanos()) / 1e9;
  json out{{"groups", json::parse(scheduler_.StatusJson(now_s))}};
  if (workers_) {
    json placement = json::object();
    for (const auto& [name, p] : placement_) placement[name] = {{"worker", p.worker}, {"epoch", p.epoch}};
    json workers = json::array();
    const int64_t mono_us = clock_.MonotonicNanos() / 1000;
    for (const auto& w : workers_->Workers()) {
      json groups = json::array();
      for (const auto& [name, p] : placement_) {
        if (p.worker == w.id) groups.push_back(name);
      }
      workers.push_back({{"id", w.id},
                         {"name", w.name},
                         {"role", cluster::WorkerRoleName(w.role)},
                         {"state", cluster::WorkerStateName(w.state)},
                         {"since_beat_s", static_cast<double>(mono_us - w.last_beat_us) / 1e6},
                         {"jobs", w.jobs_sent},
                         {"results", w.results},
                         {"training", in_flight_.count(w.id) ? json(in_flight_.at(w.id).round.group) : json(nullptr)},
                         {"groups", groups}});
    }
    out["placement"] = placement;
    out["workers"] = workers;
    out["generation"] = workers_->generation();
  }
  std::lock_guard lock(schedule_mu_);
  schedule_json_ = out.dump();
}

std::string TrainStage::ScheduleJson() const {
  std::lock_guard lock(schedule_mu_);
  return schedule_json_;
}

}  // namespace kd::learner
