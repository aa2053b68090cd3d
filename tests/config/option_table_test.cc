// The key tables behind EdgeOptions and LearnerOptions, key by key: every key of every section reads
// a value, writes it back with ToToml and reads it again; an out-of-range value, a value of the
// wrong kind and an unknown key are errors naming the key. The keys come from the tables themselves
// (config/daemon_keys.h), so a key added to a table is tested here without editing this file.
#include <cstdint>
#include <limits>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/daemon_keys.h"
#include "config/daemon_options.h"

namespace kd::config {
namespace {

using internal::KeyInfo;
using internal::Limit;
using ::testing::HasSubstr;

// Valid documents given as overrides (so that a test may add any section in the file text).
// Insecure, with every key file named, so that flipping `insecure` off stays valid.
const std::vector<std::string> kEdgeBase = {"device_id=cam-1",
                                            "source.uri=/v.avi",
                                            "model.dir=/m",
                                            "learner.insecure=true",
                                            "learner.server_key=/s.pub",
                                            "learner.client_key=/c.key",
                                            "update.trusted_keys=[\"/t.pub\"]"};
const std::vector<std::string> kLearnerBase = {"store.path=/store",
                                               "server.insecure=true",
                                               "server.frames_endpoint=tcp://127.0.0.1:7700",
                                               "server.control_endpoint=tcp://127.0.0.1:7701",
                                               "server.secret_key=/k",
                                               "publish.signing_key=/s",
                                               "cluster.secret_file=/c"};
constexpr char kPath[] = "/cfg/kd.toml";  // named in messages; never opened

std::string PathOf(const KeyInfo& k) { return k.section.empty() ? k.name : k.section + "." + k.name; }

std::string Double(double v) {
  std::ostringstream s;
  s.precision(17);
  s << v;
  return s.str();
}

// Values to try for a key, as TOML: its limits' ends first, then values that satisfy the rules of
// the keys that have rules instead of limits. At least one must load and change the options.
std::vector<std::string> Candidates(const KeyInfo& k) {
  using T = KeyInfo::Type;
  using K = Limit::Kind;
  switch (k.type) {
    case T::kBool:
      return {"true", "false"};
    case T::kInt:
    case T::kInt64:
    case T::kUint64:
      if (k.limit.kind == K::kRange || k.limit.kind == K::kMultipleOf32)
        return {std::to_string(k.limit.ilo), std::to_string(k.limit.ihi)};
      if (k.limit.kind == K::kAtLeast) return {std::to_string(k.limit.ilo), std::to_string(k.limit.ilo + 1)};
      return {"1", "2", "7", "1000", "200000"};
    case T::kDouble:
      if (k.limit.kind == K::kRange) return {Double(k.limit.dlo), Double(k.limit.dhi)};
      return {"0.5", "1.0"};
    case T::kString:
      return {"\"/tmp/kd-x\"", "\"tcp://127.0.0.1:9\"",        "\"debug\"",         "\"cpu\"",
              "\"cam-7\"",     "\"ipc:///tmp/kd-admin.sock\"", "\"127.0.0.1:9999\""};
    case T::kStrings:
      return {"[\"/tmp/kd-a\", \"/tmp/kd-b\"]", "[\"none\", \"dark:0.5\"]"};
  }
  return {};
}

// Values outside a key's limit (none for keys whose rules are not plain limits).
std::vector<std::string> OutOfRange(const KeyInfo& k) {
  using K = Limit::Kind;
  std::vector<std::string> out;
  if (k.type == KeyInfo::Type::kDouble) {
    if (k.limit.kind == K::kRange) out = {Double(k.limit.dlo - 1), Double(k.limit.dhi + 1)};
  } else if (k.limit.kind == K::kRange || k.limit.kind == K::kAtLeast || k.limit.kind == K::kMultipleOf32) {
    out.push_back(std::to_string(k.limit.ilo - 1));
    if (k.limit.kind != K::kAtLeast && k.limit.ihi < std::numeric_limits<int64_t>::max())
      out.push_back(std::to_string(k.limit.ihi + 1));
  }
  return out;
}

// A TOML value of another kind than the key holds.
std::string WrongKind(const KeyInfo& k) { return k.type == KeyInfo::Type::kString ? "1" : "\"text\""; }

std::vector<std::string> With(std::vector<std::string> base, const std::string& override) {
  base.push_back(override);
  return base;
}

// The tests, for one document type: `parse` is ParseEdgeOptions or ParseLearnerOptions.
template <typename Options>
class KeyTableTest {
 public:
  using ParseFn = Result<Options> (*)(std::string_view, const std::string&, const std::vector<std::string>&);
  KeyTableTest(ParseFn parse, std::vector<KeyInfo> keys, std::vector<std::string> base)
      : parse_(parse), keys_(std::move(keys)), base_(std::move(base)) {}

