// SHA-256 (FIPS 180-4, through libsodium, which stays private to kd_base): the one digest of
// files, artefacts, payloads and tensor states. Functions are thread-safe; a Sha256Hasher is not.
#ifndef KD_BASE_SHA256_H_
#define KD_BASE_SHA256_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace kd {

inline constexpr size_t kSha256Bytes = 32;
inline constexpr size_t kSha256HexChars = 2 * kSha256Bytes;

// The digest of `bytes` as kSha256Bytes raw bytes, and as kSha256HexChars lowercase hex digits.
std::string Sha256Raw(std::span<const uint8_t> bytes);
std::string Sha256Raw(std::string_view bytes);
std::string Sha256Hex(std::span<const uint8_t> bytes);
std::string Sha256Hex(std::string_view bytes);

// An incremental SHA-256: Update any number of times, then one Final*. Copyable (a copy continues
// from the same point); not thread-safe.
class Sha256Hasher {
 public:
  Sha256Hasher();
  Sha256Hasher& Update(std::span<const uint8_t> bytes);
  Sha256Hasher& Update(std::string_view bytes);
  // The digest of everything passed to Update. REQUIRES: called once.
  std::string FinalRaw();
  std::string FinalHex();

 private:
  // libsodium's crypto_hash_sha256_state (104 bytes), kept opaque so that no header needs sodium.h.
  alignas(16) unsigned char state_[128];
};

}  // namespace kd

#endif  // KD_BASE_SHA256_H_
