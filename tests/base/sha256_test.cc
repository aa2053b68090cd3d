#include "base/sha256.h"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "base/hex.h"

namespace kd {
namespace {

// FIPS 180-4 / NIST CSRC example vectors.
constexpr char kEmpty[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
constexpr char kAbc[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
constexpr char kTwoBlocks[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
constexpr char kTwoBlocksInput[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), kEmpty);
  EXPECT_EQ(Sha256Hex("abc"), kAbc);
  EXPECT_EQ(Sha256Hex(kTwoBlocksInput), kTwoBlocks);
}

TEST(Sha256Test, OneMillionAs) {
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, RawIs32BytesOfTheHex) {
  const std::string raw = Sha256Raw("abc");
  ASSERT_EQ(raw.size(), kSha256Bytes);
  EXPECT_EQ(ToHex(raw), kAbc);
  EXPECT_EQ(Sha256Hex("abc").size(), kSha256HexChars);
  EXPECT_TRUE(IsSha256Hex(Sha256Hex("abc")));
}

TEST(Sha256Test, SpanAndStringViewAgree) {
  const std::vector<uint8_t> bytes = {'a', 'b', 'c'};
  EXPECT_EQ(Sha256Hex(bytes), kAbc);
  EXPECT_EQ(Sha256Raw(bytes), Sha256Raw("abc"));
  EXPECT_EQ(Sha256Hex(std::span<const uint8_t>()), kEmpty);
}

TEST(Sha256Test, HasherMatchesOneShotAtEverySplit) {
  const std::string input = kTwoBlocksInput;
  for (size_t cut = 0; cut <= input.size(); ++cut) {
    Sha256Hasher h;
    h.Update(std::string_view(input).substr(0, cut)).Update(std::string_view(input).substr(cut));
    EXPECT_EQ(h.FinalHex(), kTwoBlocks) << "cut at " << cut;
  }
  Sha256Hasher empty;
  EXPECT_EQ(empty.FinalHex(), kEmpty);
  Sha256Hasher raw;
  raw.Update(std::vector<uint8_t>{'a', 'b', 'c'});
  EXPECT_EQ(raw.FinalRaw(), Sha256Raw("abc"));
}

TEST(Sha256Test, ACopiedHasherContinuesFromTheSamePoint) {
  Sha256Hasher h;
  h.Update("ab");
  Sha256Hasher copy = h;
  h.Update("c");
  copy.Update("c");
  EXPECT_EQ(h.FinalHex(), kAbc);
  EXPECT_EQ(copy.FinalHex(), kAbc);
}

// RFC 4231 test cases 1 and 2 (HMAC-SHA256).
TEST(HmacSha256Test, Rfc4231Vectors) {
  EXPECT_EQ(ToHex(HmacSha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(ToHex(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HmacSha256Test, ConstantTimeEqualsComparesLengthAndBytes) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace kd
