#include "cluster/kv_store.h"

#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace kd::cluster {
namespace {

// The local addresses (hex, as in /proc/net/tcp*) of sockets listening on `port`.
std::vector<std::string> ListeningAddresses(int port) {
  std::vector<std::string> out;
  char port_hex[8];
  std::snprintf(port_hex, sizeof port_hex, "%04X", port);
  for (const char* file : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      std::istringstream row(line);
      std::string slot, local, remote, state;
      row >> slot >> local >> remote >> state;
      if (state != "0A") continue;  // TCP_LISTEN
      const auto colon = local.rfind(':');
      if (local.substr(colon + 1) == port_hex) out.push_back(local.substr(0, colon));
    }
  }
  return out;
}

TEST(KvStoreTest, ServesOnLoopbackOnlyAndAClientSeesItsValues) {
  auto server = KvStore::Serve({.host = "127.0.0.1", .port = 0, .timeout_s = 5});
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  const int port = (*server)->port();
  ASSERT_GT(port, 0);
  // LibTorch's TCPStore listens on the wildcard address by itself; here only 127.0.0.1 (IPv4, or
  // its IPv4-mapped IPv6 form ::ffff:127.0.0.1) may be listening.
  const auto addresses = ListeningAddresses(port);
  ASSERT_FALSE(addresses.empty());
  for (const auto& a : addresses) {
    EXPECT_TRUE(a == "0100007F" || a == "0000000000000000FFFF00000100007F") << "listening on " << a;
  }

  auto client = KvStore::Connect({.host = "127.0.0.1", .port = port, .timeout_s = 5});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE((*server)->Set("k", std::string("v\0w", 3)).ok());
  auto got = (*client)->Get("k");
  ASSERT_TRUE(got.ok());
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ(**got, std::string("v\0w", 3));
  auto missing = (*client)->Get("nothing");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  EXPECT_EQ((*client)->Add("n", 2).value(), 2);
  EXPECT_EQ((*server)->Add("n", 3).value(), 5);
  EXPECT_EQ((*client)->Add("n", 0).value(), 5);

  // compareSet: swaps only from the expected value.
  EXPECT_EQ((*client)->CompareSet("owner", "", "a").value(), "a");
  EXPECT_EQ((*client)->CompareSet("owner", "b", "c").value(), "a");
  EXPECT_EQ((*client)->CompareSet("owner", "a", "c").value(), "c");

  EXPECT_TRUE((*client)->Delete("k").value());
  EXPECT_FALSE((*client)->Get("k")->has_value());
}

TEST(KvStoreTest, ConnectingToNothingIsUnavailable) {
  int port = 0;
  {
    auto server = KvStore::Serve({.host = "127.0.0.1", .port = 0, .timeout_s = 5});
    ASSERT_TRUE(server.ok());
    port = (*server)->port();
  }
  auto client = KvStore::Connect({.host = "127.0.0.1", .port = port, .timeout_s = 1});
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), Status::Code::kUnavailable) << client.status().ToString();
}

TEST(KvStoreTest, ANonNumericListenHostIsRefused) {
  auto server = KvStore::Serve({.host = "localhost", .port = 0, .timeout_s = 5});
  ASSERT_FALSE(server.ok());
  EXPECT_TRUE(server.status().IsInvalidArgument());
}

}  // namespace
}  // namespace kd::cluster
