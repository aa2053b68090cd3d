// Checked integer reads from nlohmann::json, for metadata parsed from untrusted files (.kdw).
// nlohmann's get<T>() converts any number with a static_cast: a float out of T's range is then
// undefined behaviour, and a large integer silently wraps. JsonInt refuses both.
// Header-only, internal to kd_model; pure functions (thread-safe).
#ifndef KD_MODEL_JSON_INT_H_
#define KD_MODEL_JSON_INT_H_

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kd::model::internal {

// The integer `j` as a T; throws std::invalid_argument for a non-integer and std::out_of_range for
// a value T cannot hold (the callers turn exceptions into Corruption / InvalidArgument).
template <typename T>
T JsonInt(const nlohmann::json& j) {
  using Limits = std::numeric_limits<T>;
  if (j.is_number_unsigned()) {
    const auto v = j.get<uint64_t>();
    if (v > static_cast<uint64_t>(Limits::max()))
      throw std::out_of_range("integer " + std::to_string(v) + " too large");
    return static_cast<T>(v);
  }
  if (j.is_number_integer()) {
    const auto v = j.get<int64_t>();
    if (v < static_cast<int64_t>(Limits::min()) || (v > 0 && static_cast<uint64_t>(v) > Limits::max())) {
      throw std::out_of_range("integer " + std::to_string(v) + " out of range");
    }
    return static_cast<T>(v);
  }
  throw std::invalid_argument(std::string("expected an integer, got ") + j.type_name());
}

template <typename T>
std::vector<T> JsonInts(const nlohmann::json& j) {
  if (!j.is_array()) throw std::invalid_argument(std::string("expected an array, got ") + j.type_name());
  std::vector<T> out;
  out.reserve(j.size());
  for (const auto& e : j) out.push_back(JsonInt<T>(e));
  return out;
}

}  // namespace kd::model::internal

#endif  // KD_MODEL_JSON_INT_H_
