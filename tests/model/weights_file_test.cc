#include "model/weights_file.h"

#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

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
