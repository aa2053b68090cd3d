#include "update/manifest.h"

#include <fstream>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/update/test_util.h"
#include "update/signing.h"

namespace kd::update {
namespace {

using testing::ScratchDir;

constexpr int64_t kCreated = 1'800'000'000;

std::string Hex64(char c) { return std::string(64, c); }

Manifest Sample() {
  Manifest m;
  m.model_id = "cam-a";
  m.version = 7;
  m.base_version = 6;
  m.kind = ArtifactKind::kDelta;
  m.arch_hash = Hex64('a');
  m.target_digest = Hex64('b');
  m.artifact_size = 12345;
  m.artifact_sha256 = Hex64('c');
  m.chunk_size = 65536;
  m.created_unix_s = kCreated;
  m.expires_unix_s = kCreated + 7 * 86400;
  m.rollout_id = "r-2026-01";
  m.min_kdedge_version = KdedgeVersion(0, 1, 0);
  return m;
}

class ManifestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    key_ = *GenerateSigningKey();
    other_ = *GenerateSigningKey();
    opts_.trusted_keys = {key_.public_key};
    opts_.now_unix_s = kCreated + 60;
    opts_.version_floor = 6;
    opts_.model_id = "cam-a";
    opts_.arch_hash = Hex64('a');
    opts_.kdedge_version = KdedgeVersion(0, 1, 0);
  }
  SignedManifest Signed(const Manifest& m) {
    auto s = SignManifest(m, key_);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return *s;
  }
  SigningKeyPair key_, other_;
  VerifyOptions opts_;
};

TEST_F(ManifestTest, SignVerifyRoundTripThroughTheEnvelope) {
  const SignedManifest s = Signed(Sample());
  EXPECT_EQ(s.key_id, KeyId(key_.public_key));
  EXPECT_EQ(s.key_id.size(), 16u);
  EXPECT_EQ(s.signature.size(), 64u);
  auto decoded = DecodeSignedManifest(EncodeSignedManifest(s));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  auto m = VerifyManifest(*decoded, opts_);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  const Manifest want = Sample();
  EXPECT_EQ(m->model_id, want.model_id);
  EXPECT_EQ(m->version, want.version);
  EXPECT_EQ(m->base_version, want.base_version);
  EXPECT_EQ(m->kind, want.kind);
  EXPECT_EQ(m->arch_hash, want.arch_hash);
  EXPECT_EQ(m->target_digest, want.target_digest);
  EXPECT_EQ(m->artifact_size, want.artifact_size);
  EXPECT_EQ(m->artifact_sha256, want.artifact_sha256);
  EXPECT_EQ(m->chunk_size, want.chunk_size);
  EXPECT_EQ(m->created_unix_s, want.created_unix_s);
  EXPECT_EQ(m->expires_unix_s, want.expires_unix_s);
  EXPECT_EQ(m->rollout_id, want.rollout_id);
  EXPECT_EQ(m->min_kdedge_version, want.min_kdedge_version);
  // Encoding is deterministic: the same manifest always gives the same bytes.
  EXPECT_EQ(*EncodeManifest(Sample()), s.bytes);
}

TEST_F(ManifestTest, TamperingAndForeignKeysArePermissionDenied) {
  const SignedManifest good = Signed(Sample());
  for (size_t pos = 0; pos < good.bytes.size(); ++pos) {
    SignedManifest t = good;
    t.bytes[pos] ^= 0x01;
    EXPECT_EQ(VerifyManifest(t, opts_).status().code(), Status::Code::kPermissionDenied) << "byte " << pos;
  }
  SignedManifest bad_sig = good;
  bad_sig.signature[10] ^= 0x40;
  EXPECT_EQ(VerifyManifest(bad_sig, opts_).status().code(), Status::Code::kPermissionDenied);
  SignedManifest short_sig = good;
  short_sig.signature.resize(10);
  EXPECT_EQ(VerifyManifest(short_sig, opts_).status().code(), Status::Code::kPermissionDenied);
  // Signed by a key the edge does not pin.
  auto foreign = SignManifest(Sample(), other_);
  ASSERT_TRUE(foreign.ok());
  EXPECT_EQ(VerifyManifest(*foreign, opts_).status().code(), Status::Code::kPermissionDenied);
  // ... even when it claims a pinned key's id.
  SignedManifest spoofed = *foreign;
  spoofed.key_id = good.key_id;
  EXPECT_EQ(VerifyManifest(spoofed, opts_).status().code(), Status::Code::kPermissionDenied);
  // No keys pinned: nothing verifies.
  VerifyOptions none = opts_;
  none.trusted_keys.clear();
  EXPECT_EQ(VerifyManifest(good, none).status().code(), Status::Code::kPermissionDenied);
}

