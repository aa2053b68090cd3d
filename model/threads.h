// Compute threads for LibTorch and the BLAS under it. Debian's LibTorch defaults to one intra-op
// thread here, and OpenBLAS (pthreads build) runs its own pool sized to the machine, so the two
// oversubscribe the cores unless both are set together. Call once at start-up, before inference.
#ifndef KD_MODEL_THREADS_H_
#define KD_MODEL_THREADS_H_

namespace kd::model {

// Sets LibTorch's intra-op threads and, when the loaded libblas.so.3 is OpenBLAS, its threads.
// REQUIRES: threads >= 1. Not thread-safe (process-wide settings).
void SetComputeThreads(int threads);

// The OpenMP team size of LibTorch (and oneDNN) work started by the calling thread only: libgomp
// keeps the thread count per thread, and LibTorch gives a new thread SetComputeThreads' value
// lazily, on its first parallel op. This does that first, then sets `threads` for this thread,
// so a stage (the learner's labeller) can run a team of its own size beside another stage's.
// OpenBLAS's pool stays process-wide. REQUIRES: threads >= 1.
void SetThisThreadsComputeThreads(int threads);

// Two settings that libgomp and glibc read only when the program is loaded (before main), so when
// they are unset this sets them and re-executes the program (execv of /proc/self/exe with the same
// argv; the new process finds them set and returns at once):
// - OMP_WAIT_POLICY=PASSIVE: LibTorch's OpenMP threads sleep instead of spin between parallel
//   regions. Spinning threads on a core that another process uses, with two of LibTorch's thread
//   teams in one process (the learner labels and trains at once), made the teacher 13x slower here
//   (kdlearnd label, 20 frames, 2 threads, beside a compiler: 50.8 s spinning, 3.98 s passive).
// - GLIBC_TUNABLES=glibc.malloc.hugetlb=1: malloc asks for transparent huge pages (madvise) on the
//   heap. The teacher's activations came as fresh 4-KB pages, half of the labeller's time in page
//   faults in the live learner; with it the learner labelled 1.00 / 1.37 frames/s against 0.57 /
//   0.53 (bench_loop --label-seconds 60) and `kdlearnd label` took 17,000 faults instead of 500,000.
// An explicit OMP_WAIT_POLICY or GLIBC_TUNABLES is respected (RESULTS.md, seventeenth stop). Call
// first in main(), before any thread exists. Returns only in the process that goes on (if the exec
// fails, with the defaults and a warning), named after argv[0] (the exec would leave it "exe").
void ReexecWithRuntimeSettings(char** argv);

// Keeps freed tensor memory in the process instead of returning it to the OS on every free.
// glibc serves blocks over 128 KiB (most activations) with mmap/munmap by default, so each
// forward pays page faults on fresh pages: measured here, the teacher went from 78 to 56 ms per
// frame at 1 thread (48 -> 30 ms at 2) with this. Raises the mmap threshold to 64 MiB and the
// trim threshold to 256 MiB. Call once at start-up. Not thread-safe (process-wide setting).
void TuneAllocatorForTensors();

}  // namespace kd::model

#endif  // KD_MODEL_THREADS_H_
