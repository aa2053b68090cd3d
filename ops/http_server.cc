#include "ops/http_server.h"

#include <chrono>
#include <httplib.h>
#include <thread>

#include <sys/socket.h>

#include "base/host_port.h"
#include "base/log.h"
#include "base/thread_name.h"

namespace kd::ops {

namespace {
constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kTextContentType = "text/plain; charset=utf-8";
}  // namespace

struct HttpServer::Impl {
  HttpHandlers handlers;
  httplib::Server server;
  std::string bound;
  std::thread thread;
  bool stopped = false;

  void Routes();
  void Health(const httplib::Request& req, httplib::Response& res, const std::function<HealthReport()>& fn);
};

void HttpServer::Impl::Health(const httplib::Request& req, httplib::Response& res,
                              const std::function<HealthReport()>& fn) {
  const HealthReport report = fn ? fn() : HealthReport{};
  res.status = report.ok() ? 200 : 503;
  res.set_header("Cache-Control", "no-store");
  res.set_content(report.Text(req.has_param("verbose")), kTextContentType);
}

void HttpServer::Impl::Routes() {
  server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    std::vector<MetricFamily> families{BuildInfo(handlers.daemon)};
    if (handlers.metrics) {
      auto more = handlers.metrics();
      families.insert(families.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
    }
    res.set_content(RenderPrometheus(families), kMetricsContentType);
  });
  server.Get("/livez",
             [this](const httplib::Request& req, httplib::Response& res) { Health(req, res, handlers.live); });
  server.Get("/readyz",
             [this](const httplib::Request& req, httplib::Response& res) { Health(req, res, handlers.ready); });
  server.Get("/api/v1/status", [this](const httplib::Request&, httplib::Response& res) {
    res.set_header("Cache-Control", "no-store");
    res.set_content(handlers.status_json ? handlers.status_json() : "{}", "application/json");
  });
  for (const auto& [path, fn] : handlers.routes) {
    server.Get(path, [&fn = fn](const httplib::Request& req, httplib::Response& res) {
      std::map<std::string, std::string> params;
      for (const auto& [k, v] : req.params) params.emplace(k, v);
      HttpReply reply = fn(params);
      res.status = reply.status;
      res.set_header("Cache-Control", "no-store");
      res.set_content(std::move(reply.body), reply.content_type);
    });
  }
  // Everything else: an embedded file, or 404.
  server.Get(".*", [this](const httplib::Request& req, httplib::Response& res) {
    const std::string path = req.path == "/" ? "/index.html" : req.path;
    for (const WebAsset& a : handlers.assets) {
      if (a.path != path) continue;
      res.set_header("ETag", std::string(a.etag));
      res.set_header("Cache-Control", "no-cache");
      if (req.get_header_value("If-None-Match") == a.etag) {
        res.status = 304;
        return;
      }
      res.set_content(std::string(a.bytes), std::string(a.content_type));
      return;
    }
    res.status = 404;
    res.set_content("not found\n", kTextContentType);
  });
  server.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    KD_LOG(kWarn) << "http " << req.path << ": " << what;
    res.status = 500;
    res.set_content("internal error\n", kTextContentType);
  });
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpOptions& options, HttpHandlers handlers) {
  std::string host;
  int port = 0;
  KD_RETURN_IF_ERROR(ParseHostPort(options.listen, &host, &port).WithContext("http listen"));
  auto impl = std::make_unique<Impl>();
  impl->handlers = std::move(handlers);
  const int threads = std::max(1, options.threads);
  impl->server.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  // Management traffic is small: bound the time a slow client holds a thread, and the body size.
  impl->server.set_read_timeout(5, 0);
  impl->server.set_write_timeout(5, 0);
  impl->server.set_keep_alive_timeout(5);
  impl->server.set_payload_max_length(64 * 1024);
  // httplib's default also sets SO_REUSEPORT, which lets a second daemon bind the same port and
  // silently take half the scrapes: only SO_REUSEADDR (a quick restart after a stop).
  impl->server.set_socket_options([](int sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  impl->Routes();
  if (port == 0) {
    port = impl->server.bind_to_any_port(host);
    if (port < 0) return Status::IOError("http: cannot bind " + options.listen);
  } else if (!impl->server.bind_to_port(host, port)) {
    return Status::IOError("http: cannot bind " + options.listen + " (in use, or not an address of this machine)");
  }
  impl->bound = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(port);
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] {
    SetCurrentThreadName("kd-http");
    raw->server.listen_after_bind();
  });
  // A stop() before the accept loop has started is lost (the loop then runs for ever): return only
  // once it runs.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!impl->server.is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { Stop(); }

std::string HttpServer::bound() const { return impl_->bound; }

void HttpServer::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace kd::ops
