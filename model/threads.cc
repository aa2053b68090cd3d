#include "model/threads.h"

#include <dlfcn.h>
#include <malloc.h>

#include <ATen/Parallel.h>

#include "base/check.h"

namespace kd::model {

void SetComputeThreads(int threads) {
  KD_CHECK(threads >= 1);
  at::set_num_threads(threads);
  // Looked up at run time: libblas.so.3 is an alternatives link (OpenBLAS, or the reference BLAS,
  // which has no threads).
  using SetBlasThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
}

void TuneAllocatorForTensors() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

}  // namespace kd::model
