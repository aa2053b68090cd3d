#include "base/thread_priority.h"

#include <cerrno>
#include <cstring>
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

}  // namespace kd
