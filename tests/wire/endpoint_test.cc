#include "wire/endpoint.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <stdlib.h>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "base/clock.h"

namespace kd::wire {
namespace {

using std::chrono::milliseconds;

std::string FakeJpeg(size_t n = 64) {
  std::string s(n, 'j');
  s[0] = '\xFF';
  s[1] = '\xD8';
  s[2] = '\xFF';
  return s;
}

Message Hello(const std::string& device_id, uint64_t seq = 1) {
  Message m;
  m.header.type = MsgType::kHello;
  m.header.device_id = device_id;
  m.header.seq = seq;
  return m;
}

Message Frame(const std::string& device_id, uint64_t seq) {
  Message m;
  m.header.type = MsgType::kFrame;
  m.header.device_id = device_id;
  m.header.seq = seq;
  m.header.width = 64;
  m.header.height = 48;
  m.payload = FakeJpeg();
  return m;
}

bool WaitConnected(const Client& client, milliseconds limit = milliseconds(3000)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (client.connected()) return true;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return client.connected();
}

std::string UniqueInproc(const std::string& name) {
  static std::atomic<int> n{0};
  return "inproc://wire-test-" + name + "-" + std::to_string(n++);
}

// Receives on the server until a message arrives or `limit` passes.
std::optional<Incoming> ServerGet(Server& server, milliseconds limit = milliseconds(2000)) {
  Result<std::optional<Incoming>> r = server.Receive(limit);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::nullopt;
}

std::optional<Message> ClientGet(Client& client, milliseconds limit = milliseconds(2000)) {
  Result<std::optional<Message>> r = client.Receive(limit);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? *r : std::nullopt;
}

TEST(EndpointInprocTest, RoundTrip) {
  Context ctx;
  ServerOptions so;
  so.endpoint = UniqueInproc("rt");
  auto server = Server::Bind(ctx, so);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  ClientOptions co;
  co.endpoint = so.endpoint;
  auto client = Client::Connect(ctx, co);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_TRUE((*client)->connected());

  ASSERT_TRUE((*client)->Send(Frame("cam1", 5)).ok());
  auto in = ServerGet(**server);
  ASSERT_TRUE(in.has_value());
  EXPECT_FALSE(in->peer.empty());
  EXPECT_TRUE(in->user_id.empty());
  EXPECT_EQ(in->message.header.type, MsgType::kFrame);
  EXPECT_EQ(in->message.header.seq, 5u);
  EXPECT_EQ(in->message.payload, FakeJpeg());

  Message ack;
  ack.header.type = MsgType::kAck;
  ack.header.device_id = "cam1";
  ack.header.ack_seq = 5;
  ack.header.credits = 8;
  ASSERT_TRUE((*server)->Send(in->peer, ack).ok());
  auto reply = ClientGet(**client);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->header.type, MsgType::kAck);
  EXPECT_EQ(reply->header.ack_seq, 5u);
  EXPECT_EQ(reply->header.credits, 8u);

  // Nothing more: timeouts give nullopt.
  auto none = (*server)->Receive(milliseconds(20));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ((*server)->stats().received, 1u);
  EXPECT_EQ((*server)->stats().sent, 1u);
  EXPECT_EQ((*client)->stats().sent, 1u);
  EXPECT_EQ((*client)->stats().received, 1u);
}

TEST(EndpointInprocTest, MalformedGetsErrorAndServerKeepsServing) {
  Context ctx;
  ServerOptions so;
  so.endpoint = UniqueInproc("bad");
  auto server = Server::Bind(ctx, so).value();
  ClientOptions co;
  co.endpoint = so.endpoint;
  auto client = Client::Connect(ctx, co).value();

  auto good = EncodeFrames(Frame("cam1", 9));
  struct Case {
    std::vector<std::string> frames;
    ErrorCode code;
  };
  auto bad_sha = good;
  bad_sha[2][5] ^= 1;
  const std::vector<Case> cases = {
      {{"KDP1", good[1], good[2]}, ErrorCode::kBadProtocol},  // the previous protocol
      {{"KDP2"}, ErrorCode::kBadProtocol},
      {std::vector<std::string>(50, "KDP2"), ErrorCode::kBadProtocol},
      {{"KDP2", "\xFF\xFF\xFF", ""}, ErrorCode::kBadHeader},
      {bad_sha, ErrorCode::kBadPayload},
  };
  uint64_t expected_malformed = 0;
  for (const Case& c : cases) {
    ASSERT_TRUE(client->TEST_SendRaw(c.frames).ok());
    auto none = server->Receive(milliseconds(100));
    ASSERT_TRUE(none.ok());
    EXPECT_FALSE(none->has_value());
    EXPECT_EQ(server->stats().malformed, ++expected_malformed);
    auto reply = ClientGet(*client);
    ASSERT_TRUE(reply.has_value());
    EXPECT_EQ(reply->header.type, MsgType::kError);
    EXPECT_EQ(reply->header.error_code, c.code) << ErrorCodeName(reply->header.error_code);
    EXPECT_FALSE(reply->header.error_text.empty());
  }
  // Still serving:
  ASSERT_TRUE(client->Send(Frame("cam1", 10)).ok());
  auto in = ServerGet(*server);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->message.header.seq, 10u);
}

