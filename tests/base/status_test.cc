#include "base/status.h"

#include <memory>

#include <gtest/gtest.h>

namespace kd {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "OK");
}

TEST(StatusTest, FactoriesCarryCodeAndMessage) {
  Status s = Status::Corruption("bad crc");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsCorruption());
  EXPECT_EQ(s.message(), "bad crc");
  EXPECT_EQ(s.ToString(), "Corruption: bad crc");
  EXPECT_EQ(s.WithContext("weights.kdw").ToString(), "Corruption: weights.kdw: bad crc");
  EXPECT_TRUE(Status::NotFound("x").IsNotFound());
}

Result<int> Half(int x) {
  if (x % 2 != 0) return Status::InvalidArgument("odd");
  return x / 2;
}

Status Quarter(int x, int* out) {
  KD_ASSIGN_OR_RETURN(int h, Half(x));
  KD_ASSIGN_OR_RETURN(*out, Half(h));
  return Status::Ok();
}

TEST(ResultTest, ValueAndErrorPropagate) {
  int q = 0;
  EXPECT_TRUE(Quarter(8, &q).ok());
  EXPECT_EQ(q, 2);
  Status s = Quarter(6, &q);
  EXPECT_TRUE(s.IsInvalidArgument());
  EXPECT_EQ(s.message(), "odd");
}

TEST(ResultTest, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r(std::make_unique<int>(7));
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> p = std::move(r).value();
  EXPECT_EQ(*p, 7);
}

TEST(CheckDeathTest, FailedCheckAborts) {
  EXPECT_DEATH(KD_CHECK_MSG(1 + 1 == 3, "math"), "KD_CHECK failed.*1 \\+ 1 == 3: math");
  Result<int> r = Status::NotFound("gone");
  EXPECT_DEATH((void)r.value(), "NotFound: gone");
}

}  // namespace
}  // namespace kd
