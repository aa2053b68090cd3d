#include "base/coding.h"

#include <bit>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace kd {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

TEST(CodingTest, LittleEndianLayout) {
  std::string s;
  PutU8(&s, 0xAB);
  PutLe16(&s, 0x0102);
  PutLe32(&s, 0x01020304u);
  PutLe64(&s, 0x0102030405060708ull);
  EXPECT_EQ(s, Bytes({0xAB, 0x02, 0x01, 0x04, 0x03, 0x02, 0x01, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01}));
}

TEST(CodingTest, BigEndianLayout) {
  std::string s;
  PutBe64(&s, 0x0102030405060708ull);
  EXPECT_EQ(s, Bytes({0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08}));
  EXPECT_EQ(DecodeBe64(s.data()), 0x0102030405060708ull);
}

TEST(CodingTest, StringAndVectorAppendersWriteTheSameBytes) {
  std::string s;
  std::vector<uint8_t> v;
  PutU8(&s, 7), PutU8(&v, 7);
  PutLe16(&s, 0xBEEF), PutLe16(&v, 0xBEEF);
  PutLe32(&s, 0xDEADBEEFu), PutLe32(&v, 0xDEADBEEFu);
  PutLe64(&s, 0x0123456789ABCDEFull), PutLe64(&v, 0x0123456789ABCDEFull);
  PutBe64(&s, 42), PutBe64(&v, 42);
  PutBytes(&s, "xyz", 3), PutBytes(&v, "xyz", 3);
  PutLengthPrefixed(&s, "hello"), PutLengthPrefixed(&v, "hello");
  EXPECT_EQ(s, std::string(v.begin(), v.end()));
}

TEST(CodingTest, RoundTripsAtTheBoundaries) {
  for (uint16_t x : {uint16_t{0}, uint16_t{1}, uint16_t{0x7F}, uint16_t{0x80}, uint16_t{0xFF}, uint16_t{0x100},
                     std::numeric_limits<uint16_t>::max()}) {
    std::string s;
    PutLe16(&s, x);
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(DecodeLe16(s.data()), x);
  }
  for (uint32_t x :
       {0u, 1u, 0xFFu, 0x100u, 0xFFFFu, 0x10000u, 0x7FFFFFFFu, 0x80000000u, std::numeric_limits<uint32_t>::max()}) {
    std::string s;
    PutLe32(&s, x);
    ASSERT_EQ(s.size(), 4u);
    EXPECT_EQ(DecodeLe32(s.data()), x);
  }
  for (uint64_t x : {uint64_t{0}, uint64_t{1}, uint64_t{0xFFFFFFFF}, uint64_t{0x100000000}, uint64_t{1} << 63,
                     std::numeric_limits<uint64_t>::max()}) {
    std::string le, be;
    PutLe64(&le, x);
    PutBe64(&be, x);
    ASSERT_EQ(le.size(), 8u);
    ASSERT_EQ(be.size(), 8u);
    EXPECT_EQ(DecodeLe64(le.data()), x);
    EXPECT_EQ(DecodeBe64(be.data()), x);
  }
}

TEST(CodingTest, BigEndianKeysSortAsNumbers) {
  std::string a, b, c;
  PutBe64(&a, 255);
  PutBe64(&b, 256);
  PutBe64(&c, uint64_t{1} << 40);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST(CodingTest, ReaderReadsWhatWasWritten) {
  std::vector<uint8_t> v;
  PutU8(&v, 0xFF);
  PutLe16(&v, 0xFFFF);
  PutLe32(&v, std::numeric_limits<uint32_t>::max());
  PutLe64(&v, std::numeric_limits<uint64_t>::max());
  PutLe32(&v, static_cast<uint32_t>(int32_t{-2}));
  PutLe64(&v, static_cast<uint64_t>(std::numeric_limits<int64_t>::min()));
  PutLe32(&v, std::bit_cast<uint32_t>(-1.5f));
  PutLengthPrefixed(&v, "abc");
  PutBytes(&v, "tail", 4);

  ByteReader r(v);
  uint8_t u8 = 0;
  uint16_t u16 = 0;
  uint32_t u32 = 0;
  uint64_t u64 = 0;
  int32_t i32 = 0;
  int64_t i64 = 0;
  float f32 = 0;
  std::string s;
  char tail[4];
  ASSERT_TRUE(r.U8(&u8) && r.U16(&u16) && r.U32(&u32) && r.U64(&u64) && r.I32(&i32) && r.I64(&i64) && r.F32(&f32) &&
              r.LengthPrefixed(3, &s) && r.CopyTo(tail, 4));
  EXPECT_EQ(u8, 0xFF);
  EXPECT_EQ(u16, 0xFFFF);
  EXPECT_EQ(u32, std::numeric_limits<uint32_t>::max());
  EXPECT_EQ(u64, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(i32, -2);
  EXPECT_EQ(i64, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f32, -1.5f);
  EXPECT_EQ(s, "abc");
  EXPECT_EQ(std::string(tail, 4), "tail");
  EXPECT_EQ(r.remaining(), 0u);
  EXPECT_TRUE(r.ok());
}

TEST(CodingTest, ReaderFailsOnShortInputAndStaysFailed) {
  const std::string three = Bytes({1, 2, 3});
  ByteReader r(three);
  uint32_t u32 = 0;
  EXPECT_FALSE(r.U32(&u32));
  EXPECT_FALSE(r.ok());
  uint8_t u8 = 0;
  EXPECT_FALSE(r.U8(&u8)) << "a failed reader stays failed although a byte remains";
  std::span<const uint8_t> view;
  EXPECT_FALSE(r.Bytes(0, &view));
}

TEST(CodingTest, ReaderBoundsOfBytesAndLengthPrefixed) {
  const std::string four = Bytes({1, 2, 3, 4});
  {
    ByteReader r(four);
    std::span<const uint8_t> view;
    EXPECT_TRUE(r.Bytes(4, &view));
    EXPECT_EQ(view.size(), 4u);
    EXPECT_TRUE(r.Bytes(0, &view));
    EXPECT_FALSE(r.Bytes(1, &view));
  }
  std::string s;
  PutLengthPrefixed(&s, "hello");
  {
    ByteReader r(s);
    std::string out;
    EXPECT_FALSE(r.LengthPrefixed(4, &out)) << "longer than max_len";
    EXPECT_FALSE(r.ok());
  }
  {
    ByteReader r(std::string_view(s).substr(0, s.size() - 1));
    std::string out;
    EXPECT_FALSE(r.LengthPrefixed(100, &out)) << "length past the end";
  }
  {
    ByteReader r(s);
    std::string out;
    EXPECT_TRUE(r.LengthPrefixed(5, &out));
    EXPECT_EQ(out, "hello");
  }
}

}  // namespace
}  // namespace kd
