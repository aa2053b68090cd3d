// The student weight file (.kdw): versioned, self-describing, checksummed. The spec is
// docs/WEIGHTS_FORMAT.md; change both together. No TorchScript and no pickles on the edge.
// Functions are thread-safe; files are written atomically (temp file + rename).
#ifndef KD_MODEL_WEIGHTS_FILE_H_
#define KD_MODEL_WEIGHTS_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "model/student.h"

namespace kd::model {

enum class WeightDtype { kF32, kF16 };

struct WeightsMeta {
  uint64_t model_version = 0;  // monotonically increasing per deployment; 0 = unversioned
  uint64_t base_version = 0;   // version this one was trained from (0 = from scratch)
  std::string created_by;      // free text, e.g. "kdlearnd distill"
  int64_t created_unix_s = 0;
};

struct LoadedStudent {
  Student student{nullptr};  // in eval mode, on CPU
  WeightsMeta meta;
  std::string sha256_hex;  // of the whole file (what a manifest signs)
};

// Serialises every parameter and buffer of `student` (f16 halves the size; BN buffers and
// integer buffers are always stored exactly).
Result<std::vector<uint8_t>> EncodeWeights(const StudentImpl& student, const WeightsMeta& meta, WeightDtype dtype);
Result<LoadedStudent> DecodeWeights(const std::vector<uint8_t>& bytes);

Status SaveWeights(const std::string& path, const StudentImpl& student, const WeightsMeta& meta,
                   WeightDtype dtype = WeightDtype::kF32);
Result<LoadedStudent> LoadWeights(const std::string& path);

}  // namespace kd::model

#endif  // KD_MODEL_WEIGHTS_FILE_H_