  void EveryKeyRoundTrips() const {
    auto base = parse_("", kPath, base_);
    ASSERT_TRUE(base.ok()) << base.status().ToString();
    for (const KeyInfo& k : keys_) {
      if (k.in_array) continue;  // [[groups]] and [[devices]]: see ArrayKeysAreWritten
      SCOPED_TRACE(PathOf(k));
      bool changed = false;
      for (const std::string& value : Candidates(k)) {
        auto o = parse_("", kPath, With(base_, PathOf(k) + "=" + value));
        if (!o.ok() || *o == *base) continue;
        changed = true;
        const std::string toml = ToToml(*o);
        auto again = parse_(toml, kPath, {});
        ASSERT_TRUE(again.ok()) << again.status().ToString() << "\n" << toml;
        EXPECT_EQ(*again, *o) << toml;
        // Written in its own section.
        const size_t section = k.section.empty() ? 0 : toml.find("\n[" + k.section + "]\n");
        ASSERT_NE(section, std::string::npos) << toml;
        const size_t next = toml.find("\n[", section + 1);
        EXPECT_LT(toml.find("\n" + k.name + " = ", section), next) << toml;
        break;
      }
      EXPECT_TRUE(changed) << PathOf(k) << ": no candidate value loaded and changed the options";
    }
  }

  void OutOfRangeValuesNameTheKey() const {
    int tested = 0;
    for (const KeyInfo& k : keys_) {
      for (const std::string& value : OutOfRange(k)) {
        const std::string text = PathOf(k) + "=" + value;
        auto o = parse_("", kPath, With(base_, text));
        ASSERT_FALSE(o.ok()) << text;
        EXPECT_TRUE(o.status().IsInvalidArgument()) << o.status().ToString();
        EXPECT_THAT(o.status().message(), HasSubstr("override '" + text + "': " + PathOf(k) + ": out of range"));
        ++tested;
      }
    }
    EXPECT_GT(tested, 10);
  }

  void WrongKindsNameTheKey() const {
    for (const KeyInfo& k : keys_) {
      if (k.in_array) continue;
      const std::string text =
          (k.section.empty() ? "" : "[" + k.section + "]\n") + k.name + " = " + WrongKind(k) + "\n";
      // The base without its override of this key, which would win over the file.
      std::vector<std::string> base;
      for (const std::string& b : base_)
        if (b.rfind(PathOf(k) + "=", 0) != 0) base.push_back(b);
      auto o = parse_(text, kPath, base);
      ASSERT_FALSE(o.ok()) << text;
      EXPECT_TRUE(o.status().IsInvalidArgument());
      EXPECT_THAT(o.status().message(), HasSubstr(std::string(kPath) + ": " + PathOf(k) + ": wrong type: expected"));
    }
  }

  void UnknownKeysAreErrors() const {
    std::set<std::string> sections;
    for (const KeyInfo& k : keys_)
      if (!k.in_array) sections.insert(k.section);
    for (const std::string& section : sections) {
      const std::string key = (section.empty() ? "" : section + ".") + "no_such_key";
      auto o = parse_("", kPath, With(base_, key + "=1"));
      ASSERT_FALSE(o.ok()) << key;
      EXPECT_THAT(o.status().message(), HasSubstr("override '" + key + "=1': " + key + ": unknown key"));
      // The same in the file.
      const std::string text = (section.empty() ? "" : "[" + section + "]\n") + "no_such_key = 1\n";
      o = parse_(text, kPath, base_);
      ASSERT_FALSE(o.ok()) << text;
      EXPECT_THAT(o.status().message(), HasSubstr(std::string(kPath) + ": " + key + ": unknown key"));
    }
    // A section that no table lists.
    auto o = parse_("", kPath, With(base_, "no_such_section.key=1"));
    ASSERT_FALSE(o.ok());
    EXPECT_THAT(o.status().message(), HasSubstr("no_such_section: unknown key"));
  }

