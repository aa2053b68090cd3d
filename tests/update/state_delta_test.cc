#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/hex.h"
#include "base/sha256.h"
#include "model/weights_file.h"
#include "tests/update/test_util.h"
#include "update/delta.h"
#include "update/state.h"

namespace kd::update {
namespace {

using testing::TinyOptions;

// The state an edge runs after a factory fp16 snapshot of a freshly initialised student whose BN
// statistics saw one batch (so buffers are not trivial).
struct Fixture {
  model::Student student{nullptr};
  std::set<std::string> params;
  TensorMap base;
  Fixture() {
    torch::manual_seed(1);
    student = model::Student(TinyOptions());
    student->train();
    {
      torch::NoGradGuard no_grad;
      student->forward(torch::rand({2, 3, 64, 64}) * 255);
    }
    student->eval();
    params = ParameterNames(*student);
    base = RoundParametersToF16(StateOf(*student), params);
  }
};

// A "training step": Gaussian noise of `sigma` on a fraction `frac` of the elements of every
// parameter whose name contains `which` (all when empty); one BN layer's statistics move.
TensorMap Perturb(const TensorMap& base, const std::set<std::string>& params, float sigma, double frac,
                  const std::string& which = "") {
  torch::manual_seed(7);
  TensorMap t;
  for (const auto& [name, v] : base) {
    torch::Tensor x = v.clone();
    if (params.count(name) && (which.empty() || name.find(which) != std::string::npos)) {
      const torch::Tensor mask = torch::rand_like(x).lt(frac).to(torch::kFloat);
      x += torch::randn_like(x) * sigma * mask;
    }
    if (name == "stem.1.running_mean") x += 0.5f;
    if (name == "stem.1.num_batches_tracked") x += 3;
    t[name] = x;
  }
  return t;
}

bool SameState(const TensorMap& a, const TensorMap& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, t] : a) {
    auto it = b.find(name);
    if (it == b.end() || !torch::equal(t, it->second)) return false;
  }
  return true;
}

size_t KdwBytes(const TensorMap& state, model::WeightDtype dtype) {
  model::Student s(TinyOptions());
  EXPECT_TRUE(LoadState(*s, state).ok());
  return model::EncodeWeights(*s, {}, dtype)->size();
}

TEST(StateTest, StateOfLoadStateRoundTripAndDigest) {
  Fixture f;
  const TensorMap state = StateOf(*f.student);
  EXPECT_EQ(StateDigest(state).size(), 64u);
  model::Student other(TinyOptions());
  EXPECT_NE(StateDigest(StateOf(*other)), StateDigest(state));
  ASSERT_TRUE(LoadState(*other, state).ok());
  EXPECT_EQ(StateDigest(StateOf(*other)), StateDigest(state));
  // One bit of one element changes the digest.
  TensorMap flipped = state;
  flipped["stem.0.weight"] = state.at("stem.0.weight").clone();
  flipped["stem.0.weight"].view(torch::kInt).data_ptr<int32_t>()[0] ^= 1;
  EXPECT_NE(StateDigest(flipped), StateDigest(state));
  // StateOf copies: changing the module afterwards does not change the map.
  {
    torch::NoGradGuard no_grad;
    for (auto& p : other->parameters()) p.zero_();
  }
  EXPECT_EQ(StateDigest(state), StateDigest(StateOf(*f.student)));
}

TEST(StateTest, ArchHashNamesTheArchitecture) {
  const std::string h = ArchHash(TinyOptions());
  EXPECT_EQ(h.size(), 64u);
  EXPECT_EQ(h, ArchHash(TinyOptions()));
  model::StudentOptions wider = TinyOptions();
  wider.width = 16;
  EXPECT_NE(h, ArchHash(wider));
}

TEST(StateTest, LoadStateRejectsMismatchWithoutTouchingTheModule) {
  Fixture f;
  const std::string before = StateDigest(StateOf(*f.student));
  TensorMap wrong_shape = StateOf(*f.student);
  wrong_shape["stem.0.weight"] = torch::zeros({1, 2, 3});
  Status s = LoadState(*f.student, wrong_shape);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_NE(s.message().find("stem.0.weight"), std::string::npos) << s.message();
  TensorMap wrong_dtype = StateOf(*f.student);
  wrong_dtype["stem.0.weight"] = wrong_dtype["stem.0.weight"].to(torch::kHalf);
  EXPECT_TRUE(LoadState(*f.student, wrong_dtype).IsInvalidArgument());
  TensorMap missing = StateOf(*f.student);
  missing.erase("stem.1.running_var");
  EXPECT_TRUE(LoadState(*f.student, missing).IsInvalidArgument());
  TensorMap extra = StateOf(*f.student);
  extra["bogus"] = torch::zeros({1});
  EXPECT_TRUE(LoadState(*f.student, extra).IsInvalidArgument());
  EXPECT_EQ(StateDigest(StateOf(*f.student)), before);
}

