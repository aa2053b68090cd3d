// WeightAverage on a tiny student: the decay schedule, the averaging of float tensors, the copy of
// integer buffers, and that State() / CopyTo() hand out the average and leave the source alone.
#include "learner/weight_average.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace kd::learner {
namespace {

model::Student TinyStudent() {
  model::StudentOptions o;
  o.width = 8;
  o.head_channels = 8;
  o.input_width = 64;
  o.input_height = 64;
  return model::Student(o);
}

void FillFloats(model::StudentImpl& s, float v) {
  torch::NoGradGuard no_grad;
  for (auto& p : s.named_parameters(true)) p.value().fill_(v);
  for (auto& b : s.named_buffers(true)) {
    if (torch::isFloatingType(b.value().scalar_type())) b.value().fill_(v);
  }
}

TEST(WeightAverageTest, DecayRampsUpToItsCeiling) {
  auto s = TinyStudent();
  WeightAverage avg(*s, 0.998);
  EXPECT_DOUBLE_EQ(avg.NextDecay(), 0.1);  // (1 + 0) / (10 + 0)
  for (int i = 0; i < 90; ++i) avg.Update(*s);
  EXPECT_DOUBLE_EQ(avg.NextDecay(), 91.0 / 100.0);
  for (int i = 0; i < 10000; ++i) avg.Update(*s);
  EXPECT_DOUBLE_EQ(avg.NextDecay(), 0.998);
  EXPECT_EQ(avg.updates(), 10090u);
}

TEST(WeightAverageTest, AveragesFloatTensorsAndCopiesIntegerBuffers) {
  auto s = TinyStudent();
  FillFloats(*s, 1.f);
  WeightAverage avg(*s, 0.99);
  // First update: d = 0.1, so avg = 0.1 * 1 + 0.9 * 3 = 2.8.
  FillFloats(*s, 3.f);
  int64_t tracked = -1;
  {
    torch::NoGradGuard no_grad;
    for (auto& b : s->named_buffers(true)) {
      if (!torch::isFloatingType(b.value().scalar_type())) b.value().fill_(tracked = 7);
    }
  }
  ASSERT_EQ(tracked, 7) << "the student has no integer buffer (BN num_batches_tracked) to check";
  avg.Update(*s);
  // Second update: d = 2 / 11, avg = 2 / 11 * 2.8 + 9 / 11 * 5.
  FillFloats(*s, 5.f);
  avg.Update(*s);
  const double want = 2.0 / 11 * 2.8 + 9.0 / 11 * 5.0;
  const update::TensorMap state = avg.State();
  const update::TensorMap live = update::StateOf(*s);
  ASSERT_EQ(state.size(), live.size());
  for (const auto& [name, t] : state) {
    ASSERT_TRUE(live.count(name)) << name;
    EXPECT_EQ(t.device().type(), torch::kCPU);
    if (torch::isFloatingType(t.scalar_type())) {
      EXPECT_NEAR(t.min().item<double>(), want, 1e-5) << name;
      EXPECT_NEAR(t.max().item<double>(), want, 1e-5) << name;
      EXPECT_EQ(live.at(name).max().item<float>(), 5.f) << name << ": the source was changed";
    } else {
      EXPECT_EQ(t.max().item<int64_t>(), 7) << name;
    }
  }
  // CopyTo writes exactly State() into a student of the same architecture.
  auto other = TinyStudent();
  avg.CopyTo(*other);
  for (const auto& [name, t] : update::StateOf(*other)) EXPECT_TRUE(torch::equal(t, state.at(name))) << name;
}

}  // namespace
}  // namespace kd::learner
