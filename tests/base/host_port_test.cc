#include "base/host_port.h"

#include <gtest/gtest.h>

namespace kd {
namespace {

TEST(HostPortTest, ParsesNamesAddressesAndBracketedIpv6) {
  std::string host;
  int port = -1;
  ASSERT_TRUE(ParseHostPort("127.0.0.1:9470", &host, &port).ok());
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 9470);
  ASSERT_TRUE(ParseHostPort("localhost:0", &host, &port).ok());
  EXPECT_EQ(port, 0);
  ASSERT_TRUE(ParseHostPort("[::1]:8080", &host, &port).ok());
  EXPECT_EQ(host, "::1");
  for (const char* bad :
       {"", "9470", ":9470", "host:", "host:x", "host:70000", "host:-1", "::1:80", "[::1:80", "[]:80", "host:80x"}) {
    EXPECT_TRUE(ParseHostPort(bad, &host, &port).IsInvalidArgument()) << bad;
  }
}

TEST(HostPortTest, LoopbackHosts) {
  for (const char* h : {"127.0.0.1", "127.1.2.3", "::1", "localhost"}) EXPECT_TRUE(IsLoopbackHost(h)) << h;
  for (const char* h : {"0.0.0.0", "10.0.0.1", "::", "example.org"}) EXPECT_FALSE(IsLoopbackHost(h)) << h;
}

}  // namespace
}  // namespace kd
