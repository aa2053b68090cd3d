#include "daemon/common/operate.h"

#include <chrono>

#include "base/host_port.h"
#include "base/log.h"
#include "daemon/common/sd_notify.h"
#include "daemon/common/signals.h"

namespace kd::daemon {

namespace {
constexpr int kPollMs = 200;
}  // namespace

int RunOperated(Operated operated) {
  std::unique_ptr<ops::HttpServer> http;
  const std::string daemon = operated.handlers.daemon;
  if (!operated.http.listen.empty()) {
    auto started = ops::HttpServer::Start(operated.http, operated.handlers);
    if (!started.ok()) {
      KD_LOG(kError) << started.status().ToString();
      return -1;
    }
    http = std::move(started).value();
    std::string host;
    int port = 0;
    if (ParseHostPort(http->bound(), &host, &port).ok() && !IsLoopbackHost(host)) {
      KD_LOG(kWarn) << daemon << ": the HTTP server listens on " << http->bound()
                    << " beyond loopback, with no authentication: keep that network private";
    }
    KD_LOG(kInfo) << daemon << ": http://" << http->bound() << "/ (metrics /metrics, health /livez /readyz)";
  }

  const SystemdNotifier notifier = SystemdNotifier::FromEnvironment();
  if (Status st = notifier.Ready(); !st.ok()) {
    KD_LOG(kWarn) << "sd_notify READY: " << st.ToString();
  }
  const auto ping_every = notifier.watchdog_interval();
  auto last_ping = std::chrono::steady_clock::now();
  bool reported_dead = false;

  int sig = 0;
  while (sig == 0) {
    if (operated.finished && operated.finished()) break;
    sig = WaitForTerminationSignal(kPollMs);
    if (sig != 0 || ping_every.count() <= 0) continue;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ping < ping_every) continue;
    last_ping = now;
    // The watchdog is fed only while every loop beats: a stuck engine is restarted by systemd.
    const ops::HealthReport live = operated.handlers.live ? operated.handlers.live() : ops::HealthReport{};
    if (live.ok()) {
      (void)notifier.Watchdog();
      reported_dead = false;
    } else if (!reported_dead) {
      KD_LOG(kError) << daemon << ": liveness failed, not feeding the watchdog:\n" << live.Text(true);
      reported_dead = true;
    }
  }
  (void)notifier.Stopping();
  if (http) http->Stop();
  return sig;
}

}  // namespace kd::daemon
