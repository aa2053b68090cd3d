// Scheduling priority of the calling thread. The learner runs latency-bound stages (ingest acks,
// control replies) beside throughput-bound ones (the teacher, training) on the same cores; the
// latter run niced so a camera's ack never waits behind a teacher batch (RESULTS.md, ingest).
// Linux keeps a nice value per thread and a new thread inherits its creator's, so the LibTorch
// (OpenMP) workers a niced thread starts are niced too.
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

}  // namespace kd

#endif  // KD_BASE_THREAD_PRIORITY_H_
