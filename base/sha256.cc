#include "base/sha256.h"

#include <new>
#include <sodium.h>

#include "base/check.h"
#include "base/hex.h"

namespace kd {
namespace {

static_assert(crypto_hash_sha256_BYTES == kSha256Bytes);

void InitSodium() {
  static const bool ok = sodium_init() >= 0;
  KD_CHECK_MSG(ok, "libsodium failed to initialise");
}

}  // namespace

std::string Sha256Raw(std::span<const uint8_t> bytes) {
  InitSodium();
  std::string digest(kSha256Bytes, '\0');
  crypto_hash_sha256(reinterpret_cast<unsigned char*>(digest.data()), bytes.data(), bytes.size());
  return digest;
}

std::string Sha256Raw(std::string_view bytes) {
  return Sha256Raw(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

std::string Sha256Hex(std::span<const uint8_t> bytes) { return ToHex(Sha256Raw(bytes)); }

std::string Sha256Hex(std::string_view bytes) { return ToHex(Sha256Raw(bytes)); }

Sha256Hasher::Sha256Hasher() {
  static_assert(sizeof(crypto_hash_sha256_state) <= sizeof(state_), "Sha256Hasher::state_ is too small");
  static_assert(alignof(crypto_hash_sha256_state) <= 16, "Sha256Hasher::state_ is under-aligned");
  InitSodium();
  crypto_hash_sha256_init(new (state_) crypto_hash_sha256_state);
}

Sha256Hasher& Sha256Hasher::Update(std::span<const uint8_t> bytes) {
  crypto_hash_sha256_update(std::launder(reinterpret_cast<crypto_hash_sha256_state*>(state_)), bytes.data(),
                            bytes.size());
  return *this;
}

Sha256Hasher& Sha256Hasher::Update(std::string_view bytes) {
  return Update(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

std::string Sha256Hasher::FinalRaw() {
  std::string digest(kSha256Bytes, '\0');
  crypto_hash_sha256_final(std::launder(reinterpret_cast<crypto_hash_sha256_state*>(state_)),
                           reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

std::string Sha256Hasher::FinalHex() { return ToHex(FinalRaw()); }

}  // namespace kd
