// Short dtype names ("f32", "f16", "f64", "bf16", "i64", "i32", "u8", "bool"): the one map between
// LibTorch scalar types and the names the formats write (.kdw tensor tables, state digests).
// A format may allow only some of them (the .kdw: f32, f16, i64). Pure functions; thread-safe.
#ifndef KD_MODEL_DTYPE_NAME_H_
#define KD_MODEL_DTYPE_NAME_H_

#include <optional>
#include <string_view>

#include <torch/types.h>

namespace kd::model {

// nullptr for a dtype without a name.
const char* DtypeName(torch::ScalarType type);
// nullopt for a name that is not one of the above.
std::optional<torch::ScalarType> DtypeFromName(std::string_view name);

}  // namespace kd::model

#endif  // KD_MODEL_DTYPE_NAME_H_
