#include "base/crc32c.h"

#include <string>
#include <string_view>
#include <vector>

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

TEST(Crc32cTest, HardwareAndTablesAgree) {
  std::string bytes(100'003, '\0');
  uint32_t x = 12345;
  for (char& c : bytes) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 24);
  }
  // Around the hardware path's rounds of three 2 KiB streams (6 KiB) and a JPEG frame's size.
  for (size_t n : std::vector<size_t>{0, 1, 7, 8, 9, 63, 4096, 6143, 6144, 6145, 6152, 12288, 12295, 18431, 78385,
                                      bytes.size() - 3}) {
    for (size_t start : {size_t{0}, size_t{1}, size_t{3}}) {  // unaligned starts too
      if (start + n > bytes.size()) continue;
      EXPECT_EQ(Crc32cExtend(7, bytes.data() + start, n), internal::Crc32cExtendPortable(7, bytes.data() + start, n))
          << n << " from " << start;
    }
  }
  // Extending at every cut of a buffer of several rounds agrees with the whole.
  const std::string_view view(bytes.data(), 20'000);
  for (size_t cut = 0; cut <= view.size(); cut += 997) {
    EXPECT_EQ(Crc32cExtend(Crc32c(view.substr(0, cut)), view.data() + cut, view.size() - cut), Crc32c(view)) << cut;
  }
}

}  // namespace
}  // namespace kd
