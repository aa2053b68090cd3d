#include "learner/loop_state.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "base/check.h"

namespace kd::learner {

bool IsHoldout(uint64_t seq, int every, uint64_t span_us) {
  KD_CHECK(every >= 1);
  const uint64_t n = static_cast<uint64_t>(every);
  const uint64_t unit = span_us ? seq / span_us : seq;
  // splitmix64 of the block: which one of the block's `every` units is held out, in no regular
  // pattern across blocks.
  uint64_t z = unit / n + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return unit % n == z % n;
}

LoopState::LoopState(const config::LearnerOptions& opts, const Clock& clock)
    : options(opts),
      pressure(clock,
               {.busy_fps = opts.training.yield_above_fps,
                .max_pause = std::chrono::milliseconds(static_cast<int64_t>(opts.training.yield_max_s * 1000))}) {
  for (const auto& g : options.groups) {
    for (const auto& d : g.devices) static_group_of_[d] = g.name;
  }
}

std::string LoopState::GroupNameOf(const std::string& device_id) const {
  auto it = static_group_of_.find(device_id);
  return it != static_group_of_.end() ? it->second : device_id;  // default: one student per camera
}

RolloutOptions LoopState::rollout_options() const {
  RolloutOptions rop;
  rop.canary = options.rollout.canary;
  rop.canary_probation_s = options.rollout.canary_probation_s;
  rop.failure_threshold = options.rollout.failure_threshold;
  return rop;
}

Group& LoopState::GroupFor(const std::string& device_id) {
  const std::string name = GroupNameOf(device_id);
  auto it = groups.find(name);
  if (it == groups.end()) {
    Group g;
    g.name = name;
    storage::ReplaySamplerOptions ro;
    ro.reservoir_capacity = static_cast<size_t>(options.training.replay_capacity);
    ro.fresh_window = static_cast<size_t>(options.training.fresh_window);
    ro.fresh_fraction = options.training.fresh_fraction;
    ro.seed = options.training.seed;
    g.sampler = storage::ReplaySampler::Create(ro).value();
    g.rollout = Rollout(rollout_options());
    it = groups.emplace(name, std::move(g)).first;
  }
  it->second.devices.insert(device_id);
  return it->second;
}

DeviceInfo& LoopState::Device(const std::string& device_id) {
  DeviceInfo& d = devices[device_id];
  if (d.group.empty()) d.group = GroupNameOf(device_id);
  return d;
}

double Group::Drift() const {
  if (disagreement_slow <= 1e-6 || disagreement_fast < 0) return 0;
  return std::max(0.0, disagreement_fast / disagreement_slow - 1);
}

bool Group::HasLabelsForARound(int min_frames, int min_new_frames) const {
  if (labelled < static_cast<uint64_t>(std::max(min_frames, 0))) return false;
  // labelled_at_last_round is 0 until this process starts a round for the group: after a restart
  // the first round needs only min_frames.
  return labelled_at_last_round == 0 ||
         labelled - labelled_at_last_round >= static_cast<uint64_t>(std::max(min_new_frames, 0));
}

void LoopState::AddLabelled(const std::string& device_id, uint64_t seq, float difficulty) {
  Group& g = GroupFor(device_id);
  if (std::isfinite(difficulty) && difficulty >= 0) {
    const double d = difficulty;
    g.disagreement_fast =
        g.disagreement_fast < 0 ? d : g.disagreement_fast + Group::kFastAlpha * (d - g.disagreement_fast);
    g.disagreement_slow =
        g.disagreement_slow < 0 ? d : g.disagreement_slow + Group::kSlowAlpha * (d - g.disagreement_slow);
  }
  if (IsHoldout(seq, options.gate.holdout_every,
                uint64_t{1000} * static_cast<uint64_t>(options.gate.holdout_span_ms))) {
    auto& window = g.holdout[device_id];
    window.push_back(seq);
    while (window.size() > static_cast<size_t>(options.gate.holdout_window)) window.pop_front();
    ++g.held_out;
  } else {
    (void)g.sampler->Add({device_id, seq, difficulty});
    ++g.labelled;
  }
}

wire::Message ReplyTo(const wire::Header& request, wire::MsgType type, int64_t now_us) {
  wire::Message m;
  m.header.type = type;
  m.header.device_id = request.device_id;
  m.header.seq = request.seq;
  m.header.send_time_us = now_us;
  return m;
}

}  // namespace kd::learner