TEST(StateTest, RoundParametersToF16KeepsBuffersExact) {
  Fixture f;
  const TensorMap state = StateOf(*f.student);
  const TensorMap r = RoundParametersToF16(state, f.params);
  for (const auto& [name, t] : state) {
    if (f.params.count(name)) {
      EXPECT_TRUE(torch::equal(r.at(name), t.to(torch::kHalf).to(torch::kFloat))) << name;
    } else {
      EXPECT_TRUE(torch::equal(r.at(name), t)) << name;
    }
  }
}

class DeltaValueBitsTest : public ::testing::TestWithParam<int> {};

TEST_P(DeltaValueBitsTest, RoundTripIsBitExactAndOmitsUnchangedTensors) {
  Fixture f;
  // Only the stage4 and tower parameters train (plus one BN layer's statistics).
  TensorMap target = Perturb(f.base, f.params, 1e-2f, 1.0, "stage4");
  for (auto& [name, t] : Perturb(f.base, f.params, 1e-2f, 1.0, "tower")) {
    if (name.find("tower") != std::string::npos) target[name] = t;
  }
  ASSERT_FALSE(torch::equal(target.at("stem.1.running_mean"), f.base.at("stem.1.running_mean")));
  ASSERT_FALSE(torch::equal(target.at("stem.1.num_batches_tracked"), f.base.at("stem.1.num_batches_tracked")));
  DeltaOptions o;
  o.value_bits = GetParam();
  auto enc = EncodeDelta(f.base, target, f.params, o);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  auto applied = ApplyDelta(f.base, enc->bytes);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_TRUE(SameState(*applied, enc->reconstructed));
  EXPECT_EQ(StateDigest(*applied), StateDigest(enc->reconstructed));
  auto header = ReadDeltaHeader(enc->bytes);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->base_digest, StateDigest(f.base));
  EXPECT_EQ(header->result_digest, StateDigest(enc->reconstructed));

  size_t changed = 0;
  for (const auto& [name, t] : target) {
    const torch::Tensor& r = enc->reconstructed.at(name);
    const bool trained =
        f.params.count(name) && (name.find("stage4") != std::string::npos || name.find("tower") != std::string::npos);
    if (!f.params.count(name)) {
      const bool moved = !torch::equal(t, f.base.at(name));
      const torch::Tensor expected =
          moved && t.scalar_type() == torch::kFloat ? t.to(torch::kHalf).to(torch::kFloat) : t;
      EXPECT_TRUE(torch::equal(r, expected)) << "float buffers ship as fp16, integer ones exactly: " << name;
    } else if (!trained) {
      EXPECT_TRUE(torch::equal(r, f.base.at(name))) << "untouched tensors stay bit-exact: " << name;
    } else {
      // Within fp16 rounding where shipped (plus half a quantum of max|change|/127 for q8),
      // within min_abs_change where not.
      const float err = (r - t).abs().max().item<float>();
      const float quantum = GetParam() == 8 ? (t - f.base.at(name)).abs().max().item<float>() / 127.f : 0.f;
      const float tol = std::max(1e-4f, t.abs().max().item<float>() * 1e-3f) + quantum / 2;
      EXPECT_LE(err, tol) << name;
    }
    if (!torch::equal(r, f.base.at(name))) ++changed;
  }
  EXPECT_EQ(enc->stats.tensors, f.base.size());
  EXPECT_EQ(enc->stats.tensors_changed, changed);  // unchanged tensors have no entry
  EXPECT_LT(enc->stats.tensors_changed, f.base.size() / 2);
  EXPECT_EQ(enc->stats.compressed_bytes, enc->bytes.size());
}

INSTANTIATE_TEST_SUITE_P(Q8AndF16, DeltaValueBitsTest, ::testing::Values(8, 16));

