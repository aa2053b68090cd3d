#include "learner/trainer.h"

#include <chrono>
#include <random>
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
// Sleep between passes over the groups when no group had enough frames for a round.
constexpr std::chrono::milliseconds kIdleWait{300};
// Learning-rate scale of continual rounds (after the recipe's warm-up): small steps from a model
// that already works.
constexpr double kContinualLrScale = 0.3;
}  // namespace

struct TrainStage::GroupTrainer {
  model::Student student{nullptr};
  std::unique_ptr<Distiller> distiller;
  uint64_t rounds = 0;
  uint64_t reverts_seen = 0;  // Group::reverts when made: a later revert restarts from its weights
};

Result<DistillDataset> AssembleFromStore(const storage::SampleStore& store,
                                         const std::vector<std::pair<std::string, uint64_t>>& keys) {
  DatasetAssembler as;
  for (const auto& [dev, seq] : keys) {
    KD_ASSIGN_OR_RETURN(auto frame, store.GetFrame(dev, seq));
    KD_ASSIGN_OR_RETURN(auto rec, store.GetTeacher(dev, seq));
    if (!frame || !rec) continue;  // aged out by retention since it was sampled
    auto image = media::DecodeJpeg(frame->jpeg);
    if (!image.ok()) continue;
    auto row = DecodeTeacherRow(rec->blob);
    if (!row.ok()) {
      KD_LOG(kWarn) << "teacher record " << dev << "/" << seq << ": " << row.status().ToString();
      continue;
    }
    Status st = as.Add(*image, std::move(row).value());
    if (!st.ok()) continue;  // another camera size or class set than the group's student
  }
  return std::move(as).Finish();
}

TrainStage::TrainStage(LoopState& state, const storage::SampleStore& store, Catalogue& catalogue, Publisher& publisher,
                       const model::CenterNetTeacher& teacher, torch::Device device, config::DistillOptions recipe,
                       const model::LoadedStudent* bootstrap, const Clock& clock)
    : state_(state),
      store_(store),
      catalogue_(catalogue),
      publisher_(publisher),
      teacher_(teacher),
      device_(device),
      recipe_(std::move(recipe)),
      bootstrap_(bootstrap),
      clock_(clock) {}

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

