// Rollout manifests: what kdlearnd publishes for each model version, signed with ed25519 over the
// exact encoded bytes, and how kdedge decides whether to install it (after TUF: signed, expiring,
// versioned metadata and a persisted version floor against rollback and freeze attacks).
// Encoding and checks: docs/UPDATE_FORMAT.md ("Manifest"). Thread-safety: pure functions.
#ifndef KD_UPDATE_MANIFEST_H_
#define KD_UPDATE_MANIFEST_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "update/signing.h"

namespace kd::update {

enum class ArtifactKind : uint32_t { kFull = 1, kDelta = 2 };

struct Manifest {
  std::string model_id;       // the student group, e.g. "cam-a" or "lobby" (1..128 bytes)
  uint64_t version = 0;       // monotonic per model_id, >= 1
  uint64_t base_version = 0;  // kDelta: the version it applies to (< version); kFull: 0
  ArtifactKind kind = ArtifactKind::kFull;
  std::string arch_hash;        // hex sha256 of StudentOptions::ArchJson()
  std::string target_digest;    // StateDigest of the model after install (hex)
  uint64_t artifact_size = 0;   // bytes to download (> 0)
  std::string artifact_sha256;  // hex; also the artefact's object id on the wire
  uint32_t chunk_size = 65536;  // download chunk, bytes (> 0)
  int64_t created_unix_s = 0;
  int64_t expires_unix_s = 0;  // > created_unix_s; an edge refuses the manifest from then on
  std::string rollout_id;      // free text for reports (<= 256 bytes)
  // Oldest kdedge that can install this, as KdedgeVersion(major, minor, patch); 0 = any.
  uint64_t min_kdedge_version = 0;
};

// major * 1'000'000 + minor * 1'000 + patch (minor, patch < 1000).
constexpr uint64_t KdedgeVersion(uint64_t major, uint64_t minor, uint64_t patch) {
  return major * 1'000'000 + minor * 1'000 + patch;
}

// The bytes exactly as signed and transmitted (`bytes` is the binary manifest encoding), the
// 64-byte detached ed25519 signature over them and the signer's KeyId.
struct SignedManifest {
  std::string bytes;
  std::string signature;
  std::string key_id;
};

// The binary manifest encoding (deterministic). InvalidArgument for a manifest that breaks the
// field rules above (so nothing invalid is ever signed).
Result<std::string> EncodeManifest(const Manifest& manifest);
// Corruption for bytes that are not a valid v1 manifest (Unimplemented for another version).
// Does not check a signature: use VerifyManifest on anything received.
Result<Manifest> ParseManifest(std::string_view bytes);

Result<SignedManifest> SignManifest(const Manifest& manifest, const SigningKeyPair& key);
// One blob for transport ("KDSM" envelope: key id, signature, manifest bytes).
std::string EncodeSignedManifest(const SignedManifest& signed_manifest);
// Corruption on garbage (the envelope only; the manifest inside is not parsed here).
Result<SignedManifest> DecodeSignedManifest(std::string_view blob);

struct VerifyOptions {
  std::vector<std::string> trusted_keys;  // raw public keys (2 pinned keys allow rotation)
  // Current time (Unix seconds); 0 = read the system clock.
  int64_t now_unix_s = 0;
  uint64_t version_floor = 0;  // refuse version <= floor (ModelSlots::state().floor_version)
  std::string model_id;        // empty = any
  // The running student's arch hash; empty = any. A kDelta must always match it.
  std::string arch_hash;
  // A kFull may carry another architecture (a .kdw is self-describing) when true. Default false:
  // an edge installs only the architecture it was provisioned for.
  bool full_may_change_arch = false;
  // This kdedge's KdedgeVersion(); 0 = do not check min_kdedge_version.
  uint64_t kdedge_version = 0;
};

// Signature first (PermissionDenied: unknown key id / bad signature) — nothing is parsed before
// the signature verifies; then parse (Corruption); then expiry, version floor, model_id, arch and
// kdedge version (FailedPrecondition with a clear message).
Result<Manifest> VerifyManifest(const SignedManifest& signed_manifest, const VerifyOptions& options);

}  // namespace kd::update

#endif  // KD_UPDATE_MANIFEST_H_
