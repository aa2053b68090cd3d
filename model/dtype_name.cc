#include "model/dtype_name.h"

#include <array>
#include <utility>

namespace kd::model {
namespace {

constexpr std::array<std::pair<torch::ScalarType, std::string_view>, 8> kNames = {{
    {torch::kFloat, "f32"},
    {torch::kHalf, "f16"},
    {torch::kDouble, "f64"},
    {torch::kBFloat16, "bf16"},
    {torch::kLong, "i64"},
    {torch::kInt, "i32"},
    {torch::kByte, "u8"},
    {torch::kBool, "bool"},
}};

}  // namespace

const char* DtypeName(torch::ScalarType type) {
  for (const auto& [t, name] : kNames) {
    if (t == type) return name.data();  // string literals: NUL-terminated
  }
  return nullptr;
}

std::optional<torch::ScalarType> DtypeFromName(std::string_view name) {
  for (const auto& [t, n] : kNames) {
    if (n == name) return t;
  }
  return std::nullopt;
}

}  // namespace kd::model
