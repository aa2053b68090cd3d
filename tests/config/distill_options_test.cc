#include "config/distill_options.h"

#include <gtest/gtest.h>

namespace kd::config {
namespace {

TEST(DistillOptionsTest, DefaultsAreValidAndParseOverrides) {
  EXPECT_TRUE(DistillOptions{}.Validate().ok());
  auto o = ParseDistillOptions("iterations = 10\nmimic = true\n[student]\nwidth = 24\nclasses = [\"person\"]\n");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->iterations, 10);
  EXPECT_TRUE(o->mimic);
  EXPECT_EQ(o->student.width, 24);
  EXPECT_EQ(o->student.classes, std::vector<std::string>{"person"});
}

TEST(DistillOptionsTest, UnknownKeysWrongTypesAndRangesAreErrors) {
  auto unknown = ParseDistillOptions("iterashuns = 10\n");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("iterashuns"), std::string::npos);
  EXPECT_NE(ParseDistillOptions("[student]\ndepth = 3\n").status().message().find("student.depth"), std::string::npos);
  EXPECT_TRUE(ParseDistillOptions("iterations = \"many\"\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("batch_size = 0\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("crosskd = false\ncakd = true\n").status().IsInvalidArgument());
  EXPECT_TRUE(ParseDistillOptions("lr = [\n").status().IsInvalidArgument());
  EXPECT_TRUE(LoadDistillOptions("/nonexistent.toml").status().IsNotFound());
}

TEST(DistillOptionsTest, AblationArmsAreCumulative) {
  auto a = *AblationArm('a', {});
  EXPECT_TRUE(a.pseudo_labels && !a.mimic && !a.crosskd && !a.cakd && !a.adaptive);
  EXPECT_TRUE(AblationArm('b', {})->mimic);
  auto c = *AblationArm('c', {});
  EXPECT_TRUE(c.crosskd && !c.mimic && !c.cakd);
  auto e = *AblationArm('e', {});
  EXPECT_TRUE(e.crosskd && e.cakd && e.adaptive);
  EXPECT_FALSE(AblationArm('z', {}).ok());
  for (char arm : {'a', 'b', 'c', 'd', 'e'}) EXPECT_TRUE(AblationArm(arm, {})->Validate().ok());
}

}  // namespace
}  // namespace kd::config
