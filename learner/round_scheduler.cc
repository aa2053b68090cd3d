#include "learner/round_scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

namespace kd::learner {

RoundScheduler::RoundScheduler(const config::LearnerScheduleOptions& options) : options_(options) {}

double RoundScheduler::Share(const GroupSignals& s) const {
  const double age = options_.stale_horizon_s > 0 ? std::min(3.0, s.deployed_age_s / options_.stale_horizon_s) : 0;
  return 1 + options_.drift_weight * std::max(0.0, s.drift) + options_.stale_weight * age;
}

RoundScheduler::Entry& RoundScheduler::EntryFor(const std::string& group, double now_s) {
  auto it = groups_.find(group);
  if (it != groups_.end()) return it->second;
  Entry e;
  double least = std::numeric_limits<double>::infinity();
  for (const auto& [name, other] : groups_) least = std::min(least, other.ledger_s);
  e.ledger_s = std::isfinite(least) ? least : 0;
  e.last_round_s = now_s;
  return groups_.emplace(group, e).first->second;
}

std::optional<std::string> RoundScheduler::Pick(const std::map<std::string, GroupSignals>& ready, double now_s) {
  const std::string* floor_pick = nullptr;
  double longest_wait = -1;
  const std::string* fair_pick = nullptr;
  double best = std::numeric_limits<double>::infinity();
  for (const auto& [name, signals] : ready) {
    Entry& e = EntryFor(name, now_s);
    e.drift = signals.drift;
    e.share = Share(signals);
    if (e.drift >= options_.drift_threshold) {
      e.backoff_until_s = 0;  // drift: train again now
      e.rejects_in_a_row = 0;
    }
    if (now_s < e.backoff_until_s) continue;
    const double waited = now_s - e.last_round_s;
    if (waited >= options_.floor_s && waited > longest_wait) {
      longest_wait = waited;
      floor_pick = &name;
    }
    const double key = e.ledger_s / e.share;
    if (key < best) {
      best = key;
      fair_pick = &name;
    }
  }
  const std::string* pick = floor_pick ? floor_pick : fair_pick;
  if (!pick) return std::nullopt;
  Entry& e = groups_.at(*pick);
  char reason[160];
  if (floor_pick) {
    std::snprintf(reason, sizeof reason, "floor: waited %.0f s", longest_wait);
  } else {
    std::snprintf(reason, sizeof reason, "fair share: %.1f s used / share %.2f (drift %.2f)", e.ledger_s, e.share,
                  e.drift);
  }
  e.last_reason = reason;
  return *pick;
}

void RoundScheduler::RoundDone(const std::string& group, double seconds, RoundOutcome outcome, double now_s) {
  Entry& e = EntryFor(group, now_s);
  e.ledger_s += std::max(0.0, seconds);
  e.last_round_s = now_s;
  ++e.rounds;
  if (outcome == RoundOutcome::kUndecided) return;
  if (outcome == RoundOutcome::kPublished || e.drift >= options_.drift_threshold) {
    e.rejects_in_a_row = 0;
    e.backoff_until_s = 0;
    return;
  }
  ++e.rejects_in_a_row;
  if (e.rejects_in_a_row >= options_.backoff_after) {
    const int doublings = std::min(30, e.rejects_in_a_row - options_.backoff_after);
    const double wait = std::min(options_.backoff_max_s, options_.backoff_base_s * std::ldexp(1.0, doublings));
    e.backoff_until_s = now_s + wait;
  }
}

double RoundScheduler::ledger_seconds(const std::string& group) const {
  auto it = groups_.find(group);
  return it == groups_.end() ? 0 : it->second.ledger_s;
}

bool RoundScheduler::backing_off(const std::string& group, double now_s) const {
  auto it = groups_.find(group);
  return it != groups_.end() && now_s < it->second.backoff_until_s;
}

std::string RoundScheduler::StatusJson(double now_s) const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, e] : groups_) {
    out[name] = {{"trainer_seconds", e.ledger_s},
                 {"share", e.share},
                 {"drift", e.drift},
                 {"rounds", e.rounds},
                 {"rejects_in_a_row", e.rejects_in_a_row},
                 {"backoff_s", std::max(0.0, e.backoff_until_s - now_s)},
                 {"waiting_s", e.last_round_s >= 0 ? now_s - e.last_round_s : 0.0},
                 {"last_pick", e.last_reason}};
  }
  return out.dump();
}

}  // namespace kd::learner
