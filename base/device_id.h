// The device-id rule, written once: the config, the wire codec and the learner all apply it. A
// device id names files (slots, store keys), log lines and metric labels, so it is 1..64 bytes
// of [A-Za-z0-9._-] and not "." or "..". Pure functions; thread-safe.
#ifndef KD_BASE_DEVICE_ID_H_
#define KD_BASE_DEVICE_ID_H_

#include <cstddef>
#include <string_view>

namespace kd {

inline constexpr size_t kMaxDeviceIdBytes = 64;
// The rule in words, for error messages.
inline constexpr char kDeviceIdRule[] = "must be 1..64 characters of [A-Za-z0-9._-] (not \".\" or \"..\")";

// True when `id` follows the rule, with at most `max_bytes` bytes (<= kMaxDeviceIdBytes).
bool IsValidDeviceId(std::string_view id, size_t max_bytes = kMaxDeviceIdBytes);

}  // namespace kd

#endif  // KD_BASE_DEVICE_ID_H_
