#include "base/thread_name.h"

#include <pthread.h>

namespace kd {

// TASK_COMM_LEN is 16 bytes with the terminating NUL; pthread_setname_np refuses longer names.
constexpr size_t kMaxNameBytes = 15;

void SetCurrentThreadName(std::string_view name) {
  const std::string cut(name.substr(0, kMaxNameBytes));
  (void)::pthread_setname_np(::pthread_self(), cut.c_str());
}

std::string CurrentThreadName() {
  char buf[kMaxNameBytes + 1] = {};
  if (::pthread_getname_np(::pthread_self(), buf, sizeof buf) != 0) return "";
  return buf;
}

}  // namespace kd