// Rewrites the format version of an artefact and re-seals its checksum trailer.
std::vector<uint8_t> WithVersion(std::vector<uint8_t> bytes, uint32_t version) {
  std::memcpy(bytes.data() + 4, &version, 4);
  bytes.resize(bytes.size() - 32);
  std::string digest;
  EXPECT_TRUE(FromHex(Sha256Hex(bytes), &digest));
  bytes.insert(bytes.end(), digest.begin(), digest.end());
  return bytes;
}

TEST(DeltaTest, Q8DeltasAreAboutHalfTheF16OnesAndStayFp16Representable) {
  Fixture f;
  const TensorMap target = Perturb(f.base, f.params, 3e-3f, 1.0);
  DeltaOptions q8, f16;
  q8.max_fraction = f16.max_fraction = 0.25;
  f16.value_bits = 16;
  auto a = EncodeDelta(f.base, target, f.params, q8);
  auto b = EncodeDelta(f.base, target, f.params, f16);
  ASSERT_TRUE(a.ok() && b.ok());
  std::printf("[delta size] top 25%%, sigma 3e-3: q8 + bitmask %zu B, fp16 + index gaps %zu B (%.2f)\n",
              a->bytes.size(), b->bytes.size(), static_cast<double>(a->bytes.size()) / b->bytes.size());
  EXPECT_LT(a->bytes.size() * 10, b->bytes.size() * 7);
  EXPECT_GT(a->stats.tensors_bitmask, 0u);
  for (const std::string& name : f.params) {
    const torch::Tensor r = a->reconstructed.at(name);
    EXPECT_TRUE(torch::equal(r, r.to(torch::kHalf).to(torch::kFloat))) << "not fp16-representable: " << name;
  }
  auto applied = ApplyDelta(f.base, a->bytes);
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(StateDigest(*applied), StateDigest(a->reconstructed));
}

// The q8 replacement is plain IEEE arithmetic done one operation at a time; these values pin it so
// that a build that fused or reordered it (and so disagreed with the learner) fails here.
TEST(DeltaTest, Q8ReconstructionIsPinnedBitForBit) {
  TensorMap base, target;
  base["w"] = torch::tensor({0.25f, -0.5f, 0.125f, 1.0f, 0.3330078125f, -0.0999755859375f, 0.f, 2.f});
  target["w"] = torch::tensor({0.2513f, -0.4871f, 0.125f, 0.9375f, 0.3401f, -0.0999755859375f, 0.0002f, 2.f});
  auto enc = EncodeDelta(base, target, {"w"});
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  const torch::Tensor r = enc->reconstructed.at("w");
  // Worked out independently (Python's struct f32/f16 rounding): scale = 0.0625f / 127, q = 3, 26,
  // -127, 14 for elements 0, 1, 3, 4; element 6 (change 2e-4) rounds to q = 0 and is not shipped.
  const std::vector<float> expected = {0.25146484375f, -0.4873046875f,    0.125f, 0.9375f,
                                       0.33984375f,    -0.0999755859375f, 0.f,    2.f};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(r[static_cast<int64_t>(i)].item<float>(), expected[i]) << "element " << i;
  }
}

TEST(DeltaTest, VersionOneArtefactsAreStillReadAndCannotCarryQ8) {
  Fixture f;
  const TensorMap target = Perturb(f.base, f.params, 1e-2f, 0.2);
  DeltaOptions f16;
  f16.value_bits = 16;
  auto old_style = EncodeDelta(f.base, target, f.params, f16);
  ASSERT_TRUE(old_style.ok());
  auto applied = ApplyDelta(f.base, WithVersion(old_style->bytes, 1));
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ(StateDigest(*applied), StateDigest(old_style->reconstructed));
  auto q8 = EncodeDelta(f.base, target, f.params);
  ASSERT_TRUE(q8.ok());
  EXPECT_TRUE(ApplyDelta(f.base, WithVersion(q8->bytes, 1)).status().IsCorruption());
  EXPECT_TRUE(ApplyDelta(f.base, WithVersion(q8->bytes, 3)).status().code() == Status::Code::kUnimplemented);
}