TEST(EndpointInprocTest, ErrorReplyEchoesSeq) {
  Context ctx;
  ServerOptions so;
  so.endpoint = UniqueInproc("echo");
  auto server = Server::Bind(ctx, so).value();
  ClientOptions co;
  co.endpoint = so.endpoint;
  auto client = Client::Connect(ctx, co).value();
  Message m = Frame("cam7", 31);
  m.payload = "not a jpeg";
  ASSERT_TRUE(client->Send(m).ok());
  EXPECT_FALSE(server->Receive(milliseconds(100)).value().has_value());
  auto reply = ClientGet(*client);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->header.error_code, ErrorCode::kBadPayload);
  EXPECT_EQ(reply->header.device_id, "cam7");
  EXPECT_EQ(reply->header.seq, 31u);
}

TEST(EndpointInprocTest, SendToUnknownPeerIsUnavailable) {
  Context ctx;
  ServerOptions so;
  so.endpoint = UniqueInproc("peer");
  auto server = Server::Bind(ctx, so).value();
  Status s = server->Send("no-such-peer", Hello("cam1"));
  EXPECT_EQ(s.code(), Status::Code::kUnavailable) << s.ToString();
  EXPECT_EQ(server->stats().send_failed, 1u);
}

TEST(EndpointInprocTest, OversizeRefusedBeforeSending) {
  Context ctx;
  ServerOptions so;
  so.endpoint = UniqueInproc("big");
  auto server = Server::Bind(ctx, so).value();
  ClientOptions co;
  co.endpoint = so.endpoint;
  auto client = Client::Connect(ctx, co).value();
  Message big = Frame("cam1", 1);
  big.payload = FakeJpeg((size_t{8} << 20) + 1);
  Status s = client->Send(big);
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  Message long_header = Hello("cam1");
  long_header.header.error_text = std::string(5000, 'e');
  EXPECT_TRUE(client->Send(long_header).IsInvalidArgument());
  EXPECT_EQ(client->stats().send_failed, 2u);
  EXPECT_EQ(client->stats().sent, 0u);
  // The connection is intact.
  ASSERT_TRUE(client->Send(Frame("cam1", 2)).ok());
  auto in = ServerGet(*server);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->message.header.seq, 2u);
}

TEST(EndpointTest, ShutdownUnblocksReceive) {
  Context ctx;
  auto auth = Authenticator::Start(ctx).value();  // its thread must stop too
  ServerOptions so;
  so.endpoint = UniqueInproc("shut");
  auto server = Server::Bind(ctx, so).value();
  ClientOptions co;
  co.endpoint = so.endpoint;
  auto client = Client::Connect(ctx, co).value();
  Status server_status, client_status;
  double server_secs = 0, client_secs = 0;
  std::thread t1([&] {
    Stopwatch sw;
    server_status = server->Receive(milliseconds(10000)).status();
    server_secs = sw.ElapsedSeconds();
  });
  std::thread t2([&] {
    Stopwatch sw;
    client_status = client->Receive(milliseconds(10000)).status();
    client_secs = sw.ElapsedSeconds();
  });
  std::this_thread::sleep_for(milliseconds(100));
  ctx.Shutdown();
  t1.join();
  t2.join();
  EXPECT_EQ(server_status.code(), Status::Code::kUnavailable) << server_status.ToString();
  EXPECT_EQ(client_status.code(), Status::Code::kUnavailable) << client_status.ToString();
  EXPECT_LT(server_secs, 1.0);
  EXPECT_LT(client_secs, 1.0);
  EXPECT_EQ(server->Send("x", Hello("cam1")).code(), Status::Code::kUnavailable);
  EXPECT_EQ(client->Send(Hello("cam1")).code(), Status::Code::kUnavailable);
  // Sockets go before the context (the destructors run in reverse order of declaration).
}

