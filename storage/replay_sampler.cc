#include "storage/replay_sampler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <string_view>
#include <unordered_set>
#include <utility>

namespace kd::storage {
namespace {

// Min-heap order on the A-Res key (the smallest key sits at the front and is evicted first).
bool HeapGreater(double a, double b) { return a > b; }

struct KeyRef {
  std::string_view device_id;
  uint64_t seq = 0;
  bool operator==(const KeyRef&) const = default;
};

struct KeyRefHash {
  size_t operator()(const KeyRef& k) const {
    return std::hash<std::string_view>{}(k.device_id) ^ (std::hash<uint64_t>{}(k.seq) * 0x9E3779B97F4A7C15ull);
  }
};

}  // namespace

Result<ReplaySampler> ReplaySampler::Create(const ReplaySamplerOptions& options) {
  if (options.reservoir_capacity == 0) return Status::InvalidArgument("reservoir_capacity must be >= 1");
  if (options.fresh_window == 0) return Status::InvalidArgument("fresh_window must be >= 1");
  if (!(options.fresh_fraction >= 0.0 && options.fresh_fraction <= 1.0)) {
    return Status::InvalidArgument("fresh_fraction " + std::to_string(options.fresh_fraction) + " is not in [0, 1]");
  }
  if (!(std::isfinite(options.epsilon) && options.epsilon > 0.0)) {
    return Status::InvalidArgument("epsilon " + std::to_string(options.epsilon) + " must be finite and > 0");
  }
  return ReplaySampler(options);
}

ReplaySampler::ReplaySampler(const ReplaySamplerOptions& options) : options_(options), rng_(options.seed) {
  reservoir_.reserve(options_.reservoir_capacity);
  fresh_.reserve(options_.fresh_window);
}

double ReplaySampler::NextUnit() {
  // 53 random bits, centred in their interval: never 0 (log is finite) and never 1.
  return (static_cast<double>(rng_() >> 11) + 0.5) * 0x1.0p-53;
}

uint64_t ReplaySampler::NextBelow(uint64_t n) {
  const uint64_t threshold = (0 - n) % n;  // 2^64 mod n: values below it would bias the modulo
  for (;;) {
    const uint64_t x = rng_();
    if (x >= threshold) return x % n;
  }
}

Status ReplaySampler::Add(ReplayCandidate candidate) {
  if (candidate.device_id.empty()) return Status::InvalidArgument("replay candidate with an empty device_id");
  if (!std::isfinite(candidate.difficulty) || candidate.difficulty < 0.f) {
    return Status::InvalidArgument("replay candidate difficulty " + std::to_string(candidate.difficulty) +
                                   " is not finite and >= 0");
  }
  ++num_added_;
  // Reservoir (A-Res): key = u^(1/w), kept in the log domain (log(u)/w) to avoid underflow.
  const double log_key = std::log(NextUnit()) / Weight(candidate.difficulty);
  const auto cmp = [](const Slot& a, const Slot& b) { return HeapGreater(a.log_key, b.log_key); };
  if (reservoir_.size() < options_.reservoir_capacity) {
    reservoir_.push_back({log_key, candidate});
    std::push_heap(reservoir_.begin(), reservoir_.end(), cmp);
  } else if (log_key > reservoir_.front().log_key) {
    std::pop_heap(reservoir_.begin(), reservoir_.end(), cmp);
    reservoir_.back() = {log_key, candidate};
    std::push_heap(reservoir_.begin(), reservoir_.end(), cmp);
  }
  // Fresh window (ring buffer).
  if (fresh_.size() < options_.fresh_window) {
    fresh_.push_back(std::move(candidate));
  } else {
    fresh_[fresh_next_] = std::move(candidate);
    fresh_next_ = (fresh_next_ + 1) % options_.fresh_window;
  }
  return Status::Ok();
}

ReplayBatch ReplaySampler::Sample(size_t batch_size) {
  ReplayBatch batch;
  if (batch_size == 0) return batch;

  // A random order of the fresh window, built lazily (partial Fisher-Yates).
  std::vector<size_t> fresh_order(fresh_.size());
  for (size_t i = 0; i < fresh_order.size(); ++i) fresh_order[i] = i;
  size_t fresh_taken = 0;
  auto next_fresh = [&]() -> size_t {
    const size_t j = fresh_taken + static_cast<size_t>(NextBelow(fresh_order.size() - fresh_taken));
    std::swap(fresh_order[fresh_taken], fresh_order[j]);
    return fresh_order[fresh_taken++];
  };

  std::unordered_set<KeyRef, KeyRefHash> chosen;
  std::vector<ReplayCandidate> fresh_items;
  std::vector<ReplayCandidate> reservoir_items;

  const auto target_fresh =
      static_cast<size_t>(std::llround(static_cast<double>(batch_size) * options_.fresh_fraction));
  while (fresh_items.size() < std::min(target_fresh, fresh_.size())) {
    const ReplayCandidate& c = fresh_[next_fresh()];
    chosen.insert({c.device_id, c.seq});
    fresh_items.push_back(c);
  }

  // Reservoir: weighted sampling without replacement (Efraimidis-Spirakis): the largest keys
  // log(u)/w win. Frames already chosen from the fresh window are not eligible.
  std::vector<std::pair<double, size_t>> keyed;
  keyed.reserve(reservoir_.size());
  for (size_t i = 0; i < reservoir_.size(); ++i) {
    const ReplayCandidate& c = reservoir_[i].candidate;
    if (chosen.contains({c.device_id, c.seq})) continue;
    keyed.emplace_back(std::log(NextUnit()) / Weight(c.difficulty), i);
  }
  const size_t want_reservoir = std::min(batch_size - fresh_items.size(), keyed.size());
  std::partial_sort(
      keyed.begin(), keyed.begin() + static_cast<std::ptrdiff_t>(want_reservoir), keyed.end(),
      [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
  for (size_t k = 0; k < want_reservoir; ++k) {
    const ReplayCandidate& c = reservoir_[keyed[k].second].candidate;
    chosen.insert({c.device_id, c.seq});
    reservoir_items.push_back(c);
  }

  // Top up from the rest of the fresh window when the reservoir could not fill its share.
  while (fresh_items.size() + reservoir_items.size() < batch_size && fresh_taken < fresh_order.size()) {
    const ReplayCandidate& c = fresh_[next_fresh()];
    if (!chosen.insert({c.device_id, c.seq}).second) continue;
    fresh_items.push_back(c);
  }

  batch.num_fresh = fresh_items.size();
  batch.items = std::move(fresh_items);
  batch.items.insert(batch.items.end(), std::make_move_iterator(reservoir_items.begin()),
                     std::make_move_iterator(reservoir_items.end()));
  return batch;
}

}  // namespace kd::storage
