#include "base/sha256.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "base/check.h"
#include "base/hex.h"

namespace kd {
namespace {

// Fetched once: an explicit fetch spares OpenSSL 3 the implicit provider lookup on every digest.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = [] {
    const EVP_MD* m = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    KD_CHECK_MSG(m != nullptr, "OpenSSL has no SHA256");
    KD_CHECK(EVP_MD_get_size(m) == static_cast<int>(kSha256Bytes));
    return m;
  }();
  return md;
}

EVP_MD_CTX* Ctx(void* p) { return static_cast<EVP_MD_CTX*>(p); }

}  // namespace

std::string Sha256Raw(std::span<const uint8_t> bytes) {
  std::string digest(kSha256Bytes, '\0');
  unsigned int n = 0;
  KD_CHECK(EVP_Digest(bytes.data(), bytes.size(), reinterpret_cast<unsigned char*>(digest.data()), &n, Sha256Md(),
                      nullptr) == 1);
  KD_CHECK(n == kSha256Bytes);
  return digest;
}

std::string HmacSha256(std::string_view key, std::span<const uint8_t> message) {
  std::string mac(kSha256Bytes, '\0');
  unsigned int n = 0;
  KD_CHECK(HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), message.data(), message.size(),
                reinterpret_cast<unsigned char*>(mac.data()), &n) != nullptr &&
           n == kSha256Bytes);
  return mac;
}

std::string HmacSha256(std::string_view key, std::string_view message) {
  return HmacSha256(key, std::span(reinterpret_cast<const uint8_t*>(message.data()), message.size()));
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string Sha256Raw(std::string_view bytes) {
  return Sha256Raw(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

std::string Sha256Hex(std::span<const uint8_t> bytes) { return ToHex(Sha256Raw(bytes)); }

std::string Sha256Hex(std::string_view bytes) { return ToHex(Sha256Raw(bytes)); }

Sha256Hasher::Sha256Hasher() : ctx_(EVP_MD_CTX_new()) {
  KD_CHECK_MSG(ctx_ != nullptr, "out of memory for a SHA-256 context");
  KD_CHECK(EVP_DigestInit_ex(Ctx(ctx_), Sha256Md(), nullptr) == 1);
}

Sha256Hasher::Sha256Hasher(const Sha256Hasher& other) : ctx_(EVP_MD_CTX_new()) {
  KD_CHECK_MSG(ctx_ != nullptr, "out of memory for a SHA-256 context");
  KD_CHECK(EVP_MD_CTX_copy_ex(Ctx(ctx_), Ctx(other.ctx_)) == 1);
}

Sha256Hasher& Sha256Hasher::operator=(const Sha256Hasher& other) {
  if (this != &other) KD_CHECK(EVP_MD_CTX_copy_ex(Ctx(ctx_), Ctx(other.ctx_)) == 1);
  return *this;
}

Sha256Hasher::~Sha256Hasher() { EVP_MD_CTX_free(Ctx(ctx_)); }

Sha256Hasher& Sha256Hasher::Update(std::span<const uint8_t> bytes) {
  KD_CHECK(EVP_DigestUpdate(Ctx(ctx_), bytes.data(), bytes.size()) == 1);
  return *this;
}

Sha256Hasher& Sha256Hasher::Update(std::string_view bytes) {
  return Update(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

std::string Sha256Hasher::FinalRaw() {
  std::string digest(kSha256Bytes, '\0');
  unsigned int n = 0;
  KD_CHECK(EVP_DigestFinal_ex(Ctx(ctx_), reinterpret_cast<unsigned char*>(digest.data()), &n) == 1);
  KD_CHECK(n == kSha256Bytes);
  return digest;
}

std::string Sha256Hasher::FinalHex() { return ToHex(FinalRaw()); }

}  // namespace kd
