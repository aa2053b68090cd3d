#include "model/threads.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <malloc.h>
#include <omp.h>
#include <unistd.h>

#include <ATen/Parallel.h>
#include <sys/prctl.h>

#include "base/check.h"
#include "base/log.h"

namespace kd::model {

void SetComputeThreads(int threads) {
  KD_CHECK(threads >= 1);
  at::set_num_threads(threads);
  // Looked up at run time: libblas.so.3 is an alternatives link (OpenBLAS, or the reference BLAS,
  // which has no threads).
  using SetBlasThreads = void (*)(int);
  if (auto fn = reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(threads);
}

void SetThisThreadsComputeThreads(int threads) {
  KD_CHECK(threads >= 1);
  (void)at::get_num_threads();  // LibTorch's once-per-thread init, which would overwrite ours later
  omp_set_num_threads(threads);
}

void ReexecWithRuntimeSettings(char** argv) {
  if (std::getenv("KD_REEXECUTED") != nullptr) {
    // After the re-exec the kernel names the process "exe" (the last part of /proc/self/exe), and
    // `pkill kdlearnd`, top and ps -C lose it: name it after argv[0] again (15 bytes at most).
    const char* slash = std::strrchr(argv[0], '/');
    ::prctl(PR_SET_NAME, slash != nullptr ? slash + 1 : argv[0], 0, 0, 0);
    ::unsetenv("KD_REEXECUTED");  // not inherited by the programs this one starts
    return;
  }
  bool changed = false;
  for (const auto& [name, value] :
       {std::pair{"OMP_WAIT_POLICY", "PASSIVE"}, std::pair{"GLIBC_TUNABLES", "glibc.malloc.hugetlb=1"}}) {
    if (std::getenv(name) == nullptr && ::setenv(name, value, /*overwrite=*/0) == 0) changed = true;
  }
  if (!changed || ::setenv("KD_REEXECUTED", "1", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  KD_LOG(kWarn) << "could not re-execute with OMP_WAIT_POLICY and GLIBC_TUNABLES set (" << std::strerror(errno)
                << "): OpenMP threads keep spinning between parallel regions, malloc uses 4-KB pages";
}

void TuneAllocatorForTensors() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

}  // namespace kd::model
