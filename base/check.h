// KD_CHECK: invariants that stay on in release builds. A failed check is a bug, not an expected
// failure (those are Status values): it prints file, line and condition, then aborts.
#ifndef KD_BASE_CHECK_H_
#define KD_BASE_CHECK_H_

#include <string>

namespace kd::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace kd::internal

#define KD_CHECK(cond)                                            \
  do {                                                            \
    if (!(cond)) [[unlikely]]                                     \
      ::kd::internal::CheckFailed(__FILE__, __LINE__, #cond, ""); \
  } while (0)

#define KD_CHECK_MSG(cond, msg)                                      \
  do {                                                               \
    if (!(cond)) [[unlikely]]                                        \
      ::kd::internal::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)

#endif  // KD_BASE_CHECK_H_
