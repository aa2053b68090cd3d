#include "base/hex.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kd {
namespace {

TEST(HexTest, ToHexIsLowercaseHighNibbleFirst) {
  EXPECT_EQ(ToHex(std::string_view("")), "");
  EXPECT_EQ(ToHex(std::string("\x00\x01\x7f\x80\xab\xff", 6)), "00017f80abff");
  const std::vector<uint8_t> bytes = {0xde, 0xad, 0xbe, 0xef};
  EXPECT_EQ(ToHex(bytes), "deadbeef");
}

TEST(HexTest, RoundTripOfEveryByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string hex = ToHex(all);
  ASSERT_EQ(hex.size(), 512u);
  EXPECT_TRUE(IsLowerHex(hex));
  std::string back;
  ASSERT_TRUE(FromHex(hex, &back));
  EXPECT_EQ(back, all);
}

TEST(HexTest, FromHexAcceptsEitherCase) {
  std::string out;
  ASSERT_TRUE(FromHex("DeadBEEF", &out));
  EXPECT_EQ(out, "\xde\xad\xbe\xef");
  ASSERT_TRUE(FromHex("", &out));
  EXPECT_EQ(out, "");
}

TEST(HexTest, FromHexRejectsOddLengthAndNonHexAndLeavesTheOutputAlone) {
  std::string out = "untouched";
  EXPECT_FALSE(FromHex("abc", &out));
  EXPECT_FALSE(FromHex("0g", &out));
  EXPECT_FALSE(FromHex("zz", &out));
  EXPECT_FALSE(FromHex(" 0", &out));
  EXPECT_FALSE(FromHex("0x00", &out));
  EXPECT_FALSE(FromHex(std::string("0\0", 2), &out));
  EXPECT_EQ(out, "untouched");
}

TEST(HexTest, IsLowerHex) {
  EXPECT_TRUE(IsLowerHex(""));
  EXPECT_TRUE(IsLowerHex("0123456789abcdef"));
  EXPECT_FALSE(IsLowerHex("ABCDEF"));
  EXPECT_FALSE(IsLowerHex("abcdeF"));
  EXPECT_FALSE(IsLowerHex("g"));
  EXPECT_FALSE(IsLowerHex("-1"));
}

TEST(HexTest, IsSha256HexWantsExactly64LowercaseDigits) {
  const std::string ok(64, 'a');
  EXPECT_TRUE(IsSha256Hex(ok));
  EXPECT_TRUE(IsSha256Hex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
  EXPECT_FALSE(IsSha256Hex(std::string(63, 'a')));
  EXPECT_FALSE(IsSha256Hex(std::string(65, 'a')));
  EXPECT_FALSE(IsSha256Hex(""));
  std::string upper = ok;
  upper[10] = 'A';
  EXPECT_FALSE(IsSha256Hex(upper));
  std::string non_hex = ok;
  non_hex[63] = 'g';
  EXPECT_FALSE(IsSha256Hex(non_hex));
}

}  // namespace
}  // namespace kd