 private:
  ParseFn parse_;
  std::vector<KeyInfo> keys_;
  std::vector<std::string> base_;
};

KeyTableTest<EdgeOptions> Edge() { return {&ParseEdgeOptions, internal::EdgeKeys(), kEdgeBase}; }
KeyTableTest<LearnerOptions> Learner() { return {&ParseLearnerOptions, internal::LearnerKeys(), kLearnerBase}; }

TEST(OptionTableTest, TablesListTheDocumentedKeys) {
  // Spot checks that the listing is the tables' (names, sections, kinds, limits), not a copy.
  std::set<std::string> edge, learner;
  for (const KeyInfo& k : internal::EdgeKeys()) edge.insert(PathOf(k));
  for (const KeyInfo& k : internal::LearnerKeys()) learner.insert(PathOf(k));
  // Every line ToToml writes is a key of a table, and the other way round.
  auto o = ParseEdgeOptions("", kPath, kEdgeBase);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  std::istringstream lines(ToToml(*o));
  size_t written = 0;
  for (std::string line; std::getline(lines, line);) written += line.find(" = ") != std::string::npos;
  EXPECT_EQ(written, edge.size());
  EXPECT_TRUE(edge.contains("device_id") && edge.contains("uplink.resend_after_ms") &&
              edge.contains("output.log_level"));
  EXPECT_TRUE(learner.contains("rollout.auto") && learner.contains("groups.devices") && learner.contains("log.level"));
  for (const KeyInfo& k : internal::LearnerKeys()) {
    if (PathOf(k) == "server.credits") {
      EXPECT_EQ(k.type, KeyInfo::Type::kInt);
      EXPECT_EQ(k.limit.kind, Limit::Kind::kRange);
      EXPECT_EQ(k.limit.ilo, 1);
      EXPECT_EQ(k.limit.ihi, 4096);
    }
    EXPECT_EQ(k.in_array, k.section == "groups" || k.section == "devices") << PathOf(k);
  }
}

TEST(OptionTableTest, EveryEdgeKeyRoundTripsThroughToToml) { Edge().EveryKeyRoundTrips(); }
TEST(OptionTableTest, EveryLearnerKeyRoundTripsThroughToToml) { Learner().EveryKeyRoundTrips(); }
TEST(OptionTableTest, OutOfRangeEdgeValuesNameTheKey) { Edge().OutOfRangeValuesNameTheKey(); }
TEST(OptionTableTest, OutOfRangeLearnerValuesNameTheKey) { Learner().OutOfRangeValuesNameTheKey(); }
TEST(OptionTableTest, WrongKindsOfEdgeValuesNameTheKey) { Edge().WrongKindsNameTheKey(); }
TEST(OptionTableTest, WrongKindsOfLearnerValuesNameTheKey) { Learner().WrongKindsNameTheKey(); }
TEST(OptionTableTest, UnknownEdgeKeysAreErrors) { Edge().UnknownKeysAreErrors(); }
TEST(OptionTableTest, UnknownLearnerKeysAreErrors) { Learner().UnknownKeysAreErrors(); }

TEST(OptionTableTest, ArrayKeysAreWritten) {
  auto o = ParseLearnerOptions("", kPath, With(kLearnerBase, "groups=[{name=\"g\", devices=[\"cam-1\"]}]"));
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  o->devices.push_back({"cam-1", "/cam-1.pub"});
  const std::string toml = ToToml(*o);
  for (const KeyInfo& k : internal::LearnerKeys()) {
    if (!k.in_array) continue;
    const size_t at = toml.find("[[" + k.section + "]]\n");
    ASSERT_NE(at, std::string::npos) << toml;
    EXPECT_NE(toml.find("\n" + k.name + " = ", at), std::string::npos) << PathOf(k) << "\n" << toml;
  }
  auto again = ParseLearnerOptions(toml, kPath, {});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *o);
  // An unknown key in an element names the element.
  auto bad = ParseLearnerOptions("", kPath, With(kLearnerBase, "devices=[{id=\"d\", key=\"k\", no_such_key=1}]"));
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("devices[0].no_such_key: unknown key"));
}

}  // namespace
}  // namespace kd::config