TEST_F(ManifestTest, NothingIsParsedBeforeTheSignatureVerifies) {
  SignedManifest garbage;
  garbage.bytes = "definitely not a manifest";
  garbage.signature = std::string(64, '\0');
  garbage.key_id = KeyId(key_.public_key);
  EXPECT_EQ(VerifyManifest(garbage, opts_).status().code(), Status::Code::kPermissionDenied);
  garbage.bytes.clear();
  EXPECT_EQ(VerifyManifest(garbage, opts_).status().code(), Status::Code::kPermissionDenied);
}

TEST_F(ManifestTest, SecondPinnedKeyAllowsRotation) {
  opts_.trusted_keys = {other_.public_key, key_.public_key};
  EXPECT_TRUE(VerifyManifest(Signed(Sample()), opts_).ok());
  auto by_new = SignManifest(Sample(), other_);
  ASSERT_TRUE(by_new.ok());
  EXPECT_TRUE(VerifyManifest(*by_new, opts_).ok());
}

TEST_F(ManifestTest, PolicyChecksAreFailedPrecondition) {
  const SignedManifest s = Signed(Sample());
  auto expect_refused = [&](const VerifyOptions& o, const char* why) {
    const Status st = VerifyManifest(s, o).status();
    EXPECT_EQ(st.code(), Status::Code::kFailedPrecondition) << why << ": " << st.ToString();
  };
  VerifyOptions o = opts_;
  o.now_unix_s = Sample().expires_unix_s;
  expect_refused(o, "expired");
  o = opts_;
  o.version_floor = 7;
  expect_refused(o, "version == floor");
  o.version_floor = 9;
  expect_refused(o, "version < floor");
  o = opts_;
  o.model_id = "lobby";
  expect_refused(o, "model_id");
  o = opts_;
  o.arch_hash = Hex64('d');
  expect_refused(o, "arch");
  o.full_may_change_arch = true;
  expect_refused(o, "a delta never changes arch");
  o = opts_;
  o.kdedge_version = KdedgeVersion(0, 0, 9);
  expect_refused(o, "kdedge too old");
  // Empty model_id / arch_hash and kdedge_version 0 mean "any".
  o = opts_;
  o.model_id.clear();
  o.arch_hash.clear();
  o.kdedge_version = 0;
  EXPECT_TRUE(VerifyManifest(s, o).ok());
}

TEST_F(ManifestTest, FullSnapshotMayChangeArchOnlyWhenAllowed) {
  Manifest m = Sample();
  m.kind = ArtifactKind::kFull;
  m.base_version = 0;
  m.arch_hash = Hex64('e');
  const SignedManifest s = Signed(m);
  EXPECT_EQ(VerifyManifest(s, opts_).status().code(), Status::Code::kFailedPrecondition);
  opts_.full_may_change_arch = true;
  EXPECT_TRUE(VerifyManifest(s, opts_).ok());
}

TEST_F(ManifestTest, InvalidManifestsAreNeverSigned) {
  std::vector<std::pair<const char*, Manifest>> bad;
  Manifest m = Sample();
  m.version = 0;
  bad.emplace_back("version 0", m);
  m = Sample();
  m.base_version = 7;
  bad.emplace_back("delta base >= version", m);
  m = Sample();
  m.kind = ArtifactKind::kFull;
  bad.emplace_back("full with a base", m);
  m = Sample();
  m.model_id = "../etc";
  bad.emplace_back("model_id with a slash", m);
  m = Sample();
  m.artifact_sha256 = "abc";
  bad.emplace_back("short sha", m);
  m = Sample();
  m.expires_unix_s = m.created_unix_s;
  bad.emplace_back("no lifetime", m);
  m = Sample();
  m.artifact_size = 0;
  bad.emplace_back("empty artefact", m);
  for (const auto& [why, manifest] : bad) {
    EXPECT_TRUE(SignManifest(manifest, key_).status().IsInvalidArgument()) << why;
  }
  EXPECT_TRUE(SignManifest(Sample(), SigningKeyPair{}).status().IsInvalidArgument());
}

