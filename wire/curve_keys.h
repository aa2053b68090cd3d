// CURVE key pairs (CurveZMQ, RFC 26) for the kd sockets: generation and the key files.
// The learner has one server key pair; each camera has its own client key pair, whose public key
// the learner's Authenticator maps to the device_id. File format: wire/PROTOCOL.md, "Key files".
// Ownership: plain values. Threading: every function is thread-safe.
#ifndef KD_WIRE_CURVE_KEYS_H_
#define KD_WIRE_CURVE_KEYS_H_

#include <string>
#include <string_view>

#include "base/status.h"

namespace kd::wire {

// Z85 text (ZeroMQ's encoding), 40 characters each (32 key bytes).
struct CurveKeyPair {
  std::string public_key, secret_key;
};

// A fresh key pair from libzmq (libsodium's RNG). Unimplemented when libzmq lacks CURVE.
Result<CurveKeyPair> GenerateCurveKeyPair();

// True when `key` is 40 characters of Z85 that decode to 32 bytes.
bool IsValidZ85Key(std::string_view key);

// Writes the secret file (public + secret key, mode 0600) and the public file (public key only,
// mode 0644), each atomically (temporary file, fsync, rename, fsync of the directory), so a crash
// leaves the old file or the new one. Either path may be empty to skip that file.
// InvalidArgument for keys that are not valid or do not belong together; IOError from the OS.
Status WriteCurveKeyPair(const std::string& secret_path, const std::string& public_path, const CurveKeyPair& keys);

// Reads a secret file. PermissionDenied when the file is readable by group or others (like ssh:
// a leaked secret key is a forged camera); Corruption for a malformed file or a public key that
// does not match the secret key; NotFound / IOError from the OS.
Result<CurveKeyPair> ReadCurveKeyPair(const std::string& secret_path);

// Reads the public key from a public file or a secret file (no permission check).
Result<std::string> ReadCurvePublicKey(const std::string& path);

}  // namespace kd::wire

#endif  // KD_WIRE_CURVE_KEYS_H_
