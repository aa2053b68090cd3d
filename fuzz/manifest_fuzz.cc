// libFuzzer target: the update manifest codecs (update/manifest.h) an edge applies to what the
// learner sends: ParseManifest (the signed bytes), DecodeSignedManifest (the "KDSM" envelope) and
// VerifyManifest with a fixed test key (fuzz_util.h's TestSigningKey). The input is tried as a
// manifest, as an envelope, and as manifest bytes signed with the test key (so that VerifyManifest
// gets past the signature and parses and checks them). Round trips are checked: whatever parses
// re-encodes to the same bytes, and a parsed manifest signed with the test key verifies.
#include <cstddef>
#include <cstdint>
#include <sodium.h>
#include <string>
#include <string_view>

#include "base/check.h"
#include "fuzz/fuzz_util.h"
#include "update/manifest.h"

namespace {

const kd::update::SigningKeyPair& Key() {
  static const kd::update::SigningKeyPair key = kd::fuzz::TestSigningKey();
  return key;
}

kd::update::VerifyOptions Options(int64_t now_unix_s) {
  kd::update::VerifyOptions options;
  options.trusted_keys = {Key().public_key};
  options.now_unix_s = now_unix_s;
  return options;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kd::update;  // NOLINT(google-build-using-namespace): a fuzz target's one function
  const std::string_view in(reinterpret_cast<const char*>(data), size);

  kd::Result<Manifest> manifest = ParseManifest(in);
  if (manifest.ok()) {
    kd::Result<std::string> encoded = EncodeManifest(*manifest);
    KD_CHECK_MSG(encoded.ok() && *encoded == in, "a parsed manifest does not re-encode to its bytes");
    kd::Result<SignedManifest> signed_manifest = SignManifest(*manifest, Key());
    KD_CHECK(signed_manifest.ok());
    // Fresh (the second before expiry; 0 would mean the system clock), no floor, any model.
    const int64_t now = manifest->expires_unix_s - 1;
    if (now != 0) {
      kd::Result<Manifest> verified = VerifyManifest(*signed_manifest, Options(now));
      KD_CHECK_MSG(verified.ok(), verified.status().ToString());
    }
  }

  kd::Result<SignedManifest> envelope = DecodeSignedManifest(in);
  if (envelope.ok()) {
    KD_CHECK_MSG(EncodeSignedManifest(*envelope) == in, "a decoded envelope does not re-encode to its bytes");
    (void)VerifyManifest(*envelope, Options(1));
  }

  // The input as manifest bytes with a valid signature of the test key.
  SignedManifest signed_input;
  signed_input.bytes.assign(in);
  signed_input.signature.resize(crypto_sign_BYTES);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signed_input.signature.data()), nullptr, data, size,
                       reinterpret_cast<const unsigned char*>(Key().secret_key.data()));
  signed_input.key_id = KeyId(Key().public_key);
  kd::Result<Manifest> verified = VerifyManifest(signed_input, Options(1'000'000'000));
  // The signature holds, so the outcome is the parse's (then the policy's), never PermissionDenied.
  KD_CHECK(verified.ok() || verified.status().code() != kd::Status::Code::kPermissionDenied);
  if (manifest.ok() != verified.ok()) {
    KD_CHECK_MSG(manifest.ok() && verified.status().code() == kd::Status::Code::kFailedPrecondition,
                 verified.status().ToString());
  }
  return 0;
}