TEST(DeltaTest, TopKFractionIsRespectedLargestChangesFirst) {
  Fixture f;
  const TensorMap target = Perturb(f.base, f.params, 1e-2f, 1.0);
  DeltaOptions o;
  o.max_fraction = 0.05;
  o.dense_above = 0.25;
  auto enc = EncodeDelta(f.base, target, f.params, o);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  for (const std::string& name : f.params) {
    const torch::Tensor b = f.base.at(name).reshape({-1}), t = target.at(name).reshape({-1});
    const torch::Tensor shipped = enc->reconstructed.at(name).reshape({-1}).ne(b);
    const int64_t k = static_cast<int64_t>(std::ceil(0.05 * static_cast<double>(b.numel())));
    EXPECT_LE(shipped.sum().item<int64_t>(), k) << name;
    const torch::Tensor change = (t - b).abs();
    if (shipped.any().item<bool>() && shipped.logical_not().any().item<bool>()) {
      // Every shipped change is at least as large as every change left out.
      EXPECT_GE(change.masked_select(shipped).min().item<float>(),
                change.masked_select(shipped.logical_not()).max().item<float>())
          << name;
    }
  }
  auto applied = ApplyDelta(f.base, enc->bytes);
  ASSERT_TRUE(applied.ok());
  EXPECT_TRUE(SameState(*applied, enc->reconstructed));
}

TEST(DeltaTest, MuchSmallerThanFp32Snapshot) {
  Fixture f;
  const size_t fp32 = KdwBytes(f.base, model::WeightDtype::kF32), fp16 = KdwBytes(f.base, model::WeightDtype::kF16);
  std::printf("[delta size] full snapshots: fp32 .kdw %zu B, fp16 .kdw %zu B (%.3f)\n", fp32, fp16,
              static_cast<double>(fp16) / static_cast<double>(fp32));
  struct Case {
    const char* what;
    float sigma;
    double frac;
    double max_fraction;
  } cases[] = {
      {"all params moved (sigma 1e-3), all shipped", 1e-3f, 1.0, 1.0},
      {"all params moved (sigma 1e-3), top 10%", 1e-3f, 1.0, 0.1},
      {"5% of elements moved (sigma 1e-2)", 1e-2f, 0.05, 1.0},
      {"1% of elements moved (sigma 1e-2)", 1e-2f, 0.01, 1.0},
  };
  for (const Case& c : cases) {
    const TensorMap target = Perturb(f.base, f.params, c.sigma, c.frac);
    DeltaOptions o;
    o.max_fraction = c.max_fraction;
    auto enc = EncodeDelta(f.base, target, f.params, o);
    ASSERT_TRUE(enc.ok()) << enc.status().ToString();
    const double ratio = static_cast<double>(enc->bytes.size()) / static_cast<double>(fp32);
    std::printf("[delta size] %-45s %7zu B vs fp32 .kdw %7zu B = %.3f (raw %llu B, %llu/%llu elements, %zu dense)\n",
                c.what, enc->bytes.size(), fp32, ratio, static_cast<unsigned long long>(enc->stats.raw_bytes),
                static_cast<unsigned long long>(enc->stats.elements_shipped),
                static_cast<unsigned long long>(enc->stats.elements), enc->stats.tensors_dense);
    EXPECT_LT(ratio, 0.6) << c.what;  // never worse than about an fp16 snapshot
    if (c.frac <= 0.05 || c.max_fraction <= 0.1) {
      EXPECT_LT(ratio, 0.25) << c.what;
    }
  }
}

TEST(DeltaTest, ChainedDeltasAndFullF16SnapshotGiveTheSameDigest) {
  Fixture f;
  TensorMap edge = f.base;
  for (int step = 0; step < 3; ++step) {
    const TensorMap target = Perturb(edge, f.params, 3e-3f, 0.3);
    DeltaOptions o;
    o.max_fraction = 0.2;
    auto enc = EncodeDelta(edge, target, f.params, o);
    ASSERT_TRUE(enc.ok()) << enc.status().ToString();
    auto applied = ApplyDelta(edge, enc->bytes);
    ASSERT_TRUE(applied.ok()) << applied.status().ToString();
    edge = std::move(applied).value();
    ASSERT_EQ(StateDigest(edge), StateDigest(enc->reconstructed));
  }
  // Replace semantics from an fp16-representable base keep the state fp16-representable, so a
  // full kF16 snapshot of it is lossless.
  model::Student s(TinyOptions());
  ASSERT_TRUE(LoadState(*s, edge).ok());
  auto kdw = model::EncodeWeights(*s, {4, 3, "test", 0}, model::WeightDtype::kF16);
  ASSERT_TRUE(kdw.ok());
  auto loaded = model::DecodeWeights(*kdw);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(StateDigest(StateOf(*loaded->student)), StateDigest(edge));
}

