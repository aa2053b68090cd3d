#include "base/crc32c.h"

#include <string>

#include <gtest/gtest.h>

namespace kd {
namespace {

TEST(Crc32cTest, IsCastagnoli) {
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);  // the CRC-32C check value
  EXPECT_EQ(Crc32c(""), 0u);
  // Extending is the CRC of the concatenation, at every split (also across the 8-byte fast path).
  const std::string all = "key bytes and a value longer than eight bytes";
  for (size_t cut = 0; cut <= all.size(); ++cut) {
    const std::string a = all.substr(0, cut), b = all.substr(cut);
    EXPECT_EQ(Crc32cExtend(Crc32c(a), b.data(), b.size()), Crc32c(all)) << cut;
  }
}

}  // namespace
}  // namespace kd
