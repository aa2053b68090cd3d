#include "model/weights_file.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/sha256.h"
#include "model/dtype_name.h"

namespace kd::model {
namespace {

StudentOptions Tiny() {
  StudentOptions o;
  o.width = 8;
  o.head_channels = 8;
  o.labels = {0, 2};
  o.input_width = 64;
  o.input_height = 64;
  o.one_to_one = true;
  return o;
}

TEST(WeightsFileTest, RoundTripIsExactAndSelfDescribing) {
  Student s(Tiny());
  // Make BN running stats non-trivial so buffers are checked too.
  s->train();
  s->forward(torch::rand({2, 3, 64, 64}) * 255);
  WeightsMeta meta{7, 6, "test", 123};
  auto bytes = EncodeWeights(*s, meta, WeightDtype::kF32);
  ASSERT_TRUE(bytes.ok());
  auto loaded = DecodeWeights(*bytes);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->meta.model_version, 7u);
  EXPECT_EQ(loaded->meta.base_version, 6u);
  EXPECT_EQ(loaded->student->options().ArchJson(), Tiny().ArchJson());
  auto a = s->named_parameters();
  auto b = loaded->student->named_parameters();
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  auto ab = s->named_buffers();
  auto bb = loaded->student->named_buffers();
  for (const auto& p : ab) EXPECT_TRUE(torch::equal(p.value(), bb[p.key()])) << p.key();
  EXPECT_EQ(loaded->sha256_hex.size(), 64u);
}

TEST(WeightsFileTest, Fp16HalvesTheSizeWithSmallError) {
  Student s(Tiny());
  auto f32 = EncodeWeights(*s, {}, WeightDtype::kF32);
  auto f16 = EncodeWeights(*s, {}, WeightDtype::kF16);
  ASSERT_TRUE(f32.ok() && f16.ok());
  EXPECT_LT(f16->size(), f32->size() * 0.7);
  auto loaded = DecodeWeights(*f16);
  ASSERT_TRUE(loaded.ok());
  for (const auto& p : s->named_parameters()) {
    EXPECT_TRUE(torch::allclose(p.value(), loaded->student->named_parameters()[p.key()], 1e-2, 1e-3)) << p.key();
  }
}

TEST(WeightsFileTest, CorruptionIsDetected) {
  Student s(Tiny());
  auto bytes = *EncodeWeights(*s, {}, WeightDtype::kF32);
  auto flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x40;
  EXPECT_TRUE(DecodeWeights(flipped).status().IsCorruption());
  auto truncated = bytes;
  truncated.resize(bytes.size() - 100);
  EXPECT_TRUE(DecodeWeights(truncated).status().IsCorruption());
  auto magic = bytes;
  magic[0] = 'X';
  EXPECT_TRUE(DecodeWeights(magic).status().IsCorruption());
  EXPECT_TRUE(DecodeWeights({}).status().IsCorruption());
}

// `bytes` (a .kdw) with its metadata JSON edited by `edit`, the data section moved to the new
// aligned start and the SHA-256 trailer recomputed: a file that passes the checksum.
std::vector<uint8_t> WithMeta(const std::vector<uint8_t>& bytes, const std::function<void(nlohmann::json&)>& edit) {
  auto u32 = [&](size_t at) {
    return uint32_t{bytes[at]} | uint32_t{bytes[at + 1]} << 8 | uint32_t{bytes[at + 2]} << 16 |
           uint32_t{bytes[at + 3]} << 24;
  };
  auto align = [](size_t n) { return (n + 63) / 64 * 64; };
  const size_t meta_len = u32(8), body = bytes.size() - 32;
  nlohmann::json meta = nlohmann::json::parse(bytes.begin() + 12, bytes.begin() + 12 + static_cast<long>(meta_len));
  edit(meta);
  const std::string text = meta.dump();
  std::vector<uint8_t> out(bytes.begin(), bytes.begin() + 8);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(text.size() >> (8 * i)));
  out.insert(out.end(), text.begin(), text.end());
  out.resize(align(out.size()), 0);
  out.insert(out.end(), bytes.begin() + static_cast<long>(align(12 + meta_len)),
             bytes.begin() + static_cast<long>(body));
  const std::string hex = Sha256Hex(out);
  for (size_t i = 0; i < hex.size(); i += 2)
    out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

// Metadata that passes the checksum but lies: each used to be accepted (or to be undefined
// behaviour) and is Corruption / InvalidArgument now. The offset wrap was found while writing
// fuzz/weights_fuzz.cc and confirmed with it (fuzz/corpus/weights/regress-offset-wrap).
TEST(WeightsFileTest, LyingMetadataIsRefused) {
  Student s(Tiny());
  const auto bytes = *EncodeWeights(*s, {}, WeightDtype::kF16);
  ASSERT_TRUE(DecodeWeights(WithMeta(bytes, [](nlohmann::json&) {})).ok());
  auto expect_refused = [&](const std::function<void(nlohmann::json&)>& edit, const std::string& what) {
    auto r = DecodeWeights(WithMeta(bytes, edit));
    EXPECT_FALSE(r.ok()) << what;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().ToString();
    }
  };
  // data_start + offset + nbytes wrapped around 2^64 and passed the bounds check.
  expect_refused([](nlohmann::json& m) { m["tensors"][0]["offset"] = UINT64_MAX; }, "lies outside the file");
  expect_refused([](nlohmann::json& m) { m["tensors"][0]["offset"] = -1; }, "malformed weight file metadata");
  // A float where an integer belongs (get<size_t>() of 1e300 is undefined behaviour).
  expect_refused([](nlohmann::json& m) { m["tensors"][0]["offset"] = 1e300; }, "expected an integer");
  expect_refused([](nlohmann::json& m) { m["tensors"][0]["shape"][0] = 8.5; }, "expected an integer");
  expect_refused([](nlohmann::json& m) { m["model_version"] = -3; }, "out of range");
  // A tensor listed twice stood in for a missing one, left at its random initialisation.
  expect_refused([](nlohmann::json& m) { m["tensors"][1] = m["tensors"][0]; }, "twice");
  // An architecture whose width wraps to a valid int, or whose head is unbounded.
  expect_refused([](nlohmann::json& m) { m["arch"]["width"] = (uint64_t{1} << 32) + 16; }, "too large");
  expect_refused([](nlohmann::json& m) { m["arch"]["labels"] = std::vector<int>(81, 0); }, "more than 80 classes");
}