bool TrainStage::Round(const std::string& name, const std::atomic<bool>& stopping) {
  const auto& opt = state_.options;
  std::vector<std::pair<std::string, uint64_t>> train_keys, holdout_keys;
  std::shared_ptr<const model::StudentOptions> arch;
  std::shared_ptr<const DeployedModel> deployed;
  uint64_t latest = 0, reverts = 0;
  {
    std::lock_guard lock(state_.mu);
    Group& g = state_.groups.at(name);
    if (g.labelled < static_cast<uint64_t>(opt.training.min_frames)) return false;
    auto batch = g.sampler->Sample(static_cast<size_t>(opt.training.round_frames));
    for (const auto& c : batch.items) train_keys.emplace_back(c.device_id, c.seq);
    for (const auto& [dev, seqs] : g.holdout) {
      for (uint64_t s : seqs) holdout_keys.emplace_back(dev, s);
    }
    arch = g.arch;
    deployed = g.deployed;
    latest = g.latest;
    reverts = g.reverts;
  }
  auto data = AssembleFromStore(store_, train_keys);
  if (!data.ok()) return false;
  std::shared_ptr<GroupTrainer>& trainer = trainers_[name];
  if (trainer && trainer->reverts_seen != reverts) trainer.reset();  // a revert: restart from its weights
  if (!trainer) {
    // First round of this group: start from the deployed model, else the bootstrap, else scratch.
    auto fresh = std::make_shared<GroupTrainer>();
    fresh->reverts_seen = reverts;
    if (deployed && arch) {
      fresh->student = model::Student(*arch);
      (void)update::LoadState(*fresh->student, deployed->state);
    } else if (bootstrap_) {
      fresh->student = model::Student(bootstrap_->student->options());
      (void)update::LoadState(*fresh->student, update::StateOf(*bootstrap_->student));
    } else {
      auto so = StudentOptionsFor(recipe_, *data);
      if (!so.ok()) {
        KD_LOG(kError) << "group " << name << ": " << so.status().ToString();
        trainers_.erase(name);
        return false;
      }
      fresh->student = model::Student(*so);
    }
    config::DistillOptions r = recipe_;
    r.batch_size = std::min<int>(r.batch_size, static_cast<int>(data->size()));
    fresh->distiller = std::make_unique<Distiller>(r, fresh->student, teacher_, device_);
    fresh->distiller->SetContinual(kContinualLrScale);
    trainer = fresh;
    if (!arch) {
      arch = std::make_shared<const model::StudentOptions>(trainer->student->options());
      std::lock_guard lock(state_.mu);
      state_.groups.at(name).arch = arch;
    }
  }
  if (data->student_width != arch->input_width || data->student_height != arch->input_height) {
    KD_LOG(kWarn) << "group " << name << ": frames do not match the student's input size; round skipped";
    return false;
  }
  // The round: random batches from the replay mix.
  Stopwatch sw(clock_);
  std::mt19937_64 rng(opt.training.seed + trainer->rounds);
  std::uniform_int_distribution<size_t> pick(0, data->size() - 1);
  const size_t bs = std::min<size_t>(static_cast<size_t>(recipe_.batch_size), data->size());
  double loss_sum = 0;
  int steps = 0;
  for (int i = 0; i < opt.training.round_iterations && !stopping; ++i) {
    state_.beats.trainer.Beat();
    std::vector<size_t> rows;
    while (rows.size() < bs) rows.push_back(pick(rng));
    Stopwatch step_watch(clock_);
    auto st = trainer->distiller->Step(*data, rows);
    if (!st.skipped && st.losses.count("total")) loss_sum += st.losses["total"], ++steps;
    const double step_s = step_watch.ElapsedSeconds();
    std::lock_guard lock(state_.mu);
    ++state_.train_steps;
    state_.train_step_seconds.Observe(step_s);
  }
  ++trainer->rounds;
  if (stopping) return true;
  trainer->student->eval();
  auto trained = update::StateOf(*trainer->student);
  // The candidate as devices would run it: a delta from the deployed version, reconstructed.
  std::optional<update::EncodedDelta> delta;
  update::TensorMap candidate;
  if (deployed) {
    auto enc =
        update::EncodeDelta(deployed->state, trained, update::ParameterNames(*trainer->student), DeltaOptionsOf(opt));
    if (!enc.ok()) {
      KD_LOG(kError) << "group " << name << ": delta: " << enc.status().ToString();
      return true;
    }
    delta = std::move(enc).value();
    candidate = delta->reconstructed;
  } else {
    candidate = update::RoundParametersToF16(trained, update::ParameterNames(*trainer->student));
  }
  auto hold = AssembleFromStore(store_, holdout_keys);
  json round{{"round", trainer->rounds},
             {"frames", data->size()},
             {"steps", steps},
             {"loss", steps ? loss_sum / steps : 0.0},
             {"seconds", sw.ElapsedSeconds()}};
  const size_t holdout_frames = hold.ok() ? hold->size() : 0;
  if (JudgeCandidate(holdout_frames, 0, 0, opt.gate) == GateVerdict::kWaiting) {
    round["gate"] = GateVerdictName(GateVerdict::kWaiting);
    RecordRound(name, round, latest);
    return true;
  }
  auto score_new = ScoreOnHoldout(*arch, candidate, *hold, opt.gate);
  HoldoutScore score_old;
  if (deployed) {
    auto r = ScoreOnHoldout(*arch, deployed->state, *hold, opt.gate);
    if (r.ok()) score_old = *r;
  }
  if (!score_new.ok()) {
    KD_LOG(kError) << "group " << name << ": evaluation: " << score_new.status().ToString();
    return true;
  }
  if (delta) {
    // The full weights (fp16) beside the delta's reconstruction: what the top-k costs this round.
    // When it costs more than publish.delta_max_ap_loss of held-out AP, the version ships as full
    // weights and the gate judges those (what devices will then run).
    auto full = update::RoundParametersToF16(trained, update::ParameterNames(*trainer->student));
    if (auto f = ScoreOnHoldout(*arch, full, *hold, opt.gate); f.ok()) {
      round["ap_full"] = f->ap;
      round["ap50_full"] = f->ap50;
      if (!DeltaKeepsAccuracy(score_new->ap, f->ap, opt.publish)) {
        round["delta"] = "dropped: it lost " + std::to_string(f->ap - score_new->ap) + " AP";
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
  KD_LOG(kInfo) << "group " << name << " round " << trainer->rounds << ": " << data->size() << " frames, " << steps
                << " steps in " << sw.ElapsedSeconds() << " s, loss " << (steps ? loss_sum / steps : 0.0)
                << "; held-out AP/AP50 candidate " << score_new->ap << "/" << score_new->ap50
                << (round.contains("ap_full") ? " (full " + std::to_string(round["ap_full"].get<double>()) + ")"
                                              : std::string())
                << (round.contains("delta") ? " [delta " + round["delta"].get<std::string>() + "]" : std::string())
                << " vs deployed v" << latest << " " << score_old.ap << "/" << score_old.ap50 << " on "
                << holdout_frames << " frames -> " << (pass ? "publish" : "keep");
  if (!pass) RecordRound(name, round, latest);
  if (pass) {
    Status st = publisher_.Publish(name, candidate,
                                   {.ap = score_new->ap,
                                    .ap_base = score_old.ap,
                                    .ap50 = score_new->ap50,
                                    .ap50_base = score_old.ap50,
                                    .holdout_frames = holdout_frames},
                                   delta ? &*delta : nullptr, latest);
    if (!st.ok()) {
      KD_LOG(kError) << "group " << name << ": publish: " << st.ToString();
      round["publish_error"] = st.ToString();
    } else {
      std::lock_guard lock(state_.mu);
      round["published_version"] = state_.groups.at(name).latest;
    }
    RecordRound(name, round, latest);
  }
  return true;
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

void TrainStage::Run(const std::atomic<bool>& stopping) {
  while (!stopping) {
    state_.beats.trainer.Beat();
    PublishFactoryModels();
    std::vector<std::string> names;
    {
      std::lock_guard lock(state_.mu);
      for (const auto& [name, g] : state_.groups) names.push_back(name);
    }
    bool trained = false;
    for (const auto& name : names) {
      if (stopping) break;
      if (auto r = retry_after_us_.find(name); r != retry_after_us_.end() && clock_.WallMicros() < r->second) continue;
      try {
        trained |= Round(name, stopping);
      } catch (const std::exception& e) {
        // LibTorch reports failures as exceptions; one must not end the daemon. The deployed model
        // and everything stored stay as they were; the group tries again after a pause.
        std::string what = e.what();
        what.resize(std::min(what.size(), what.find('\n')));
        KD_LOG(kError) << "group " << name << ": training round failed: " << what << " (retrying in "
                       << kRetryAfterFailureUs / 1'000'000 << " s)";
        retry_after_us_[name] = clock_.WallMicros() + kRetryAfterFailureUs;
      }
      bool halted = false;
      {
        std::lock_guard lock(state_.mu);
        halted = state_.groups.at(name).rollout.stage() == RolloutStage::kHalted;
      }
      if (halted) {
        Status st = publisher_.Revert(name);
        if (!st.ok()) {
          KD_LOG(kError) << st.ToString();
        }
      }
    }
    if (!trained && !stopping) std::this_thread::sleep_for(kIdleWait);
  }
}

}  // namespace kd::learner