class CurveTest : public testing::Test {
 protected:
  void SetUp() override {
    auto auth = Authenticator::Start(ctx_);
    ASSERT_TRUE(auth.ok()) << auth.status().ToString();
    auth_ = std::move(auth).value();
    server_keys_ = GenerateCurveKeyPair().value();
    cam1_keys_ = GenerateCurveKeyPair().value();
    ASSERT_TRUE(auth_->Allow(cam1_keys_.public_key, "cam-1").ok());
    ServerOptions so;
    so.endpoint = "tcp://127.0.0.1:*";
    so.curve = server_keys_;
    so.authenticator = auth_.get();
    auto server = Server::Bind(ctx_, so);
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = std::move(server).value();
    ASSERT_EQ(server_->bound_endpoint().rfind("tcp://127.0.0.1:", 0), 0u) << server_->bound_endpoint();
  }
  void TearDown() override {
    clients_.clear();
    server_.reset();
    auth_.reset();
  }
  Client& NewClient(const CurveKeyPair& keys) {
    ClientOptions co;
    co.endpoint = server_->bound_endpoint();
    co.curve = keys;
    co.server_public_key = server_keys_.public_key;
    auto c = Client::Connect(ctx_, co);
    KD_CHECK_MSG(c.ok(), c.status().ToString());
    clients_.push_back(std::move(c).value());
    return *clients_.back();
  }

  Context ctx_;
  std::unique_ptr<Authenticator> auth_;
  std::unique_ptr<Server> server_;
  std::vector<std::unique_ptr<Client>> clients_;
  CurveKeyPair server_keys_, cam1_keys_;
};

TEST_F(CurveTest, AllowedClientArrivesWithUserId) {
  Client& client = NewClient(cam1_keys_);
  ASSERT_TRUE(WaitConnected(client));
  ASSERT_TRUE(client.Send(Frame("cam-1", 1)).ok());
  auto in = ServerGet(*server_);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->user_id, "cam-1");
  EXPECT_EQ(in->message.header.device_id, "cam-1");
  EXPECT_GE(auth_->allowed(), 1u);
  EXPECT_EQ(auth_->denied(), 0u);
  Message credit;
  credit.header.type = MsgType::kCredit;
  credit.header.device_id = "cam-1";
  credit.header.credits = 4;
  ASSERT_TRUE(server_->Send(in->peer, credit).ok());
  auto reply = ClientGet(client);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->header.credits, 4u);

  // Reconnect drops the socket and handshakes again.
  ASSERT_TRUE(client.Reconnect().ok());
  ASSERT_TRUE(WaitConnected(client));
  EXPECT_EQ(client.stats().reconnects, 1u);
  ASSERT_TRUE(client.Send(Hello("cam-1", 2)).ok());
  in = ServerGet(*server_);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->message.header.seq, 2u);
}

TEST_F(CurveTest, UnknownKeyIsRefused) {
  Client& stranger = NewClient(GenerateCurveKeyPair().value());
  EXPECT_FALSE(WaitConnected(stranger, milliseconds(300)));
  EXPECT_EQ(stranger.Send(Hello("cam-1")).code(), Status::Code::kUnavailable);
  auto none = server_->Receive(milliseconds(1000));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_GT(auth_->denied(), 0u);
  EXPECT_GT(stranger.stats().handshake_failures, 0u);
}

TEST_F(CurveTest, SpoofedDeviceIdIsRejected) {
  Client& client = NewClient(cam1_keys_);
  ASSERT_TRUE(WaitConnected(client));
  ASSERT_TRUE(client.Send(Frame("cam-2", 1)).ok());
  auto none = server_->Receive(milliseconds(300));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(server_->stats().wrong_device, 1u);
  auto reply = ClientGet(client);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->header.type, MsgType::kError);
  EXPECT_EQ(reply->header.error_code, ErrorCode::kWrongDevice);
  EXPECT_EQ(reply->header.device_id, "cam-1");
}

TEST_F(CurveTest, RevokedDevice) {
  Client& client = NewClient(cam1_keys_);
  ASSERT_TRUE(WaitConnected(client));
  ASSERT_TRUE(client.Send(Hello("cam-1")).ok());
  ASSERT_TRUE(ServerGet(*server_).has_value());
  auth_->Revoke("cam-1");
  EXPECT_FALSE(auth_->IsAllowed("cam-1"));
  // The existing connection stays, but its messages are refused.
  ASSERT_TRUE(client.Send(Hello("cam-1", 2)).ok());
  auto none = server_->Receive(milliseconds(300));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  EXPECT_EQ(server_->stats().not_enrolled, 1u);
  auto reply = ClientGet(client);
  ASSERT_TRUE(reply.has_value());
  EXPECT_EQ(reply->header.error_code, ErrorCode::kNotEnrolled);
  // New handshakes with the key are refused.
  const uint64_t denied_before = auth_->denied();
  Client& again = NewClient(cam1_keys_);
  EXPECT_FALSE(WaitConnected(again, milliseconds(300)));
  EXPECT_GT(auth_->denied(), denied_before);
}

