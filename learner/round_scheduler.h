// RoundScheduler: which group's training round runs next on a free trainer (the learner's own, or a
// worker's GPU). Policy only: no threads, no clock of its own (times are passed in, in seconds).
//
// Ekya's lesson is that a uniform split of GPU time wastes it. Each group has a ledger of the
// training seconds its rounds used; a free trainer takes the ready group with the smallest ledger
// per share, where a group's share grows with the drift of its cameras (the deployed student's
// disagreement with the teacher on fresh frames rising above its long-run level) and with the age
// of its deployed model. A floor: a group that has waited floor_s since its last round goes first,
// whatever its ledger. Backoff: a group without drift whose gate rejected backoff_after rounds in a
// row waits (backoff_base_s, doubling up to backoff_max_s) instead of training continuously; drift
// or a published version ends the backoff. A round the gate could not judge (too few held-out
// frames yet, or a publish that failed) is no rejection: it neither counts towards the backoff nor
// ends it (a new learner's first rounds wait for held-out labels; counting them backed the group
// off for a minute of its first four, RESULTS "Eighteenth stop"). A group seen for the first time
// starts at the smallest ledger of the others, so that it neither starves nor takes every round
// until it has caught up.
//
// Threading: not thread-safe; owned by the training stage's thread (status reads a JSON copy).
#ifndef KD_LEARNER_ROUND_SCHEDULER_H_
#define KD_LEARNER_ROUND_SCHEDULER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/daemon_options.h"

namespace kd::learner {

// What the scheduler knows of a group when it picks (from LoopState).
struct GroupSignals {
  double drift = 0;           // >= 0: relative rise of the deployed student's disagreement (0 = none)
  double deployed_age_s = 0;  // since the deployed version was published (0 = none yet)
};

// How a round ended, as the backoff sees it.
enum class RoundOutcome {
  kPublished,  // the gate passed and the version was published
  kRejected,   // the gate judged the candidate no better than the deployed version
  kUndecided,  // no verdict on the candidate: too few held-out frames, or the publish failed
};

class RoundScheduler {
 public:
  explicit RoundScheduler(const config::LearnerScheduleOptions& options);

  // The group to train next among `ready` (groups with enough labelled frames and no round in
  // flight), or nullopt when every one of them is backing off. `now_s`: any monotonic seconds.
  std::optional<std::string> Pick(const std::map<std::string, GroupSignals>& ready, double now_s);
  // A round of `group` ended: `seconds` of trainer time, and what became of its candidate.
  void RoundDone(const std::string& group, double seconds, RoundOutcome outcome, double now_s);

  // Per group: ledger, share, drift, backoff, rounds, the reason of the last pick (JSON object).
  std::string StatusJson(double now_s) const;
  double ledger_seconds(const std::string& group) const;
  bool backing_off(const std::string& group, double now_s) const;

 private:
  struct Entry {
    double ledger_s = 0;       // trainer seconds used
    double last_round_s = -1;  // when the last round ended or the group was first seen
    double share = 1;          // at the last pick
    double drift = 0;
    int rejects_in_a_row = 0;  // while without drift
    double backoff_until_s = 0;
    uint64_t rounds = 0;
    std::string last_reason;
  };
  double Share(const GroupSignals& s) const;
  Entry& EntryFor(const std::string& group, double now_s);

  const config::LearnerScheduleOptions options_;
  std::map<std::string, Entry> groups_;
};

}  // namespace kd::learner

#endif  // KD_LEARNER_ROUND_SCHEDULER_H_