TEST(DeltaTest, NothingChangedGivesAnEmptyButValidDelta) {
  Fixture f;
  auto enc = EncodeDelta(f.base, f.base, f.params);
  ASSERT_TRUE(enc.ok());
  EXPECT_EQ(enc->stats.tensors_changed, 0u);
  EXPECT_TRUE(SameState(enc->reconstructed, f.base));
  EXPECT_LT(enc->bytes.size(), 200u);
}

TEST(DeltaTest, DamagedBytesAreCorruption) {
  Fixture f;
  const TensorMap target = Perturb(f.base, f.params, 1e-2f, 0.2);
  auto enc = EncodeDelta(f.base, target, f.params);
  ASSERT_TRUE(enc.ok());
  const std::vector<uint8_t>& good = enc->bytes;
  EXPECT_TRUE(ApplyDelta(f.base, {}).status().IsCorruption());
  std::mt19937 rng(3);
  std::vector<uint8_t> garbage(good.size());
  for (auto& b : garbage) b = static_cast<uint8_t>(rng());
  EXPECT_TRUE(ApplyDelta(f.base, garbage).status().IsCorruption());
  std::copy(good.begin(), good.begin() + 8, garbage.begin());  // right magic and version
  EXPECT_TRUE(ApplyDelta(f.base, garbage).status().IsCorruption());
  for (size_t n : {size_t{0}, size_t{3}, size_t{40}, good.size() / 2, good.size() - 1}) {
    EXPECT_TRUE(ApplyDelta(f.base, std::span(good).first(n)).status().IsCorruption()) << "truncated to " << n;
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_TRUE(ApplyDelta(f.base, longer).status().IsCorruption());
  for (size_t pos = 0; pos < good.size(); pos += std::max<size_t>(1, good.size() / 97)) {
    std::vector<uint8_t> flipped = good;
    flipped[pos] ^= static_cast<uint8_t>(1u << (pos % 8));
    const Status s = ApplyDelta(f.base, flipped).status();
    EXPECT_TRUE(s.IsCorruption()) << "bit flip at " << pos << ": " << s.ToString();
  }
}

TEST(DeltaTest, WrongBaseIsInvalidArgument) {
  Fixture f;
  const TensorMap target = Perturb(f.base, f.params, 1e-2f, 0.2);
  auto enc = EncodeDelta(f.base, target, f.params);
  ASSERT_TRUE(enc.ok());
  // Another value: the delta was not made for this state.
  EXPECT_TRUE(ApplyDelta(target, enc->bytes).status().IsInvalidArgument());
  // Another architecture.
  model::StudentOptions wider = TinyOptions();
  wider.width = 16;
  model::Student other(wider);
  EXPECT_TRUE(ApplyDelta(StateOf(*other), enc->bytes).status().IsInvalidArgument());
  TensorMap missing = f.base;
  missing.erase("tower.0.weight");
  EXPECT_TRUE(ApplyDelta(missing, enc->bytes).status().IsInvalidArgument());
  // The encoder refuses mismatched inputs too.
  EXPECT_TRUE(EncodeDelta(f.base, StateOf(*other), f.params).status().IsInvalidArgument());
  EXPECT_TRUE(EncodeDelta(missing, target, f.params).status().IsInvalidArgument());
}

TEST(DeltaTest, RefusesValuesFp16CannotCarryAndBadOptions) {
  Fixture f;
  TensorMap target = f.base;
  target["stem.0.weight"] = f.base.at("stem.0.weight").clone();
  target["stem.0.weight"].view({-1})[0] = 1e6f;
  EXPECT_TRUE(EncodeDelta(f.base, target, f.params).status().IsInvalidArgument());
  target["stem.0.weight"].view({-1})[0] = std::nanf("");
  EXPECT_TRUE(EncodeDelta(f.base, target, f.params).status().IsInvalidArgument());
  DeltaOptions o;
  o.max_fraction = 0;
  EXPECT_TRUE(EncodeDelta(f.base, f.base, f.params, o).status().IsInvalidArgument());
  o = {};
  o.value_bits = 4;
  EXPECT_TRUE(EncodeDelta(f.base, f.base, f.params, o).status().IsInvalidArgument());
  o = {};
  o.zstd_level = 0;
  EXPECT_TRUE(EncodeDelta(f.base, f.base, f.params, o).status().IsInvalidArgument());
}

}  // namespace
}  // namespace kd::update
