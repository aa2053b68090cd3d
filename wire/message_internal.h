// wire-internal helpers shared by message.cc and endpoint.cc (not part of the public API).
#ifndef KD_WIRE_MESSAGE_INTERNAL_H_
#define KD_WIRE_MESSAGE_INTERNAL_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "wire/message.h"

namespace kd::wire::internal {

// What an error reply can echo from a message that failed validation.
struct PeekedHeader {
  std::string device_id;  // empty unless valid
  uint64_t seq = 0;
};

// Best effort: the device_id (if valid) and seq of frames whose protocol id and header are fine
// (size within limits, parses); nullopt otherwise.
std::optional<PeekedHeader> PeekHeader(const std::vector<std::string>& frames, const Limits& limits);

}  // namespace kd::wire::internal

#endif  // KD_WIRE_MESSAGE_INTERNAL_H_
