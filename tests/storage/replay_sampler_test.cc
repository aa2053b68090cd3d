#include "storage/replay_sampler.h"

#include <cmath>
#include <iostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace kd::storage {
namespace {

ReplaySampler MakeSampler(const ReplaySamplerOptions& options) {
  auto r = ReplaySampler::Create(options);
  KD_CHECK_MSG(r.ok(), r.status().ToString());
  return std::move(r).value();
}

void AddOrDie(ReplaySampler* sampler, const std::string& device, uint64_t seq, float difficulty) {
  const Status s = sampler->Add({device, seq, difficulty});
  KD_CHECK_MSG(s.ok(), s.ToString());
}

TEST(ReplaySamplerTest, RejectsBadOptionsAndCandidates) {
  ReplaySamplerOptions o;
  o.reservoir_capacity = 0;
  EXPECT_TRUE(ReplaySampler::Create(o).status().IsInvalidArgument());
  o = {};
  o.fresh_window = 0;
  EXPECT_TRUE(ReplaySampler::Create(o).status().IsInvalidArgument());
  o = {};
  o.fresh_fraction = 1.5;
  EXPECT_TRUE(ReplaySampler::Create(o).status().IsInvalidArgument());
  o = {};
  o.epsilon = 0;
  EXPECT_TRUE(ReplaySampler::Create(o).status().IsInvalidArgument());

  ReplaySampler sampler = MakeSampler({});
  EXPECT_TRUE(sampler.Add({"", 1, 0.f}).IsInvalidArgument());
  EXPECT_TRUE(sampler.Add({"cam", 1, -0.5f}).IsInvalidArgument());
  EXPECT_TRUE(sampler.Add({"cam", 1, std::nanf("")}).IsInvalidArgument());
  EXPECT_TRUE(sampler.Add({"cam", 1, INFINITY}).IsInvalidArgument());
  EXPECT_EQ(sampler.num_added(), 0u);
  EXPECT_TRUE(sampler.Sample(8).items.empty());
}

TEST(ReplaySamplerTest, SmallHistoryGivesDistinctFramesAndTopsUp) {
  ReplaySamplerOptions o;
  o.fresh_window = 4;
  ReplaySampler sampler = MakeSampler(o);
  for (uint64_t s = 0; s < 10; ++s) AddOrDie(&sampler, "cam", s, 1.f);
  EXPECT_EQ(sampler.fresh_size(), 4u);
  EXPECT_EQ(sampler.reservoir_size(), 10u);
  // Asking for more than exists returns every frame once.
  ReplayBatch all = sampler.Sample(64);
  std::set<uint64_t> seqs;
  for (const auto& c : all.items) seqs.insert(c.seq);
  EXPECT_EQ(all.items.size(), 10u);
  EXPECT_EQ(seqs.size(), 10u);
  EXPECT_EQ(all.num_fresh, 4u);
  for (size_t i = 0; i < all.num_fresh; ++i) EXPECT_GE(all.items[i].seq, 6u);
}

TEST(ReplaySamplerTest, FreshFractionHolds) {
  ReplaySamplerOptions o;
  o.reservoir_capacity = 512;
  o.fresh_window = 128;
  o.fresh_fraction = 0.5;
  o.seed = 7;
  ReplaySampler sampler = MakeSampler(o);
  constexpr uint64_t kFrames = 10'000;
  for (uint64_t s = 0; s < kFrames; ++s) AddOrDie(&sampler, "cam", s, 0.5f);
  for (int b = 0; b < 50; ++b) {
    ReplayBatch batch = sampler.Sample(64);
    ASSERT_EQ(batch.items.size(), 64u);
    ASSERT_EQ(batch.num_fresh, 32u);
    std::set<uint64_t> distinct;
    for (size_t i = 0; i < batch.items.size(); ++i) {
      distinct.insert(batch.items[i].seq);
      if (i < batch.num_fresh) {
        EXPECT_GE(batch.items[i].seq, kFrames - o.fresh_window);
      }
    }
    EXPECT_EQ(distinct.size(), 64u);
  }
  // Other fractions round to the nearest frame.
  o.fresh_fraction = 0.25;
  ReplaySampler quarter = MakeSampler(o);
  for (uint64_t s = 0; s < kFrames; ++s) AddOrDie(&quarter, "cam", s, 0.5f);
  EXPECT_EQ(quarter.Sample(10).num_fresh, 3u);  // round(2.5) = 3
  EXPECT_EQ(quarter.Sample(64).num_fresh, 16u);
}

TEST(ReplaySamplerTest, OldFramesAreStillDrawnAfterManyNewOnes) {
  ReplaySamplerOptions o;
  o.reservoir_capacity = 1024;
  o.fresh_window = 256;
  o.seed = 11;
  ReplaySampler sampler = MakeSampler(o);
  constexpr uint64_t kOld = 2'000;
  constexpr uint64_t kNew = 48'000;
  for (uint64_t s = 0; s < kOld + kNew; ++s) AddOrDie(&sampler, "cam", s, 0.3f);

  int old_in_reservoir_draws = 0;
  int reservoir_draws = 0;
  for (int b = 0; b < 400; ++b) {
    const ReplayBatch batch = sampler.Sample(64);
    for (size_t i = batch.num_fresh; i < batch.items.size(); ++i) {
      ++reservoir_draws;
      if (batch.items[i].seq < kOld) ++old_in_reservoir_draws;
    }
  }
  // With equal difficulty the reservoir is a uniform sample of the history: the first 4% of it
  // should make ~4% of reservoir draws (a FIFO replay buffer would give exactly 0).
  const double expected = static_cast<double>(reservoir_draws) * kOld / (kOld + kNew);
  EXPECT_GT(old_in_reservoir_draws, expected * 0.4) << "expected ~" << expected;
  EXPECT_LT(old_in_reservoir_draws, expected * 2.0) << "expected ~" << expected;
}

TEST(ReplaySamplerTest, HarderFramesAreDrawnMoreOften) {
  // Half the frames are hard (difficulty 1.0), half easy (0.1), interleaved. Both while the whole
  // history fits in the reservoir (draw weighting) and long after it overflowed (A-Res retention).
  for (const uint64_t frames : {uint64_t{1'000}, uint64_t{40'000}}) {
    ReplaySamplerOptions o;
    o.reservoir_capacity = 2048;
    o.fresh_window = 64;
    o.fresh_fraction = 0.25;
    o.seed = 3;
    ReplaySampler sampler = MakeSampler(o);
    for (uint64_t s = 0; s < frames; ++s) AddOrDie(&sampler, "cam", s, s % 2 == 0 ? 1.0f : 0.1f);
    int hard = 0;
    int total = 0;
    for (int b = 0; b < 200; ++b) {
      const ReplayBatch batch = sampler.Sample(64);
      for (size_t i = batch.num_fresh; i < batch.items.size(); ++i) {
        ++total;
        hard += batch.items[i].difficulty > 0.5f ? 1 : 0;
      }
    }
    const double hard_share = static_cast<double>(hard) / total;
    // Uniform replay would give 0.5; weights 1.01 vs 0.11 give ~0.9.
    EXPECT_GT(hard_share, 0.75) << frames << " frames";
    std::cout << "[ replay ] " << frames << " frames, reservoir " << sampler.reservoir_size()
              << ": hard share of reservoir draws " << hard_share << "\n";
  }
}

TEST(ReplaySamplerTest, DeterministicGivenSeed) {
  ReplaySamplerOptions o;
  o.reservoir_capacity = 300;
  o.fresh_window = 50;
  o.seed = 42;
  ReplaySampler a = MakeSampler(o);
  ReplaySampler b = MakeSampler(o);
  o.seed = 43;
  ReplaySampler c = MakeSampler(o);
  bool c_differs = false;
  for (uint64_t s = 0; s < 5'000; ++s) {
    const float d = static_cast<float>(s % 17) / 17.f;
    AddOrDie(&a, s % 3 == 0 ? "cam-a" : "cam-b", s, d);
    AddOrDie(&b, s % 3 == 0 ? "cam-a" : "cam-b", s, d);
    AddOrDie(&c, s % 3 == 0 ? "cam-a" : "cam-b", s, d);
    if (s % 500 == 499) {
      const ReplayBatch ba = a.Sample(32);
      const ReplayBatch bb = b.Sample(32);
      const ReplayBatch bc = c.Sample(32);
      ASSERT_EQ(ba.items.size(), bb.items.size());
      EXPECT_EQ(ba.num_fresh, bb.num_fresh);
      for (size_t i = 0; i < ba.items.size(); ++i) {
        EXPECT_EQ(ba.items[i].device_id, bb.items[i].device_id);
        EXPECT_EQ(ba.items[i].seq, bb.items[i].seq);
        if (i >= bc.items.size() || ba.items[i].seq != bc.items[i].seq) c_differs = true;
      }
    }
  }
  EXPECT_TRUE(c_differs);
}

}  // namespace
}  // namespace kd::storage
