#include "model/tfjs_graph.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

namespace kd::model {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// A tiny TF.js graph: x [1,4,4,1] -> conv3x3 stride 2 SAME (+bias, relu) -> [1,2,2,2]
// -> legacy ResizeBilinear to 4x4 -> Mean over H,W (keep dims).
class TfjsGraphTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kd_tfjs_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    kernel_ = torch::arange(18, torch::kFloat).reshape({3, 3, 1, 2}) / 10.f - 0.8f;  // HWIO
    bias_ = torch::tensor({0.5f, -0.25f});
    auto attr_conv = json{{"strides", {{"list", {{"i", {"1", "2", "2", "1"}}}}}},
                          {"padding", {{"s", "U0FNRQ=="}}},                                   // SAME
                          {"data_format", {{"s", "TkhXQw=="}}},                               // NHWC
                          {"fused_ops", {{"list", {{"s", {"Qmlhc0FkZA==", "UmVsdQ=="}}}}}}};  // BiasAdd, Relu
    json nodes = json::array({
        {{"name", "x"}, {"op", "Placeholder"}},
        {{"name", "w"}, {"op", "Const"}},
        {{"name", "b"}, {"op", "Const"}},
        {{"name", "size"}, {"op", "Const"}},
        {{"name", "axes"}, {"op", "Const"}},
        {{"name", "conv"}, {"op", "_FusedConv2D"}, {"input", {"x", "w", "b"}}, {"attr", attr_conv}},
        {{"name", "up"}, {"op", "ResizeBilinear"}, {"input", {"conv", "size"}}},
        {{"name", "mean"}, {"op", "Mean"}, {"input", {"up", "axes"}}, {"attr", {{"keep_dims", {{"b", true}}}}}},
    });
    json model = {
        {"format", "graph-model"},
        {"modelTopology", {{"node", nodes}}},
        {"weightsManifest",
         {{{"paths", {"w.bin"}},
           {"weights",
            {{{"name", "w"}, {"shape", {3, 3, 1, 2}}, {"dtype", "float32"}, {"quantization", {{"dtype", "float16"}}}},
             {{"name", "b"}, {"shape", {2}}, {"dtype", "float32"}},
             {{"name", "size"}, {"shape", {2}}, {"dtype", "int32"}},
             {{"name", "axes"}, {"shape", {2}}, {"dtype", "int32"}}}}}}}};
    std::ofstream(dir_ / "model.json") << model.dump();
    std::ofstream bin(dir_ / "w.bin", std::ios::binary);
    auto k16 = kernel_.to(torch::kHalf).contiguous();
    bin.write(static_cast<const char*>(k16.data_ptr()), 18 * 2);
    bin.write(static_cast<const char*>(bias_.data_ptr()), 2 * 4);
    int32_t ints[4] = {4, 4, 1, 2};  // size 4x4; reduce NHWC axes 1,2
    bin.write(reinterpret_cast<const char*>(ints), sizeof(ints));
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  torch::Tensor kernel_, bias_;
};

TEST_F(TfjsGraphTest, ConvUsesAsymmetricSamePaddingAndOihwKernels) {
  auto g = TfjsGraph::Load((dir_ / "model.json").string(), {"conv", "mean"});
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  auto x = torch::arange(16, torch::kFloat).reshape({1, 1, 4, 4});
  auto out = (*g)->Run({{"x", x}}, {"conv"});
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  // TF SAME for in=4, k=3, s=2: total padding 1, all of it after (bottom/right).
  auto w = kernel_.to(torch::kHalf).to(torch::kFloat).permute({3, 2, 0, 1});
  auto ref = torch::relu(torch::conv2d(torch::constant_pad_nd(x, {0, 1, 0, 1}), w, bias_, 2));
  ASSERT_EQ((*out)[0].sizes(), ref.sizes());
  EXPECT_TRUE(torch::allclose((*out)[0], ref, 1e-5, 1e-5));
}

TEST_F(TfjsGraphTest, LegacyResizeAndMeanMatchHandValues) {
  auto in = torch::tensor({0.f, 2.f, 4.f, 6.f}).reshape({1, 1, 2, 2});
  auto up = ResizeBilinearLegacy(in, 4, 4);
  // src = dst * in / out = dst / 2: rows 0, 0.5, 1, 1.5 -> clamped to the last row.
  auto row0 = torch::tensor({0.f, 1.f, 2.f, 2.f});
  EXPECT_TRUE(torch::allclose(up[0][0][0], row0));
  EXPECT_TRUE(torch::allclose(up[0][0][1], row0 + 2.f));
  EXPECT_TRUE(torch::allclose(up[0][0][3], row0 + 4.f));
  auto g = TfjsGraph::Load((dir_ / "model.json").string(), {"mean"});
  ASSERT_TRUE(g.ok());
  auto out = (*g)->Run({{"x", torch::ones({1, 1, 4, 4})}}, {"conv", "up", "mean"});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ((*out)[1].sizes(), (std::vector<int64_t>{1, 2, 4, 4}));
  EXPECT_TRUE(torch::allclose((*out)[2].flatten(), (*out)[1].mean({2, 3}).flatten()));
}

TEST_F(TfjsGraphTest, FeedingAnInnerNodeCutsTheGraphAndKeepsGradients) {
  auto g = TfjsGraph::Load((dir_ / "model.json").string(), {"mean"});
  ASSERT_TRUE(g.ok());
  auto feat = torch::randn({1, 2, 2, 2}, torch::requires_grad());
  auto out = (*g)->Run({{"conv", feat}}, {"mean"});  // the placeholder is never needed
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  (*out)[0].sum().backward();
  ASSERT_TRUE(feat.grad().defined());
  EXPECT_GT(feat.grad().abs().sum().item<float>(), 0.f);
  EXPECT_FALSE((*g)->Constant("w").requires_grad());
}

TEST_F(TfjsGraphTest, ErrorsAreStatusValues) {
  EXPECT_TRUE(TfjsGraph::Load((dir_ / "missing.json").string(), {"mean"}).status().IsNotFound());
  std::ofstream(dir_ / "bad.json") << "{not json";
  EXPECT_TRUE(TfjsGraph::Load((dir_ / "bad.json").string(), {"mean"}).status().IsCorruption());
  auto g = TfjsGraph::Load((dir_ / "model.json").string(), {"mean"});
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE((*g)->Run({}, {"mean"}).status().IsInvalidArgument());  // placeholder not fed
  EXPECT_TRUE((*g)->Run({{"x", torch::ones({1, 1, 4, 4})}}, {"nope"}).status().IsNotFound());
  fs::resize_file(dir_ / "w.bin", 10);  // truncated shard
  EXPECT_TRUE(TfjsGraph::Load((dir_ / "model.json").string(), {"mean"}).status().IsCorruption());
}

}  // namespace
}  // namespace kd::model
