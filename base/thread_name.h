// The name of the calling thread as the kernel shows it (`top -H`, `ps -L`, /proc/PID/task/TID/comm,
// perf, gdb), so an operator can tell the learner's ingest thread from its labeller without a
// debugger. Each stage names its own thread when it starts.
#ifndef KD_BASE_THREAD_NAME_H_
#define KD_BASE_THREAD_NAME_H_

#include <string>
#include <string_view>

namespace kd {

// Names the calling thread `name`, cut to the kernel's 15 bytes. Best effort: a failure leaves the
// inherited name (names are for people, nothing depends on them).
void SetCurrentThreadName(std::string_view name);

// The calling thread's name ("" when it cannot be read).
std::string CurrentThreadName();

}  // namespace kd

#endif  // KD_BASE_THREAD_NAME_H_
