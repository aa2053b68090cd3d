#include "base/detection.h"

#include <gtest/gtest.h>

namespace kd {
namespace {

TEST(BoxTest, IouOfHandComputedCases) {
  Box a{0, 0, 10, 10};
  EXPECT_FLOAT_EQ(BoxIou(a, a), 1.f);
  EXPECT_FLOAT_EQ(BoxIou(a, Box{5, 0, 15, 10}), 50.f / 150.f);
  EXPECT_FLOAT_EQ(BoxIou(a, Box{10, 10, 20, 20}), 0.f);  // touching corners
  EXPECT_FLOAT_EQ(BoxIou(Box{}, Box{}), 0.f);
}

TEST(CocoTest, LabelsAndCategoryIds) {
  EXPECT_EQ(CocoClassName(0), "person");
  EXPECT_EQ(CocoCategoryId(0), 1);
  EXPECT_EQ(CocoCategoryId(7), 8);    // truck
  EXPECT_EQ(CocoCategoryId(11), 13);  // stop sign: ids skip 12
  EXPECT_EQ(CocoCategoryId(79), 90);
  EXPECT_EQ(CocoLabelFromName("motorcycle"), 3);
  EXPECT_EQ(CocoLabelFromName("unicorn"), -1);
}

TEST(NmsTest, SuppressesOverlapsOfSameLabelOnly) {
  std::vector<Detection> d = {
      {{0, 0, 10, 10}, 0.5f, 0}, {{1, 0, 11, 10}, 0.9f, 0}, {{1, 0, 11, 10}, 0.8f, 2}, {{50, 50, 60, 60}, 0.3f, 0}};
  auto kept = NonMaxSuppression(d, 0.5f);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_FLOAT_EQ(kept[0].score, 0.9f);
  EXPECT_EQ(kept[1].label, 2);
  EXPECT_FLOAT_EQ(kept[2].score, 0.3f);
}

}  // namespace
}  // namespace kd
