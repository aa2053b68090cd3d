// Compute threads for LibTorch and the BLAS under it. Debian's LibTorch defaults to one intra-op
// thread here, and OpenBLAS (pthreads build) runs its own pool sized to the machine, so the two
// oversubscribe the cores unless both are set together. Call once at start-up, before inference.
#ifndef KD_MODEL_THREADS_H_
#define KD_MODEL_THREADS_H_

namespace kd::model {

// Sets LibTorch's intra-op threads and, when the loaded libblas.so.3 is OpenBLAS, its threads.
// REQUIRES: threads >= 1. Not thread-safe (process-wide settings).
void SetComputeThreads(int threads);

// Keeps freed tensor memory in the process instead of returning it to the OS on every free.
// glibc serves blocks over 128 KiB (most activations) with mmap/munmap by default, so each
// forward pays page faults on fresh pages: measured here, the teacher went from 78 to 56 ms per
// frame at 1 thread (48 -> 30 ms at 2) with this. Raises the mmap threshold to 64 MiB and the
// trim threshold to 256 MiB. Call once at start-up. Not thread-safe (process-wide setting).
void TuneAllocatorForTensors();

}  // namespace kd::model

#endif  // KD_MODEL_THREADS_H_
