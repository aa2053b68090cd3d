// ReplaySampler: picks each training batch of the continual learner: a fixed fraction from the
// freshest frames, the rest from a bounded reservoir over the whole history that keeps and draws hard
// frames more often (weighted reservoir sampling A-Res, Efraimidis & Spirakis 2006): no forgetting,
// fixed memory. Owns keys and difficulties only (no I/O); deterministic given the seed and the calls.
// Not thread-safe (thread-compatible): guard a shared sampler with a mutex.
#ifndef KD_STORAGE_REPLAY_SAMPLER_H_
#define KD_STORAGE_REPLAY_SAMPLER_H_

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/status.h"

namespace kd::storage {

struct ReplaySamplerOptions {
  size_t reservoir_capacity = 4096;  // frames remembered over the whole history (>= 1)
  size_t fresh_window = 512;         // the newest frames that count as fresh (>= 1)
  double fresh_fraction = 0.5;       // share of each batch drawn from the fresh window, in [0, 1]
  double epsilon = 0.01;             // weight = difficulty + epsilon (> 0), so easy frames keep a chance
  uint64_t seed = 0;
};

// A frame offered to (and drawn from) the sampler: its identity in the SampleStore and difficulty.
struct ReplayCandidate {
  std::string device_id;
  uint64_t seq = 0;
  float difficulty = 0;  // finite, >= 0 (e.g. the teacher's difficulty from the store)
};

struct ReplayBatch {
  // items[0, num_fresh) come from the fresh window, the rest from the reservoir. No frame twice.
  std::vector<ReplayCandidate> items;
  size_t num_fresh = 0;
};

class ReplaySampler {
 public:
  // InvalidArgument on options out of range.
  static Result<ReplaySampler> Create(const ReplaySamplerOptions& options);

  // Offers a newly arrived frame: it enters the fresh window (evicting the oldest there) and is a
  // candidate for the reservoir with weight difficulty + epsilon. Add each frame once.
  // InvalidArgument for an empty device_id or a difficulty that is negative or not finite.
  Status Add(ReplayCandidate candidate);

  // Draws up to batch_size distinct frames: round(batch_size * fresh_fraction) uniformly from the
  // fresh window, the rest from the reservoir without replacement with probability proportional
  // to weight (Efraimidis-Spirakis keys u^(1/w)). When one side has too few frames the other fills
  // in; the batch is smaller only when the sampler holds fewer distinct frames than batch_size.
  ReplayBatch Sample(size_t batch_size);

  uint64_t num_added() const { return num_added_; }
  size_t reservoir_size() const { return reservoir_.size(); }
  size_t fresh_size() const { return fresh_.size(); }
  const ReplaySamplerOptions& options() const { return options_; }

 private:
  struct Slot {
    double log_key = 0;  // log(u) / weight: A-Res keeps the largest keys
    ReplayCandidate candidate;
  };

  explicit ReplaySampler(const ReplaySamplerOptions& options);
  double NextUnit();               // uniform in (0, 1), portable across standard libraries
  uint64_t NextBelow(uint64_t n);  // uniform in [0, n), unbiased
  double Weight(float difficulty) const { return static_cast<double>(difficulty) + options_.epsilon; }

  ReplaySamplerOptions options_;
  std::mt19937_64 rng_;
  uint64_t num_added_ = 0;
  std::vector<Slot> reservoir_;         // a min-heap on log_key once full
  std::vector<ReplayCandidate> fresh_;  // ring buffer of the newest frames
  size_t fresh_next_ = 0;               // where the next fresh frame goes once the ring is full
};

}  // namespace kd::storage

#endif  // KD_STORAGE_REPLAY_SAMPLER_H_
