#include "base/device_id.h"

#include <algorithm>

namespace kd {

bool IsValidDeviceId(std::string_view id, size_t max_bytes) {
  if (id.empty() || id.size() > std::min(max_bytes, kMaxDeviceIdBytes) || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == '-';
  });
}

}  // namespace kd
