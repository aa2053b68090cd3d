// SystemdNotifier: the daemons' side of systemd's notification protocol (sd_notify(3)), written by
// hand so that no libsystemd is needed: each message is one datagram of newline-separated KEY=VALUE
// lines sent to the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or an abstract name written with
// a leading '@'). Without $NOTIFY_SOCKET (not started by systemd with Type=notify) every call is a
// no-op that returns OK. A plain value read from the environment once; it owns no descriptor (each
// call opens and closes its own socket), so its const methods may be called from any thread.
#ifndef KD_DAEMON_COMMON_SD_NOTIFY_H_
#define KD_DAEMON_COMMON_SD_NOTIFY_H_

#include <chrono>
#include <string>
#include <string_view>

#include "base/status.h"

namespace kd::daemon {

class SystemdNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID. The watchdog is on when WATCHDOG_USEC is a
  // positive number of microseconds and WATCHDOG_PID is unset or names this process (it is set for
  // the main process only; a child that inherited the variables must not ping for its parent).
  // The variables are left in the environment (unsetenv is not safe once threads run); a re-exec
  // keeps the pid, so it keeps the watchdog.
  static SystemdNotifier FromEnvironment();

  // A notifier that sends nothing (enabled() is false).
  SystemdNotifier() = default;
  // A notifier for `socket_address` ("/path" or "@abstract"; "" = disabled) with a watchdog
  // timeout (0 = no watchdog). FromEnvironment() is the way in for daemons; this one is for tests.
  SystemdNotifier(std::string socket_address, std::chrono::microseconds watchdog_timeout);

  // True when there is a socket to notify: the daemon runs under systemd with Type=notify.
  bool enabled() const { return !socket_address_.empty(); }
  // The socket as $NOTIFY_SOCKET spelled it ("" when disabled).
  const std::string& socket_address() const { return socket_address_; }
  // systemd's watchdog timeout (WATCHDOG_USEC), or 0 when there is no watchdog or no socket.
  std::chrono::microseconds watchdog_timeout() const { return watchdog_timeout_; }
  // How often to send Watchdog(): half the timeout, as sd_watchdog_enabled(3) recommends (0 = never).
  std::chrono::microseconds watchdog_interval() const { return watchdog_timeout_ / 2; }

  // Sends `state`, one or more KEY=VALUE lines separated by '\n' (e.g. "READY=1\nSTATUS=serving").
  // OK without sending when disabled. InvalidArgument for an empty state or an address that is
  // neither a path nor '@'-abstract or is too long; IOError when the socket refuses (no such file,
  // nobody listening, permission). Never raises SIGPIPE.
  Status Notify(std::string_view state) const;

  // "READY=1": start-up is complete (store, sockets, models up); systemd's start job finishes.
  Status Ready() const { return Notify("READY=1"); }
  // "STOPPING=1": a stop began (SIGTERM received); send it before draining.
  Status Stopping() const { return Notify("STOPPING=1"); }
  // "WATCHDOG=1": the daemon is alive. Send every watchdog_interval() while, and only while, its
  // own loops are beating: a missed ping past watchdog_timeout() makes systemd kill and restart it.
  Status Watchdog() const { return Notify("WATCHDOG=1"); }
  // "STATUS=<text>": a one-line state shown by `systemctl status` (newlines become spaces).
  Status SetStatus(std::string_view text) const;
  // "EXTEND_TIMEOUT_USEC=<us>": asks for `extension` more time in a slow start or stop (e.g. a long
  // drain), counted from now, beyond TimeoutStartSec/TimeoutStopSec.
  Status ExtendTimeout(std::chrono::microseconds extension) const;

 private:
  std::string socket_address_;
  std::chrono::microseconds watchdog_timeout_{0};
};

}  // namespace kd::daemon

#endif  // KD_DAEMON_COMMON_SD_NOTIFY_H_
