// SHA-256 (FIPS 180-4, through OpenSSL's libcrypto, which stays private to kd_base): the one
// digest of files, artefacts, payloads and tensor states. libcrypto uses the CPU's SHA extensions
// (x86 SHA-NI, ARMv8 crypto) where present: 1.6 GB/s here against about 0.4 GB/s for libsodium's
// portable code, and every wire message's payload is hashed by its sender and its receiver
// (RESULTS.md, ingest). Functions are thread-safe; a Sha256Hasher is not.
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

// HMAC-SHA256 (RFC 2104) of `message` under `key`: kSha256Bytes raw bytes. For messages between
// processes that share a secret (the learner's coordinator and workers, cluster/PROTOCOL.md).
std::string HmacSha256(std::string_view key, std::span<const uint8_t> message);
std::string HmacSha256(std::string_view key, std::string_view message);
// Compares two byte strings in time that depends only on their lengths (MACs, tokens).
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// An incremental SHA-256: Update any number of times, then one Final*. Copyable (a copy continues
// from the same point); not thread-safe.
class Sha256Hasher {
 public:
  Sha256Hasher();
  Sha256Hasher(const Sha256Hasher& other);
  Sha256Hasher& operator=(const Sha256Hasher& other);
  ~Sha256Hasher();
  Sha256Hasher& Update(std::span<const uint8_t> bytes);
  Sha256Hasher& Update(std::string_view bytes);
  // The digest of everything passed to Update. REQUIRES: called once.
  std::string FinalRaw();
  std::string FinalHex();

 private:
  // An EVP_MD_CTX (owned), kept opaque so that no header needs OpenSSL's.
  void* ctx_;
};

}  // namespace kd

#endif  // KD_BASE_SHA256_H_
