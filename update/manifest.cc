#include "update/manifest.h"

#include <cstring>
#include <ctime>
#include <sodium.h>

#include "base/coding.h"
#include "base/hex.h"

namespace kd::update {
namespace {

constexpr char kManifestMagic[4] = {'K', 'D', 'M', 'F'};
constexpr char kEnvelopeMagic[4] = {'K', 'D', 'S', 'M'};
constexpr uint32_t kManifestVersion = 1;
constexpr uint32_t kEnvelopeVersion = 1;
constexpr size_t kMaxModelId = 128;
constexpr size_t kMaxRolloutId = 256;
constexpr size_t kMaxManifestBytes = 64 * 1024;
constexpr size_t kMaxKeyId = 64;

std::span<const uint8_t> AsBytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// The field rules; a message naming the first broken one, or "" when the manifest is valid.
std::string Problem(const Manifest& m) {
  if (m.model_id.empty() || m.model_id.size() > kMaxModelId) return "model_id must have 1..128 characters";
  for (char c : m.model_id) {
    const bool ok =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    if (!ok) return "model_id may contain only letters, digits, '-', '_' and '.'";
  }
  if (m.version < 1) return "version must be >= 1";
  if (m.kind == ArtifactKind::kFull) {
    if (m.base_version != 0) return "a full artefact has base_version 0";
  } else if (m.kind == ArtifactKind::kDelta) {
    if (m.base_version < 1 || m.base_version >= m.version) return "a delta needs 1 <= base_version < version";
  } else {
    return "unknown artefact kind";
  }
  if (!IsSha256Hex(m.arch_hash)) return "arch_hash must be 64 lowercase hex characters";
  if (!IsSha256Hex(m.target_digest)) return "target_digest must be 64 lowercase hex characters";
  if (!IsSha256Hex(m.artifact_sha256)) return "artifact_sha256 must be 64 lowercase hex characters";
  if (m.artifact_size == 0) return "artifact_size must be > 0";
  if (m.chunk_size == 0) return "chunk_size must be > 0";
  if (m.expires_unix_s <= m.created_unix_s) return "expires_unix_s must be after created_unix_s";
  if (m.rollout_id.size() > kMaxRolloutId) return "rollout_id is longer than 256 bytes";
  return "";
}

}  // namespace

Result<std::string> EncodeManifest(const Manifest& m) {
  if (std::string p = Problem(m); !p.empty()) return Status::InvalidArgument("manifest: " + p);
  std::vector<uint8_t> out;
  PutBytes(&out, kManifestMagic, 4);
  PutLe32(&out, kManifestVersion);
  PutLengthPrefixed(&out, m.model_id);
  PutLe64(&out, m.version);
  PutLe64(&out, m.base_version);
  PutLe32(&out, static_cast<uint32_t>(m.kind));
  PutLengthPrefixed(&out, m.arch_hash);
  PutLengthPrefixed(&out, m.target_digest);
  PutLe64(&out, m.artifact_size);
  PutLengthPrefixed(&out, m.artifact_sha256);
  PutLe32(&out, m.chunk_size);
  PutLe64(&out, static_cast<uint64_t>(m.created_unix_s));
  PutLe64(&out, static_cast<uint64_t>(m.expires_unix_s));
  PutLengthPrefixed(&out, m.rollout_id);
  PutLe64(&out, m.min_kdedge_version);
  return std::string(out.begin(), out.end());
}

Result<Manifest> ParseManifest(std::string_view bytes) {
  if (bytes.size() < 8 || std::memcmp(bytes.data(), kManifestMagic, 4) != 0) {
    return Status::Corruption("not a kd manifest (bad magic or too short)");
  }
  ByteReader r(AsBytes(bytes));
  std::span<const uint8_t> magic;
  uint32_t version = 0, kind = 0;
  r.Bytes(4, &magic);
  r.U32(&version);
  if (version != kManifestVersion) {
    return Status::Unimplemented("manifest format version " + std::to_string(version) + " (this build reads 1)");
  }
  Manifest m;
  r.LengthPrefixed(kMaxModelId, &m.model_id);
  r.U64(&m.version);
  r.U64(&m.base_version);
  r.U32(&kind);
  r.LengthPrefixed(64, &m.arch_hash);
  r.LengthPrefixed(64, &m.target_digest);
  r.U64(&m.artifact_size);
  r.LengthPrefixed(64, &m.artifact_sha256);
  r.U32(&m.chunk_size);
  r.I64(&m.created_unix_s);
  r.I64(&m.expires_unix_s);
  r.LengthPrefixed(kMaxRolloutId, &m.rollout_id);
  r.U64(&m.min_kdedge_version);
  if (!r.ok()) return Status::Corruption("manifest truncated or a field too long");
  if (r.remaining() != 0) return Status::Corruption("manifest has trailing bytes");
  m.kind = static_cast<ArtifactKind>(kind);
  if (std::string p = Problem(m); !p.empty()) return Status::Corruption("manifest: " + p);
  return m;
}

Result<SignedManifest> SignManifest(const Manifest& manifest, const SigningKeyPair& key) {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  if (key.secret_key.size() != crypto_sign_SECRETKEYBYTES || key.public_key.size() != crypto_sign_PUBLICKEYBYTES) {
    return Status::InvalidArgument("SignManifest: not an ed25519 key pair");
  }
  KD_ASSIGN_OR_RETURN(std::string bytes, EncodeManifest(manifest));
  unsigned char sig[crypto_sign_BYTES];
  crypto_sign_detached(sig, nullptr, reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                       reinterpret_cast<const unsigned char*>(key.secret_key.data()));
  SignedManifest out;
  out.bytes = std::move(bytes);
  out.signature.assign(reinterpret_cast<char*>(sig), sizeof(sig));
  out.key_id = KeyId(key.public_key);
  return out;
}

std::string EncodeSignedManifest(const SignedManifest& s) {
  std::vector<uint8_t> out;
  PutBytes(&out, kEnvelopeMagic, 4);
  PutLe32(&out, kEnvelopeVersion);
  PutLengthPrefixed(&out, s.key_id);
  PutLengthPrefixed(&out, s.signature);
  PutLengthPrefixed(&out, s.bytes);
  return std::string(out.begin(), out.end());
}

Result<SignedManifest> DecodeSignedManifest(std::string_view blob) {
  if (blob.size() < 8 || std::memcmp(blob.data(), kEnvelopeMagic, 4) != 0) {
    return Status::Corruption("not a signed kd manifest (bad magic or too short)");
  }
  ByteReader r(AsBytes(blob));
  std::span<const uint8_t> magic;
  uint32_t version = 0;
  r.Bytes(4, &magic);
  r.U32(&version);
  if (version != kEnvelopeVersion) {
    return Status::Unimplemented("signed manifest envelope version " + std::to_string(version) +
                                 " (this build reads 1)");
  }
  SignedManifest s;
  r.LengthPrefixed(kMaxKeyId, &s.key_id);
  r.LengthPrefixed(crypto_sign_BYTES, &s.signature);
  r.LengthPrefixed(kMaxManifestBytes, &s.bytes);
  if (!r.ok()) return Status::Corruption("signed manifest truncated or a field too long");
  if (r.remaining() != 0) return Status::Corruption("signed manifest has trailing bytes");
  return s;
}

Result<Manifest> VerifyManifest(const SignedManifest& s, const VerifyOptions& options) {
  if (sodium_init() < 0) return Status::Internal("libsodium failed to initialise");
  // 1. Authenticity, before a single byte of the manifest is interpreted.
  const std::string* key = nullptr;
  for (const std::string& k : options.trusted_keys) {
    if (k.size() == crypto_sign_PUBLICKEYBYTES && KeyId(k) == s.key_id) key = &k;
  }
  if (key == nullptr) return Status::PermissionDenied("manifest signed by unknown key id '" + s.key_id + "'");
  if (s.signature.size() != crypto_sign_BYTES ||
      crypto_sign_verify_detached(reinterpret_cast<const unsigned char*>(s.signature.data()),
                                  reinterpret_cast<const unsigned char*>(s.bytes.data()), s.bytes.size(),
                                  reinterpret_cast<const unsigned char*>(key->data())) != 0) {
    return Status::PermissionDenied("manifest signature does not verify with key " + s.key_id);
  }
  // 2. Well-formed.
  KD_ASSIGN_OR_RETURN(Manifest m, ParseManifest(s.bytes));
  // 3. Policy: fresh, newer than anything installed, for this model and this device.
  const int64_t now = options.now_unix_s != 0 ? options.now_unix_s : static_cast<int64_t>(std::time(nullptr));
  const std::string what = "manifest " + m.model_id + " v" + std::to_string(m.version);
  if (now >= m.expires_unix_s) {
    return Status::FailedPrecondition(what + " expired at " + std::to_string(m.expires_unix_s) + " (now " +
                                      std::to_string(now) + ")");
  }
  if (m.version <= options.version_floor) {
    return Status::FailedPrecondition(what + " is not newer than the version floor " +
                                      std::to_string(options.version_floor) + " (rollback refused)");
  }
  if (!options.model_id.empty() && m.model_id != options.model_id) {
    return Status::FailedPrecondition(what + " is for another model (this edge runs '" + options.model_id + "')");
  }
  const bool arch_may_differ = m.kind == ArtifactKind::kFull && options.full_may_change_arch;
  if (!options.arch_hash.empty() && m.arch_hash != options.arch_hash && !arch_may_differ) {
    return Status::FailedPrecondition(what + " is for student architecture " + m.arch_hash.substr(0, 16) +
                                      ", this edge runs " + options.arch_hash.substr(0, 16));
  }
  if (options.kdedge_version != 0 && m.min_kdedge_version > options.kdedge_version) {
    return Status::FailedPrecondition(what + " needs kdedge >= " + std::to_string(m.min_kdedge_version) + " (this is " +
                                      std::to_string(options.kdedge_version) + ")");
  }
  return m;
}

}  // namespace kd::update