TEST_F(ManifestTest, DamagedEnvelopesAndManifestsAreCorruption) {
  const std::string blob = EncodeSignedManifest(Signed(Sample()));
  EXPECT_TRUE(DecodeSignedManifest("").status().IsCorruption());
  EXPECT_TRUE(DecodeSignedManifest("garbage garbage garbage").status().IsCorruption());
  for (size_t n = 0; n < blob.size(); n += 7) {
    EXPECT_TRUE(DecodeSignedManifest(blob.substr(0, n)).status().IsCorruption()) << n;
  }
  EXPECT_TRUE(DecodeSignedManifest(blob + "x").status().IsCorruption());
  const std::string bytes = *EncodeManifest(Sample());
  EXPECT_TRUE(ParseManifest(bytes.substr(0, bytes.size() - 1)).status().IsCorruption());
  EXPECT_TRUE(ParseManifest("KDMF").status().IsCorruption());
  EXPECT_TRUE(ParseManifest(bytes).ok());
}

TEST(SigningKeyTest, WriteReadRoundTripAndFileModes) {
  ScratchDir dir;
  auto key = GenerateSigningKey();
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->public_key.size(), 32u);
  EXPECT_EQ(key->secret_key.size(), 64u);
  const std::string sec = dir / "learner.key", pub = dir / "learner.pub";
  ASSERT_TRUE(WriteSigningKey(sec, pub, *key).ok());
  struct stat st {};
  ASSERT_EQ(::stat(sec.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto back = ReadSigningKey(sec);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->public_key, key->public_key);
  EXPECT_EQ(back->secret_key, key->secret_key);
  EXPECT_EQ(*ReadVerifyKey(pub), key->public_key);
  EXPECT_EQ(*ReadVerifyKey(sec), key->public_key);
  EXPECT_TRUE(ReadVerifyKey(dir / "absent.pub").status().IsNotFound());
  // A key read back signs manifests the original public key verifies.
  VerifyOptions o;
  o.trusted_keys = {*ReadVerifyKey(pub)};
  o.now_unix_s = kCreated;
  EXPECT_TRUE(VerifyManifest(*SignManifest(Sample(), *back), o).ok());
}

TEST(SigningKeyTest, DamagedKeyFilesAreCorruption) {
  ScratchDir dir;
  auto key = *GenerateSigningKey();
  const std::string sec = dir / "k.key", pub = dir / "k.pub";
  ASSERT_TRUE(WriteSigningKey(sec, pub, key).ok());
  std::ifstream in(sec);
  std::string text((std::istreambuf_iterator<char>(in)), {});
  // Flip one hex digit of the stored public half: it no longer matches the seed.
  std::string damaged = text;
  damaged[damaged.size() - 3] = damaged[damaged.size() - 3] == '0' ? '1' : '0';
  std::ofstream(dir / "damaged.key") << damaged;
  EXPECT_TRUE(ReadSigningKey(dir / "damaged.key").status().IsCorruption());
  std::ofstream(dir / "short.key") << text.substr(0, 40);
  EXPECT_TRUE(ReadSigningKey(dir / "short.key").status().IsCorruption());
  std::ofstream(dir / "junk.pub") << "hello\n";
  EXPECT_TRUE(ReadVerifyKey(dir / "junk.pub").status().IsCorruption());
  // A public key file is not a signing key.
  EXPECT_TRUE(ReadSigningKey(pub).status().IsCorruption());
  SigningKeyPair mismatched{key.public_key, GenerateSigningKey()->secret_key};
  EXPECT_TRUE(WriteSigningKey(dir / "x.key", dir / "x.pub", mismatched).IsInvalidArgument());
}

}  // namespace
}  // namespace kd::update
