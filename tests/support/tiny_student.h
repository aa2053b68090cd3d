// A student small enough that a test builds, runs and serialises it in milliseconds (a few
// thousand parameters, 64x64 input, two classes). Test code only.
#ifndef KD_TESTS_SUPPORT_TINY_STUDENT_H_
#define KD_TESTS_SUPPORT_TINY_STUDENT_H_

#include "model/student.h"

namespace kd::testing {

inline model::StudentOptions TinyStudentOptions() {
  model::StudentOptions o;
  o.width = 8;
  o.head_channels = 16;
  o.labels = {0, 2};
  o.input_width = 64;
  o.input_height = 64;
  return o;
}

}  // namespace kd::testing

#endif  // KD_TESTS_SUPPORT_TINY_STUDENT_H_
