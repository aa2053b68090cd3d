#include "base/device_id.h"

#include <initializer_list>
#include <string>

#include <gtest/gtest.h>

namespace kd {
namespace {

TEST(DeviceIdTest, OneRuleForEveryone) {
  for (const std::string& ok :
       std::initializer_list<std::string>{"cam-1", "cam-1.a_B", "A", "...", ".hidden", std::string(64, 'z')}) {
    EXPECT_TRUE(IsValidDeviceId(ok)) << ok;
  }
  for (const std::string& bad :
       std::initializer_list<std::string>{"", ".", "..", "cam/1", "cam 1", "cam\n", "kamera-ü", std::string(65, 'z')}) {
    EXPECT_FALSE(IsValidDeviceId(bad)) << bad;
  }
  EXPECT_FALSE(IsValidDeviceId("abcd", 3));  // a tighter limit applies
  EXPECT_TRUE(IsValidDeviceId("abc", 3));
  EXPECT_FALSE(IsValidDeviceId(std::string(65, 'z'), 1000));  // never beyond the rule's 64
}

}  // namespace
}  // namespace kd
