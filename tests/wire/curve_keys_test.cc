#include "wire/curve_keys.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sys/stat.h>

namespace kd::wire {
namespace {

namespace fs = std::filesystem;

class CurveKeysTest : public testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kd_wire_keys_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  static void WriteText(const std::string& path, const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    ::chmod(path.c_str(), mode);
  }
  std::string dir_;
};

TEST_F(CurveKeysTest, GenerateWriteRead) {
  Result<CurveKeyPair> keys = GenerateCurveKeyPair();
  ASSERT_TRUE(keys.ok()) << keys.status().ToString();
  EXPECT_EQ(keys->public_key.size(), 40u);
  EXPECT_EQ(keys->secret_key.size(), 40u);
  EXPECT_TRUE(IsValidZ85Key(keys->public_key));
  EXPECT_NE(keys->public_key, GenerateCurveKeyPair()->public_key);

  ASSERT_TRUE(WriteCurveKeyPair(Path("dev.key"), Path("dev.pub"), *keys).ok());
  struct stat st {};
  ASSERT_EQ(::stat(Path("dev.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(Path("dev.pub").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_FALSE(fs::exists(Path("dev.key.tmp")));

  Result<CurveKeyPair> back = ReadCurveKeyPair(Path("dev.key"));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->public_key, keys->public_key);
  EXPECT_EQ(back->secret_key, keys->secret_key);
  EXPECT_EQ(ReadCurvePublicKey(Path("dev.pub")).value(), keys->public_key);
  EXPECT_EQ(ReadCurvePublicKey(Path("dev.key")).value(), keys->public_key);
  // A public file is not a key pair.
  EXPECT_TRUE(ReadCurveKeyPair(Path("dev.pub")).status().code() == Status::Code::kPermissionDenied ||
              ReadCurveKeyPair(Path("dev.pub")).status().IsCorruption());
  ::chmod(Path("dev.pub").c_str(), 0600);
  EXPECT_TRUE(ReadCurveKeyPair(Path("dev.pub")).status().IsCorruption());

  // Overwriting replaces atomically.
  Result<CurveKeyPair> other = GenerateCurveKeyPair();
  ASSERT_TRUE(WriteCurveKeyPair(Path("dev.key"), "", *other).ok());
  EXPECT_EQ(ReadCurveKeyPair(Path("dev.key"))->secret_key, other->secret_key);
}

TEST_F(CurveKeysTest, RefusesBadInput) {
  CurveKeyPair a = GenerateCurveKeyPair().value();
  CurveKeyPair b = GenerateCurveKeyPair().value();
  EXPECT_TRUE(WriteCurveKeyPair(Path("x.key"), "", CurveKeyPair{a.public_key, b.secret_key}).IsInvalidArgument());
  EXPECT_TRUE(WriteCurveKeyPair(Path("x.key"), "", CurveKeyPair{"short", a.secret_key}).IsInvalidArgument());
  EXPECT_TRUE(ReadCurveKeyPair(Path("missing.key")).status().IsNotFound());

  // Too open permissions.
  ASSERT_TRUE(WriteCurveKeyPair(Path("open.key"), "", a).ok());
  ::chmod(Path("open.key").c_str(), 0644);
  EXPECT_EQ(ReadCurveKeyPair(Path("open.key")).status().code(), Status::Code::kPermissionDenied);

  // Mismatched pair in a file.
  WriteText(Path("mix.key"), "public-key = \"" + a.public_key + "\"\nsecret-key = \"" + b.secret_key + "\"\n", 0600);
  EXPECT_TRUE(ReadCurveKeyPair(Path("mix.key")).status().IsCorruption());
  EXPECT_TRUE(ReadCurvePublicKey(Path("mix.key")).status().IsCorruption());

  // Hand-written file: comments, blank lines, no quotes, secret only.
  WriteText(Path("hand.key"), "# mine\n\n  secret-key=" + a.secret_key + "  \r\n", 0600);
  Result<CurveKeyPair> hand = ReadCurveKeyPair(Path("hand.key"));
  ASSERT_TRUE(hand.ok()) << hand.status().ToString();
  EXPECT_EQ(hand->public_key, a.public_key);

  for (const std::string& bad :
       {std::string("garbage\n"), std::string("public-key = \"abc\"\n"),
        std::string("colour = \"" + a.public_key + "\"\n"), std::string(""),
        "public-key = \"" + a.public_key + "\"\npublic-key = \"" + a.public_key + "\"\n", std::string(100000, 'k')}) {
    WriteText(Path("bad.pub"), bad, 0600);
    EXPECT_TRUE(ReadCurvePublicKey(Path("bad.pub")).status().IsCorruption()) << bad.substr(0, 40);
  }
}

}  // namespace
}  // namespace kd::wire
