// Ed25519 signing keys for model manifests (libsodium). The learner holds the secret key (ideally
// offline); every edge pins one or two public keys (two allow rotation). File formats:
// docs/UPDATE_FORMAT.md ("Key files").
// Thread-safety: all functions are thread-safe; writes to the same paths must not race.
#ifndef KD_UPDATE_SIGNING_H_
#define KD_UPDATE_SIGNING_H_

#include <string>

#include "base/status.h"

namespace kd::update {

struct SigningKeyPair {
  std::string public_key;  // raw ed25519 public key, 32 bytes
  std::string secret_key;  // raw libsodium secret key, 64 bytes (seed followed by the public key)
};

// A fresh key pair from the OS CSPRNG.
Result<SigningKeyPair> GenerateSigningKey();

// Writes the secret key file (mode 0600) and the public key file (0644), each atomically (temp
// file, fsync, rename, fsync dir), as one line of text: "kd-ed25519-secret-v1 <128 hex>" and
// "kd-ed25519-public-v1 <64 hex>". InvalidArgument for a malformed key pair, IOError on write.
Status WriteSigningKey(const std::string& secret_path, const std::string& public_path, const SigningKeyPair& key);

// Reads a secret key file. NotFound / IOError from the file system; Corruption for a malformed
// file or a secret key whose embedded public half does not match its seed.
Result<SigningKeyPair> ReadSigningKey(const std::string& secret_path);

// The raw 32-byte public key from a public key file, or from a secret key file (its public half).
Result<std::string> ReadVerifyKey(const std::string& path);

// Short key id: hex of the first 8 bytes of SHA-256(public_key) (16 characters). Carried next to a
// signature so that a verifier knows which pinned key to try.
std::string KeyId(const std::string& public_key);

}  // namespace kd::update

#endif  // KD_UPDATE_SIGNING_H_
