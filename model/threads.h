// Compute threads for LibTorch and the BLAS under it. Debian's LibTorch defaults to one intra-op
// thread here, and OpenBLAS (pthreads build) runs its own pool sized to the machine, so the two
// oversubscribe the cores unless both are set together. Call once at start-up, before inference.
#ifndef KD_MODEL_THREADS_H_
#define KD_MODEL_THREADS_H_

namespace kd::model {

// Sets LibTorch's intra-op threads and, when the loaded libblas.so.3 is OpenBLAS, its threads.
// REQUIRES: threads >= 1. Not thread-safe (process-wide settings).
void SetComputeThreads(int threads);

}  // namespace kd::model

#endif  // KD_MODEL_THREADS_H_
