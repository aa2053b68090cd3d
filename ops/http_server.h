// HttpServer: a daemon's one management HTTP endpoint (cpp-httplib): /metrics (Prometheus),
// /livez and /readyz (ops/health.h), /api/v1/status (the JSON of `kdctl status --json` or the
// edge's status), extra JSON or binary routes, and the embedded web pages (ops/web_assets.h).
// Bound to loopback unless configured otherwise: there is no authentication on it.
//
// Ownership: the daemon owns the server; the handlers it is given must stay valid until Stop().
// Threading: Start() returns once bound; requests run on a small pool of the server's own threads
// (HttpOptions::threads), so handlers must be thread-safe and quick (copy a snapshot, render).
#ifndef KD_OPS_HTTP_SERVER_H_
#define KD_OPS_HTTP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"

#include "ops/health.h"
#include "ops/metrics.h"
#include "ops/web_assets.h"

namespace kd::ops {

struct HttpOptions {
  std::string listen;  // "host:port" (port 0: any free port); an empty value means no server
  int threads = 2;     // request threads
};

struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;

  static HttpReply Json(std::string body, int status = 200) { return {status, "application/json", std::move(body)}; }
  static HttpReply Bytes(std::string body, std::string content_type, int status = 200) {
    return {status, std::move(content_type), std::move(body)};
  }
};

struct HttpHandlers {
  std::string daemon;  // "kdlearnd" / "kdedge": kd_build_info and the page title
  std::function<std::vector<MetricFamily>()> metrics;
  std::function<HealthReport()> live;
  std::function<HealthReport()> ready;
  std::function<std::string()> status_json;
  // GET routes by exact path ("/api/v1/series"); the query string is passed as parsed parameters.
  std::map<std::string, std::function<HttpReply(const std::map<std::string, std::string>& params)>> routes;
  // Embedded files served under "/" ("/" is "/index.html").
  std::span<const WebAsset> assets;
};

class HttpServer {
 public:
  // Binds `options.listen` and starts serving. Errors: a malformed address, a port in use.
  static Result<std::unique_ptr<HttpServer>> Start(const HttpOptions& options, HttpHandlers handlers);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // "host:port" actually bound (port 0 resolved).
  std::string bound() const;
  // Stops accepting, finishes requests in flight, joins the threads. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kd::ops

#endif  // KD_OPS_HTTP_SERVER_H_
