#include "edge/model_holder.h"

#include <memory>

#include <gtest/gtest.h>

#include "edge/running_model.h"

namespace kd::edge {
namespace {

std::shared_ptr<const RunningModel> Model(uint64_t version, bool trial) {
  auto m = std::make_shared<RunningModel>();
  m->version = version, m->trial = trial;
  return m;
}

TEST(ModelHolderTest, AStagedModelRunsFromTheNextFrame) {
  const auto v1 = Model(1, false);
  ModelHolder h(v1, v1);
  EXPECT_FALSE(h.Busy());
  h.Stage(Model(2, true));
  EXPECT_EQ(h.current()->version, 1u);  // not before the next frame
  EXPECT_EQ(h.Settled(), nullptr);      // a swap is pending: nothing to judge yet
  EXPECT_TRUE(h.Busy());
  EXPECT_EQ(h.TakeForFrame()->version, 2u);
  EXPECT_EQ(h.Settled()->version, 2u);
  EXPECT_TRUE(h.Busy());  // on trial
  EXPECT_EQ(h.running_version(), 2u);
}

TEST(ModelHolderTest, RollBackReturnsToTheCommittedModel) {
  const auto v1 = Model(1, false);
  ModelHolder h(v1, Model(2, true));  // restarted during a trial
  h.RollBack();
  EXPECT_EQ(h.TakeForFrame(), v1);
  EXPECT_FALSE(h.Busy());
}

TEST(ModelHolderTest, CommitMakesTheTrialTheCommittedModel) {
  const auto v1 = Model(1, false);
  ModelHolder h(v1, v1);
  h.Stage(Model(2, true));
  h.TakeForFrame();
  h.Commit(Model(2, false));
  EXPECT_EQ(h.committed()->version, 2u);
  EXPECT_FALSE(h.committed()->trial);
  const auto next = h.TakeForFrame();
  EXPECT_EQ(next->version, 2u);
  EXPECT_FALSE(next->trial);
  EXPECT_FALSE(h.Busy());
}

}  // namespace
}  // namespace kd::edge
