// Scheduling priority of the calling thread. The learner runs latency-bound stages (ingest acks,
// control replies) beside throughput-bound ones (the teacher, training) on the same cores; the
// latter run in the background so a camera's ack never waits behind a teacher batch (RESULTS.md,
// ingest). Two strengths: a nice value (a smaller share of a contended core), or Linux's SCHED_IDLE
// policy (a core only when no normal thread wants it; a waking normal thread preempts at once,
// which a nice value does not promise: an ack passes through several thread hand-offs, and each
// one waited behind a niced teacher; but a LibTorch thread team under SCHED_IDLE stalls whenever
// any other thread wakes, and the live loop learned half as fast: RESULTS.md, seventeenth stop).
// Linux keeps both per thread and a new thread inherits its creator's, so the LibTorch (OpenMP)
// workers a background thread starts are background too.
#ifndef KD_BASE_THREAD_PRIORITY_H_
#define KD_BASE_THREAD_PRIORITY_H_

#include "base/status.h"

namespace kd {

// Sets the calling thread's nice value to `nice` (0 = normal .. 19 = lowest). Raising it needs no
// privilege; lowering it below the current value needs CAP_SYS_NICE and fails with
// PermissionDenied without it. Errors: InvalidArgument outside 0..19.
Status SetCurrentThreadNice(int nice);

// The calling thread's nice value.
int CurrentThreadNice();

// Moves the calling thread to SCHED_IDLE. Needs no privilege (leaving it again does, unless
// RLIMIT_NICE allows). Errors: PermissionDenied, Internal.
Status SetCurrentThreadIdle();

// Whether the calling thread is under SCHED_IDLE.
bool CurrentThreadIsIdle();

}  // namespace kd

#endif  // KD_BASE_THREAD_PRIORITY_H_
