#include "base/text.h"

#include <string>

#include <gtest/gtest.h>

namespace kd {
namespace {

TEST(TextTest, PrintableBytesKeepsAsciiAndEscapesTheRest) {
  EXPECT_EQ(PrintableBytes("cam-1/seq 7"), "cam-1/seq 7");
  EXPECT_EQ(PrintableBytes(std::string("a\0b", 3)), "a\\x00b");
  EXPECT_EQ(PrintableBytes("tab\there\n"), "tab\\x09here\\x0a");
  EXPECT_EQ(PrintableBytes("back\\slash"), "back\\x5cslash");
  EXPECT_EQ(PrintableBytes("\xff\xfe"), "\\xff\\xfe");  // not UTF-8
  EXPECT_EQ(PrintableBytes(""), "");
}

TEST(TextTest, FirstLineStopsBeforeTheFirstNewline) {
  EXPECT_EQ(FirstLine("shape mismatch\nException raised from ...\nframe #0"), "shape mismatch");
  EXPECT_EQ(FirstLine("one line"), "one line");
  EXPECT_EQ(FirstLine("\nbacktrace only"), "");
  EXPECT_EQ(FirstLine(""), "");
}

}  // namespace
}  // namespace kd
