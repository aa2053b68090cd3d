#include "base/thread_priority.h"

#include <cerrno>
#include <cstring>
#include <sched.h>
#include <string>
#include <unistd.h>

#include <sys/resource.h>

namespace kd {

Status SetCurrentThreadNice(int nice) {
  if (nice < 0 || nice > 19) return Status::InvalidArgument("nice " + std::to_string(nice) + " is not in 0..19");
  // PRIO_PROCESS with a thread id addresses that one thread on Linux (not POSIX: there the whole
  // process would change).
  if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), nice) != 0) {
    const int err = errno;
    const std::string what = "setting the thread's nice value to " + std::to_string(nice) + ": " + std::strerror(err);
    return err == EACCES || err == EPERM ? Status::PermissionDenied(what) : Status::Internal(what);
  }
  return Status::Ok();
}

int CurrentThreadNice() {
  errno = 0;
  return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
}

Status SetCurrentThreadIdle() {
  const sched_param param{.sched_priority = 0};  // the only priority SCHED_IDLE takes
  // pid 0 is the calling thread (Linux schedules threads, not processes).
  if (::sched_setscheduler(0, SCHED_IDLE, &param) != 0) {
    const int err = errno;
    const std::string what = std::string("moving the thread to SCHED_IDLE: ") + std::strerror(err);
    return err == EACCES || err == EPERM ? Status::PermissionDenied(what) : Status::Internal(what);
  }
  return Status::Ok();
}

bool CurrentThreadIsIdle() { return ::sched_getscheduler(0) == SCHED_IDLE; }

}  // namespace kd
