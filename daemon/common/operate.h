// The part of a daemon's life that faces its operators, shared by `kdlearnd serve` and `kdedge
// run`: the management HTTP server ([http] listen: /metrics, /livez, /readyz, /api/v1/status, the
// web page), the systemd notifications (READY=1 once started, WATCHDOG=1 only while the liveness
// checks pass, STOPPING=1 when a signal arrives) and the wait for SIGTERM/SIGINT.
//
// Threading: call RunOperated from the main thread after the engine has started (termination
// signals blocked, daemon/common/signals.h); the HTTP server answers on its own threads, so the
// engine's callbacks must be thread-safe. The server is stopped before RunOperated returns, so the
// engine may be drained right after.
#ifndef KD_DAEMON_COMMON_OPERATE_H_
#define KD_DAEMON_COMMON_OPERATE_H_

#include <functional>
#include <string>

#include "ops/http_server.h"

namespace kd::daemon {

struct Operated {
  ops::HttpOptions http;       // http.listen "" = no HTTP server
  ops::HttpHandlers handlers;  // daemon name, metrics, live, ready, status, routes, assets
  // Polled every 200 ms: true ends the wait as a signal would (a finite source has ended).
  std::function<bool()> finished;
};

// Starts the HTTP server, notifies systemd and waits. Returns the signal that ended the wait (0 when
// `finished`), or -1 when the HTTP server could not start (logged; the caller exits non-zero).
int RunOperated(Operated operated);

}  // namespace kd::daemon

#endif  // KD_DAEMON_COMMON_OPERATE_H_
