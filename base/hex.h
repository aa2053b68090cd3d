// Lowercase hexadecimal text of bytes: the one encoder and decoder of hex in the project (digests,
// keys, object ids). Pure functions; thread-safe.
#ifndef KD_BASE_HEX_H_
#define KD_BASE_HEX_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace kd {

// Two lowercase hex digits per byte, most significant nibble first.
std::string ToHex(std::span<const uint8_t> bytes);
std::string ToHex(std::string_view bytes);

// The bytes of `hex` into *out. Accepts either case; false (and *out untouched) on an odd length or
// a character that is not a hex digit.
bool FromHex(std::string_view hex, std::string* out);

// True when every character is one of [0-9a-f] (true for the empty string).
bool IsLowerHex(std::string_view s);
// True for exactly 64 lowercase hex digits: a SHA-256 as the project writes it.
bool IsSha256Hex(std::string_view s);

}  // namespace kd

#endif  // KD_BASE_HEX_H_