TEST_F(CurveTest, AllowingANewKeyReplacesTheOldOne) {
  const CurveKeyPair rotated = GenerateCurveKeyPair().value();
  ASSERT_TRUE(auth_->Allow(rotated.public_key, "cam-1").ok());
  EXPECT_TRUE(auth_->IsAllowed("cam-1"));
  Client& old_key = NewClient(cam1_keys_);
  Client& new_key = NewClient(rotated);
  ASSERT_TRUE(WaitConnected(new_key));
  EXPECT_FALSE(WaitConnected(old_key, milliseconds(200)));
  ASSERT_TRUE(new_key.Send(Hello("cam-1")).ok());
  auto in = ServerGet(*server_);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->user_id, "cam-1");
}

TEST_F(CurveTest, OversizeRefusedAndUnknownPeer) {
  Client& client = NewClient(cam1_keys_);
  ASSERT_TRUE(WaitConnected(client));
  Message big = Frame("cam-1", 1);
  big.payload = FakeJpeg((size_t{8} << 20) + 1);
  EXPECT_TRUE(client.Send(big).IsInvalidArgument());
  ASSERT_TRUE(client.Send(Frame("cam-1", 2)).ok());
  auto in = ServerGet(*server_);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->message.header.seq, 2u);
  EXPECT_EQ(server_->Send("ghost", Hello("cam-1")).code(), Status::Code::kUnavailable);
}

TEST(EndpointTest, CurveServerNeedsAuthenticator) {
  Context ctx;
  ServerOptions so;
  so.endpoint = "tcp://127.0.0.1:*";
  so.curve = GenerateCurveKeyPair().value();
  auto server = Server::Bind(ctx, so);
  EXPECT_EQ(server.status().code(), Status::Code::kFailedPrecondition) << server.status().ToString();
  auto auth = Authenticator::Start(ctx);
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(Authenticator::Start(ctx).status().code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(Server::Bind(ctx, so).ok());
  EXPECT_TRUE((*auth)->Allow("not a key", "cam1").IsInvalidArgument());
  EXPECT_TRUE((*auth)->Allow(so.curve->public_key, "bad id").IsInvalidArgument());
}

TEST(EndpointTest, BadOptions) {
  Context ctx;
  EXPECT_TRUE(Server::Bind(ctx, ServerOptions{}).status().IsInvalidArgument());
  EXPECT_TRUE(Client::Connect(ctx, ClientOptions{}).status().IsInvalidArgument());
  ClientOptions co;
  co.endpoint = "tcp://127.0.0.1:1";
  co.curve = GenerateCurveKeyPair().value();
  co.server_public_key = "nope";
  EXPECT_TRUE(Client::Connect(ctx, co).status().IsInvalidArgument());
  ServerOptions so;
  so.endpoint = "bogus://x";
  EXPECT_FALSE(Server::Bind(ctx, so).ok());
  EXPECT_TRUE(AdminServer::Bind(ctx, "tcp://127.0.0.1:5").status().IsInvalidArgument());
}

TEST(AdminTest, RoundTripOverIpc) {
  char tmpl[] = "/tmp/kd_wire_admin_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string endpoint = "ipc://" + dir + "/admin.sock";
  {
    Context ctx;
    auto admin = AdminServer::Bind(ctx, endpoint);
    ASSERT_TRUE(admin.ok()) << admin.status().ToString();
    struct stat st {};
    ASSERT_EQ(::stat((dir + "/admin.sock").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    std::atomic<int> served{0};
    std::thread server([&] {
      for (int i = 0; i < 2; ++i) {
        auto r =
            (*admin)->ServeOne(milliseconds(3000), [](const std::string& req) { return "{\"echo\":" + req + "}"; });
        if (r.ok() && *r) ++served;
      }
    });
    auto reply = AdminCall(endpoint, R"({"cmd":"status"})", milliseconds(3000));
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    EXPECT_EQ(*reply, R"({"echo":{"cmd":"status"}})");
    reply = AdminCall(endpoint, "2", milliseconds(3000));
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    EXPECT_EQ(*reply, R"({"echo":2})");
    server.join();
    EXPECT_EQ(served.load(), 2);
    // Nobody serving: the call times out.
    Stopwatch sw;
    EXPECT_EQ(AdminCall(endpoint, "{}", milliseconds(200)).status().code(), Status::Code::kUnavailable);
    EXPECT_LT(sw.ElapsedSeconds(), 2.0);
    // The abandoned request may still be queued: serving it (to nobody) must not fail.
    EXPECT_TRUE((*admin)->ServeOne(milliseconds(10), [](const std::string&) { return std::string("{}"); }).ok());
  }
  EXPECT_EQ(AdminCall("ipc://" + dir + "/missing.sock", "{}", milliseconds(200)).status().code(),
            Status::Code::kUnavailable);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace kd::wire
