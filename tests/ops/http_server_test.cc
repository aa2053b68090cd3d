#include "ops/http_server.h"

#include <httplib.h>

#include <gtest/gtest.h>

#include "base/host_port.h"

namespace kd::ops {
namespace {

constexpr WebAsset kAssets[] = {
    {"/index.html", "text/html; charset=utf-8", "<html>dashboard</html>", "\"abc\""},
    {"/app.js", "application/javascript", "console.log(1)", "\"def\""},
};

HttpOptions Listen(const std::string& address) {
  HttpOptions o;
  o.listen = address;
  return o;
}

struct Served {
  bool live = true, ready = false;
  std::unique_ptr<HttpServer> server;
  std::unique_ptr<httplib::Client> client;

  Served() {
    HttpHandlers h;
    h.daemon = "kdtest";
    h.metrics = [] { return std::vector<MetricFamily>{Counter("kd_test_total", "A test counter.").Add({}, 7)}; };
    h.live = [this] { return HealthReport{}.Add("loop", live, live ? "" : "stuck"); };
    h.ready = [this] { return HealthReport{}.Add("teacher", ready, ready ? "loaded" : "not loaded"); };
    h.status_json = [] { return std::string(R"({"devices":{}})"); };
    h.routes["/api/v1/echo"] = [](const std::map<std::string, std::string>& p) {
      auto it = p.find("group");
      return HttpReply::Json(it == p.end() ? "none" : it->second);
    };
    h.routes["/missing"] = [](const std::map<std::string, std::string>&) {
      return HttpReply::Bytes("no frame yet", "text/plain", 404);
    };
    h.assets = kAssets;
    auto s = HttpServer::Start(Listen("127.0.0.1:0"), std::move(h));
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    server = std::move(s).value();
    std::string host;
    int port = 0;
    EXPECT_TRUE(ParseHostPort(server->bound(), &host, &port).ok());
    EXPECT_GT(port, 0);
    client = std::make_unique<httplib::Client>(host, port);
  }
};

TEST(HttpServerTest, MetricsCarryBuildInfoAndTheDaemonsFamilies) {
  Served s;
  auto r = s.client->Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r->body.find("kd_build_info{daemon=\"kdtest\""), std::string::npos) << r->body;
  EXPECT_NE(r->body.find("kd_test_total 7\n"), std::string::npos) << r->body;
}

TEST(HttpServerTest, HealthIsTheStatusCodeAndVerboseListsTheChecks) {
  Served s;
  auto live = s.client->Get("/livez");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  EXPECT_EQ(live->body, "ok\n");
  auto ready = s.client->Get("/readyz?verbose");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(ready->body, "[-]teacher failed: not loaded\nfailed\n");
  s.ready = true;
  s.live = false;
  EXPECT_EQ(s.client->Get("/readyz")->status, 200);
  EXPECT_EQ(s.client->Get("/livez")->status, 503);
}

TEST(HttpServerTest, StatusRoutesAndEmbeddedFiles) {
  Served s;
  auto status = s.client->Get("/api/v1/status");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->body, R"({"devices":{}})");
  EXPECT_EQ(status->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(s.client->Get("/api/v1/echo?group=lobby")->body, "lobby");
  EXPECT_EQ(s.client->Get("/api/v1/echo")->body, "none");
  EXPECT_EQ(s.client->Get("/missing")->status, 404);

  auto index = s.client->Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->body, "<html>dashboard</html>");
  EXPECT_EQ(index->get_header_value("ETag"), "\"abc\"");
  EXPECT_EQ(s.client->Get("/app.js")->get_header_value("Content-Type"), "application/javascript");
  // A browser that has the file gets 304 and no body.
  auto cached = s.client->Get("/app.js", {{"If-None-Match", "\"def\""}});
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->status, 304);
  EXPECT_EQ(s.client->Get("/nope.html")->status, 404);
}

TEST(HttpServerTest, BadAddressesAndAPortInUseAreErrors) {
  auto bad = HttpServer::Start(Listen("localhost"), {});
  EXPECT_TRUE(bad.status().IsInvalidArgument()) << bad.status().ToString();
  EXPECT_TRUE(HttpServer::Start(Listen("127.0.0.1:70000"), {}).status().IsInvalidArgument());
  Served s;
  auto clash = HttpServer::Start(Listen(s.server->bound()), {});
  EXPECT_FALSE(clash.ok());
  EXPECT_EQ(clash.status().code(), Status::Code::kIOError) << clash.status().ToString();
}

TEST(HttpServerTest, StopIsIdempotentAndRefusesLaterRequests) {
  Served s;
  ASSERT_TRUE(s.client->Get("/livez"));
  s.server->Stop();
  s.server->Stop();
  s.client->set_connection_timeout(1, 0);
  EXPECT_FALSE(s.client->Get("/livez"));
}

}  // namespace
}  // namespace kd::ops
