// Helpers shared by the fuzz targets and fuzz/write_seeds.cc, so that the seeds the generator
// writes are exactly what the targets read: how one fuzz input becomes several wire frames or a
// (key, value) pair, re-sealing of checksummed formats, and the fixed ed25519 test key.
// Header-only; pure functions (thread-safe). libsodium must be linked (the test key).
#ifndef KD_FUZZ_FUZZ_UTIL_H_
#define KD_FUZZ_FUZZ_UTIL_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <sodium.h>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/check.h"
#include "base/coding.h"
#include "base/sha256.h"
#include "update/signing.h"

namespace kd::fuzz {

// Frames of a multipart message as one input: each frame is a u32 little-endian length and that
// many bytes. A length past the end takes the rest of the input (so every input is some list of
// frames, and truncation keeps the frames before it).
inline std::vector<std::string> SplitFrames(std::span<const uint8_t> in) {
  std::vector<std::string> frames;
  size_t at = 0;
  while (in.size() - at >= 4) {
    const uint32_t len = DecodeLe32(in.data() + at);
    at += 4;
    const size_t n = std::min<size_t>(len, in.size() - at);
    frames.emplace_back(reinterpret_cast<const char*>(in.data() + at), n);
    at += n;
  }
  return frames;
}

inline std::string JoinFrames(const std::vector<std::string>& frames) {
  std::string out;
  for (const std::string& f : frames) {
    PutLengthPrefixed(&out, f);
  }
  return out;
}

// A (key, value) pair as one input: u8 key length, the key (clamped to the input), the value.
inline std::pair<std::string_view, std::string_view> SplitKeyValue(std::span<const uint8_t> in) {
  if (in.empty()) return {};
  const std::string_view rest(reinterpret_cast<const char*>(in.data()) + 1, in.size() - 1);
  const size_t key_len = std::min<size_t>(in[0], rest.size());
  return {rest.substr(0, key_len), rest.substr(key_len)};
}

inline std::string JoinKeyValue(std::string_view key, std::string_view value) {
  KD_CHECK(key.size() <= 255);
  std::string out(1, static_cast<char>(key.size()));
  out += key;
  out += value;
  return out;
}

// `bytes` followed by SHA-256(bytes): re-seals an input for formats whose last 32 bytes are the
// SHA-256 of everything before them (.kdw, deltas), so that mutations reach the parser behind the
// checksum.
inline std::vector<uint8_t> Sealed(std::span<const uint8_t> bytes) {
  std::vector<uint8_t> out(bytes.begin(), bytes.end());
  const std::string digest = Sha256Raw(bytes);
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

// The fixed ed25519 key pair of the manifest target (seed: 32 x 'K'). A test key: never trusted
// anywhere outside the fuzzers.
inline update::SigningKeyPair TestSigningKey() {
  KD_CHECK(sodium_init() >= 0);
  unsigned char seed[crypto_sign_SEEDBYTES];
  std::fill(std::begin(seed), std::end(seed), static_cast<unsigned char>('K'));
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  KD_CHECK(crypto_sign_seed_keypair(pk, sk, seed) == 0);
  update::SigningKeyPair key;
  key.public_key.assign(reinterpret_cast<const char*>(pk), sizeof(pk));
  key.secret_key.assign(reinterpret_cast<const char*>(sk), sizeof(sk));
  return key;
}

}  // namespace kd::fuzz

#endif  // KD_FUZZ_FUZZ_UTIL_H_
