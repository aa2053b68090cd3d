#include "update/signing.h"

#include <sodium.h>

#include "base/hex.h"
#include "base/sha256.h"
#include "update/file_io.h"

namespace kd::update {
namespace {

constexpr char kSecretTag[] = "kd-ed25519-secret-v1";
constexpr char kPublicTag[] = "kd-ed25519-public-v1";

Status CheckPair(const SigningKeyPair& key) {
  if (key.public_key.size() != crypto_sign_PUBLICKEYBYTES || key.secret_key.size() != crypto_sign_SECRETKEYBYTES) {
    return Status::InvalidArgument("an ed25519 key pair has a 32-byte public and a 64-byte secret key");
  }
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_ed25519_sk_to_pk(pk, reinterpret_cast<const unsigned char*>(key.secret_key.data()));
  if (sodium_memcmp(pk, key.public_key.data(), sizeof(pk)) != 0) {
    return Status::InvalidArgument("the public key does not belong to the secret key");
  }
  return Status::Ok();
}

// Parses "<tag> <hex>\n" (surrounding whitespace ignored). Returns the raw bytes.
Result<std::string> ParseKeyFile(const std::string& path, const std::string& text, const std::string& tag,
                                 size_t raw_bytes) {
  const size_t b = text.find_first_not_of(" \t\r\n");
  const size_t e = text.find_last_not_of(" \t\r\n");
  const std::string line = b == std::string::npos ? "" : text.substr(b, e - b + 1);
  const size_t space = line.find(' ');
  if (space == std::string::npos || line.substr(0, space) != tag) {
    return Status::Corruption("'" + path + "' is not a " + tag + " key file");
  }
  std::string raw;
  if (!FromHex(line.substr(space + 1), &raw) || raw.size() != raw_bytes) {
    return Status::Corruption("'" + path + "': malformed key (" + std::to_string(raw_bytes * 2) + " hex expected)");
  }
  return raw;
}

Result<std::string> ReadText(const std::string& path) {
  KD_ASSIGN_OR_RETURN(auto bytes, internal::ReadFile(path));
  if (bytes.size() > 4096) return Status::Corruption("'" + path + "' is too large for a key file");
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

Result<SigningKeyPair> GenerateSigningKey() {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  if (crypto_sign_keypair(pk, sk) != 0) return Status::Internal("crypto_sign_keypair failed");
  SigningKeyPair key{std::string(reinterpret_cast<char*>(pk), sizeof(pk)),
                     std::string(reinterpret_cast<char*>(sk), sizeof(sk))};
  sodium_memzero(sk, sizeof(sk));
  return key;
}

Status WriteSigningKey(const std::string& secret_path, const std::string& public_path, const SigningKeyPair& key) {
  KD_RETURN_IF_ERROR(CheckPair(key));
  std::string secret_text = std::string(kSecretTag) + " " + ToHex(key.secret_key) + "\n";
  const Status s = internal::WriteFileAtomic(secret_path, secret_text, 0600);
  sodium_memzero(secret_text.data(), secret_text.size());
  KD_RETURN_IF_ERROR(s);
  return internal::WriteFileAtomic(public_path, std::string(kPublicTag) + " " + ToHex(key.public_key) + "\n", 0644);
}

Result<SigningKeyPair> ReadSigningKey(const std::string& secret_path) {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  KD_ASSIGN_OR_RETURN(std::string text, ReadText(secret_path));
  auto raw = ParseKeyFile(secret_path, text, kSecretTag, crypto_sign_SECRETKEYBYTES);
  sodium_memzero(text.data(), text.size());
  if (!raw.ok()) return raw.status();
  SigningKeyPair key;
  key.secret_key = std::move(raw).value();
  unsigned char pk[crypto_sign_PUBLICKEYBYTES];
  crypto_sign_ed25519_sk_to_pk(pk, reinterpret_cast<const unsigned char*>(key.secret_key.data()));
  key.public_key.assign(reinterpret_cast<char*>(pk), sizeof(pk));
  // The public half is stored after the seed: recompute it from the seed so that a damaged file
  // cannot yield a key pair that signs with one key and claims another.
  unsigned char seed_pk[crypto_sign_PUBLICKEYBYTES], seed_sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_seed_keypair(seed_pk, seed_sk, reinterpret_cast<const unsigned char*>(key.secret_key.data()));
  sodium_memzero(seed_sk, sizeof(seed_sk));
  if (sodium_memcmp(seed_pk, pk, sizeof(pk)) != 0) {
    return Status::Corruption("'" + secret_path + "': the public half does not match the seed");
  }
  return key;
}

Result<std::string> ReadVerifyKey(const std::string& path) {
  KD_ASSIGN_OR_RETURN(std::string text, ReadText(path));
  if (text.find(kSecretTag) != std::string::npos) {
    sodium_memzero(text.data(), text.size());
    KD_ASSIGN_OR_RETURN(SigningKeyPair key, ReadSigningKey(path));
    return key.public_key;
  }
  return ParseKeyFile(path, text, kPublicTag, crypto_sign_PUBLICKEYBYTES);
}

std::string KeyId(const std::string& public_key) { return ToHex(std::string_view(Sha256Raw(public_key)).substr(0, 8)); }

}  // namespace kd::update