TEST(WeightsFileTest, SaveAndLoadFiles) {
  const auto path = (std::filesystem::temp_directory_path() / "kd_weights_test.kdw").string();
  Student s(Tiny());
  ASSERT_TRUE(SaveWeights(path, *s, {1, 0, "t", 0}).ok());
  auto loaded = LoadWeights(path);
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded->student->is_training());
  std::filesystem::remove(path);
  EXPECT_TRUE(LoadWeights(path).status().IsNotFound());
  EXPECT_TRUE(SaveWeights("/nonexistent-dir/x.kdw", *s, {}).code() == Status::Code::kIOError);
}

}  // namespace
}  // namespace kd::model

namespace kd::model {
namespace {

TEST(DtypeNameTest, OneMapBothWays) {
  for (const auto t : {torch::kFloat, torch::kHalf, torch::kDouble, torch::kBFloat16, torch::kLong, torch::kInt,
                       torch::kByte, torch::kBool}) {
    const char* name = DtypeName(t);
    ASSERT_NE(name, nullptr);
    EXPECT_EQ(DtypeFromName(name), t) << name;
  }
  EXPECT_STREQ(DtypeName(torch::kFloat), "f32");
  EXPECT_STREQ(DtypeName(torch::kHalf), "f16");
  EXPECT_STREQ(DtypeName(torch::kLong), "i64");
  EXPECT_EQ(DtypeName(torch::kComplexFloat), nullptr);
  EXPECT_FALSE(DtypeFromName("float32").has_value());
  EXPECT_FALSE(DtypeFromName("").has_value());
}

}  // namespace
}  // namespace kd::model
