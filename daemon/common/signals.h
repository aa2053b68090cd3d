// Termination signals for the daemons: SIGTERM/SIGINT are blocked in every thread (call
// BlockTerminationSignals() first thing in main, before any thread starts) and received
// synchronously by the main thread with WaitForTerminationSignal(), which then runs the ordered
// shutdown. No async signal handler touches program state.
#ifndef KD_DAEMON_COMMON_SIGNALS_H_
#define KD_DAEMON_COMMON_SIGNALS_H_

#include <csignal>
#include <ctime>

namespace kd::daemon {

inline sigset_t TerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

inline void BlockTerminationSignals() {
  sigset_t set = TerminationSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Waits up to timeout_ms (< 0: for ever) for SIGTERM or SIGINT; returns the signal, or 0 on timeout.
inline int WaitForTerminationSignal(int timeout_ms) {
  sigset_t set = TerminationSignals();
  if (timeout_ms < 0) {
    int sig = 0;
    return sigwait(&set, &sig) == 0 ? sig : 0;
  }
  timespec ts{timeout_ms / 1000, static_cast<long>(timeout_ms % 1000) * 1000000L};
  const int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

}  // namespace kd::daemon

#endif  // KD_DAEMON_COMMON_SIGNALS_H_
