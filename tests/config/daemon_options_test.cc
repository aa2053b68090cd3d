#include "config/daemon_options.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace kd::config {
namespace {

namespace fs = std::filesystem;

using ::testing::HasSubstr;

// The source tree comes from the build (__FILE__ may be relative to a build directory).
const fs::path kExamples = fs::path(KD_SOURCE_DIR) / "config" / "examples";

// Minimal valid configs (plaintext transport, so no CURVE key files; updates are always signed).
constexpr char kEdgeMin[] = R"(device_id = "cam-1"
[source]
uri = "video.avi"
[model]
dir = "slots"
[learner]
insecure = true
[update]
trusted_keys = ["t.pub"]
)";
constexpr char kLearnerMin[] = R"([server]
frames_endpoint = "tcp://127.0.0.1:7700"
control_endpoint = "tcp://127.0.0.1:7701"
insecure = true
[store]
path = "store"
[publish]
signing_key = "s.key"
)";

// `text` with its first `from` replaced by `to`.
std::string Replaced(std::string text, const std::string& from, const std::string& to) {
  const auto at = text.find(from);
  KD_CHECK(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

class DaemonOptionsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kd_daemon_options_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p.string();
  }
  Status EdgeError(const std::string& text, const std::vector<std::string>& overrides = {}) {
    auto r = LoadEdgeOptions(Write("edge.toml", text), overrides);
    return r.ok() ? Status::Ok() : r.status();
  }
  Status LearnerError(const std::string& text, const std::vector<std::string>& overrides = {}) {
    auto r = LoadLearnerOptions(Write("learner.toml", text), overrides);
    return r.ok() ? Status::Ok() : r.status();
  }

  fs::path dir_;
};

// Expects an InvalidArgument whose message contains every one of `parts`.
void ExpectError(const Status& s, const std::vector<std::string>& parts) {
  ASSERT_FALSE(s.ok()) << "expected an error containing " << parts[0];
  EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
  for (const auto& p : parts) EXPECT_THAT(s.message(), HasSubstr(p));
}

TEST_F(DaemonOptionsTest, EdgeDefaultsAndRequiredKeys) {
  auto o = LoadEdgeOptions("", {"device_id=cam1", "source.uri=/v.avi", "model.dir=/m", "learner.insecure=true",
                                "update.trusted_keys=[\"/t.pub\"]"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->device_id, "cam1");
  EXPECT_EQ(o->source.uri, "/v.avi");
  EXPECT_EQ(o->model.dir, "/m");
  EdgeSourceOptions source;
  source.uri = "/v.avi";
  EXPECT_EQ(o->source, source);
  EXPECT_EQ(o->uplink, EdgeUplinkOptions{});
  EdgeUpdateOptions update;
  update.trusted_keys = {"/t.pub"};  // required, insecure or not: updates are always signed
  EXPECT_EQ(o->update, update);
  EXPECT_EQ(o->output, EdgeOutputOptions{});
  EXPECT_EQ(o->uplink.kbps, 2000);
  EXPECT_EQ(o->uplink.max_jpeg_bytes, 1048576);
  EXPECT_EQ(o->learner.frames_endpoint, "tcp://127.0.0.1:7700");
  EXPECT_EQ(o->learner.timeout_ms, 6000);
  EXPECT_EQ(o->model.bootstrap_version, 1u);
  EXPECT_EQ(o->output.detections, "-");
  EXPECT_EQ(o->http.listen, "127.0.0.1:9471");  // loopback: the HTTP server has no authentication
  auto off = LoadEdgeOptions("", {"device_id=cam1", "source.uri=/v.avi", "model.dir=/m", "learner.insecure=true",
                                  "update.trusted_keys=[\"/t.pub\"]", "http.listen=\"\""});
  ASSERT_TRUE(off.ok()) << off.status().ToString();
  EXPECT_EQ(off->http.listen, "");
  ExpectError(EdgeError(kEdgeMin, {"http.listen=\"9471\""}), {"http.listen", "is not host:port"});
  ExpectError(EdgeError(kEdgeMin, {"http.listen=\"[::1]:99999\""}), {"http.listen", "0..65535"});

  ExpectError(LoadEdgeOptions("", {}).status(), {"(no config file)", "device_id", "missing required key"});
  ExpectError(EdgeError("[source]\nuri = \"v\"\n[model]\ndir = \"m\"\n[learner]\ninsecure = true\n"),
              {"edge.toml", "device_id", "missing"});
  ExpectError(EdgeError("device_id = \"c\"\n[model]\ndir = \"m\"\n[learner]\ninsecure = true\n"),
              {"source.uri", "missing"});
  ExpectError(EdgeError("device_id = \"c\"\n[source]\nuri = \"v\"\n[learner]\ninsecure = true\n"),
              {"model.dir", "missing"});
  ExpectError(EdgeError(kEdgeMin, {"device_id=bad/id"}), {"device_id", "[A-Za-z0-9._-]"});
  ExpectError(EdgeError(kEdgeMin, {"device_id=" + std::string(65, 'a')}), {"device_id"});
}

TEST_F(DaemonOptionsTest, LearnerDefaultsAndRequiredKeys) {
  auto o = LoadLearnerOptions(Write("learner.toml", kLearnerMin), {});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->store.path, (dir_ / "store").string());
  EXPECT_EQ(o->store.max_bytes, 8ull << 30);
  EXPECT_EQ(o->server.admin_endpoint, "ipc://" + (dir_ / "store" / "admin.sock").string());
  EXPECT_EQ(o->teacher, LearnerTeacherOptions{});
  EXPECT_EQ(o->training, LearnerTrainingOptions{});
  EXPECT_EQ(o->gate, LearnerGateOptions{});
  LearnerPublishOptions publish;
  publish.signing_key = (dir_ / "s.key").string();  // required, insecure or not
  EXPECT_EQ(o->publish, publish);
  EXPECT_EQ(o->rollout, LearnerRolloutOptions{});
  EXPECT_TRUE(o->rollout.auto_start);
  EXPECT_EQ(o->http.listen, "127.0.0.1:9470");
  EXPECT_TRUE(o->groups.empty());
  EXPECT_TRUE(o->devices.empty());
  EXPECT_EQ(o->log.level, "info");
  ExpectError(LoadLearnerOptions("", {"server.insecure=true"}).status(), {"store.path", "missing required key"});
  EXPECT_TRUE(LoadLearnerOptions("/nonexistent/kdlearnd.toml", {}).status().IsNotFound());
}

TEST_F(DaemonOptionsTest, ExamplesLoad) {
  auto edge = LoadEdgeOptions((kExamples / "kdedge.toml").string(), {});
  ASSERT_TRUE(edge.ok()) << edge.status().ToString();
  EXPECT_EQ(edge->device_id, "cam-01");
  EXPECT_EQ(edge->source.uri,
            (kExamples.parent_path().parent_path() / "out" / "vtest.avi").lexically_normal().string());
  EXPECT_EQ(edge->uplink, EdgeUplinkOptions{});  // the example documents the defaults
  EXPECT_EQ(edge->output, EdgeOutputOptions{});
  EXPECT_FALSE(edge->learner.insecure);

  auto learner = LoadLearnerOptions((kExamples / "kdlearnd.toml").string(), {});
  ASSERT_TRUE(learner.ok()) << learner.status().ToString();
  EXPECT_EQ(learner->store.path, "/var/lib/kdlearnd/store");
  EXPECT_EQ(learner->server.admin_endpoint, "ipc:///var/lib/kdlearnd/store/admin.sock");
  EXPECT_EQ(learner->training, LearnerTrainingOptions{});
  EXPECT_EQ(learner->gate, LearnerGateOptions{});
  EXPECT_EQ(learner->schedule, LearnerScheduleOptions{});
  EXPECT_EQ(learner->cluster, LearnerClusterOptions{});
  EXPECT_EQ(learner->publish.chunk_bytes, LearnerPublishOptions{}.chunk_bytes);
  EXPECT_TRUE(learner->groups.empty());
  ASSERT_EQ(learner->devices.size(), 1u);

  // The distill recipe format referenced by training.recipe is config/examples/distill.toml.
  auto with_recipe = LoadLearnerOptions((kExamples / "kdlearnd.toml").string(), {"training.recipe=x/distill.toml"});
  ASSERT_TRUE(with_recipe.ok());
  EXPECT_EQ(with_recipe->training.recipe, (fs::current_path() / "x" / "distill.toml").string());
}

TEST_F(DaemonOptionsTest, ClusterNeedsASecretANumericListenAddressAndABeatWellInsideTheTimeout) {
  auto ok = LoadLearnerOptions((kExamples / "kdlearnd.toml").string(),
                               {"cluster.enabled=true", "cluster.secret_file=/etc/kd/cluster.secret"});
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE(ok->cluster.enabled);
  auto no_secret = LoadLearnerOptions((kExamples / "kdlearnd.toml").string(), {"cluster.enabled=true"});
  ASSERT_FALSE(no_secret.ok());
  EXPECT_NE(no_secret.status().message().find("cluster.secret_file"), std::string::npos)
      << no_secret.status().ToString();
  auto slow_beat = LoadLearnerOptions((kExamples / "kdlearnd.toml").string(), {"cluster.heartbeat_s=5"});
  ASSERT_FALSE(slow_beat.ok());
  EXPECT_NE(slow_beat.status().message().find("cluster.heartbeat_s"), std::string::npos);
  auto backoff = LoadLearnerOptions((kExamples / "kdlearnd.toml").string(), {"schedule.backoff_max_s=10"});
  ASSERT_FALSE(backoff.ok());
  EXPECT_NE(backoff.status().message().find("schedule.backoff_max_s"), std::string::npos);
}

TEST_F(DaemonOptionsTest, UnknownKeysAreErrorsNamingThem) {
  ExpectError(EdgeError(std::string("colour = 1\n") + kEdgeMin), {"edge.toml", "colour", "unknown key"});
  ExpectError(EdgeError(std::string(kEdgeMin) + "[uplink]\nkbpz = 1\n"), {"edge.toml", "uplink.kbpz", "unknown key"});
  ExpectError(EdgeError(std::string(kEdgeMin) + "[upload]\nkbps = 1\n"), {"upload", "unknown key"});
  ExpectError(EdgeError(kEdgeMin, {"uplink.kbpz=5"}), {"override 'uplink.kbpz=5'", "uplink.kbpz", "unknown key"});
  ExpectError(EdgeError(kEdgeMin, {"nonsense=5"}), {"nonsense", "unknown key"});
  ExpectError(LearnerError(std::string(kLearnerMin) + "[[groups]]\nname = \"g\"\ndevices = [\"a\"]\ncolor = 1\n"),
              {"groups[0].color", "unknown key"});
  ExpectError(LearnerError(std::string(kLearnerMin) + "[log]\nlevle = \"info\"\n"), {"log.levle"});
}

TEST_F(DaemonOptionsTest, WrongTypesAreErrors) {
  ExpectError(EdgeError(std::string(kEdgeMin) + "[uplink]\nkbps = \"fast\"\n"),
              {"edge.toml", "uplink.kbps", "wrong type", "expected a number, got a string"});
  ExpectError(EdgeError(std::string(kEdgeMin) + "[uplink]\njpeg_quality = 85.5\n"),
              {"uplink.jpeg_quality", "expected an integer"});
  ExpectError(EdgeError(std::string(kEdgeMin) + "[output]\nlog_level = 3\n"), {"output.log_level", "wrong type"});
  ExpectError(EdgeError("uplink = 5\n" + std::string(kEdgeMin)), {"uplink", "wrong type", "table"});
  ExpectError(EdgeError(Replaced(kEdgeMin, "trusted_keys = [\"t.pub\"]", "trusted_keys = \"k.pub\"")),
              {"update.trusted_keys", "array of strings"});
  ExpectError(EdgeError(Replaced(kEdgeMin, "trusted_keys = [\"t.pub\"]", "trusted_keys = [\"k.pub\", 3]")),
              {"update.trusted_keys[1]", "wrong type"});
  ExpectError(EdgeError(R"(device_id = 7
[source]
uri = "v"
[model]
dir = "m"
[learner]
insecure = true
)"),
              {"device_id", "wrong type"});
  ExpectError(EdgeError(kEdgeMin, {"source.loop=1"}), {"source.loop", "expected a boolean"});
  ExpectError(LearnerError("groups = 3\n" + std::string(kLearnerMin)), {"groups", "array of tables"});
  ExpectError(LearnerError(std::string(kLearnerMin) + "[store]\n"), {"TOML parse error"});  // table defined twice
  ExpectError(LearnerError("[store\n"), {"learner.toml:1", "TOML parse error"});
  EXPECT_TRUE(LoadLearnerOptions((dir_ / "missing.toml").string(), {}).status().IsNotFound());
}

TEST_F(DaemonOptionsTest, OutOfRangeValuesNameTheAllowedRange) {
  ExpectError(EdgeError(kEdgeMin, {"uplink.kbps=0"}), {"uplink.kbps", "out of range", "[1, 1000000]"});
  ExpectError(EdgeError(std::string(kEdgeMin) + "[uplink]\nkbps = 0.5\n"), {"edge.toml", "uplink.kbps", "0.5"});
  ExpectError(EdgeError(kEdgeMin, {"model.threads=0"}), {"model.threads", "[1, 64]"});
  ExpectError(EdgeError(kEdgeMin, {"model.score_threshold=1.5"}), {"model.score_threshold", "[0, 1]"});
  ExpectError(EdgeError(kEdgeMin, {"uplink.max_long_side=32"}), {"uplink.max_long_side", "[64, 8192]"});
  EXPECT_TRUE(EdgeError(kEdgeMin, {"uplink.max_long_side=0"}).ok());
  ExpectError(EdgeError(kEdgeMin, {"uplink.jpeg_quality=99999999999"}), {"uplink.jpeg_quality", "out of range"});
  ExpectError(EdgeError(kEdgeMin, {"learner.timeout_ms=1000"}), {"learner.timeout_ms", "heartbeat_ms"});
  ExpectError(EdgeError(kEdgeMin, {"source.end=5", "source.begin=10"}), {"source.end", "> source.begin"});
  ExpectError(EdgeError(kEdgeMin, {"source.passes=-1"}), {"source.passes", ">= 0"});
  ExpectError(EdgeError(kEdgeMin, {"model.bootstrap_version=0"}),
              {"model.bootstrap_version", "[1, 9223372036854775807]"});
  ExpectError(EdgeError(kEdgeMin, {"model.bootstrap_version=-3"}), {"model.bootstrap_version", "out of range"});
  ExpectError(EdgeError(kEdgeMin, {"update.download_window=65"}), {"update.download_window", "[1, 64]"});
  ExpectError(EdgeError(kEdgeMin, {"output.log_level=verbose"}), {"output.log_level", "trace, debug"});
  ExpectError(EdgeError(kEdgeMin, {"source.fps=nan"}), {"source.fps", "out of range"});
  ExpectError(LearnerError(kLearnerMin, {"teacher.long_side=500"}), {"teacher.long_side", "multiple of 32"});
  ExpectError(LearnerError(kLearnerMin, {"gate.min_holdout=200"}), {"gate.min_holdout", "holdout_window = 100"});
  ExpectError(LearnerError(kLearnerMin, {"publish.delta_max_fraction=0"}), {"publish.delta_max_fraction", "(0, 1]"});
  ExpectError(LearnerError(kLearnerMin, {"publish.delta_wide_fraction=1.5"}), {"publish.delta_wide_fraction"});
  ExpectError(LearnerError(kLearnerMin, {"training.device=gpu"}), {"training.device", "cuda:N"});
  EXPECT_TRUE(LearnerError(kLearnerMin, {"training.device=cuda:1"}).ok());
  ExpectError(LearnerError(kLearnerMin, {"store.max_bytes=1024"}), {"store.max_bytes", "[4194304, "});
  ExpectError(LearnerError(kLearnerMin, {"server.credits=5000"}), {"server.credits", "[1, 4096]"});
  ExpectError(LearnerError(kLearnerMin, {"server.admin_endpoint=tcp://*:9"}), {"server.admin_endpoint", "ipc://"});
  ExpectError(LearnerError(kLearnerMin, {"rollout.canary=a b"}), {"rollout.canary"});

  // Validate also checks options edited in code.
  auto o = LoadEdgeOptions(Write("edge.toml", kEdgeMin), {});
  ASSERT_TRUE(o.ok());
  EXPECT_TRUE(Validate(*o).ok());
  o->uplink.kbps = 0;
  ExpectError(Validate(*o), {"uplink.kbps", "[1, 1000000]"});
  o->uplink.kbps = 2000;
  o->model.bootstrap_version = ~0ull;  // would not load back from ToToml
  ExpectError(Validate(*o), {"model.bootstrap_version", "9223372036854775807"});
  EXPECT_FALSE(Validate(LearnerOptions{}).ok());
}

TEST_F(DaemonOptionsTest, ParseFromTextIsLoadWithoutTheFile) {
  // Same options as loading the file, relative paths against the named file's directory.
  const std::string path = (dir_ / "conf" / "edge.toml").string();
  auto parsed = ParseEdgeOptions(kEdgeMin, path, {"uplink.kbps=500"});
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  auto loaded = LoadEdgeOptions(Write("conf/edge.toml", kEdgeMin), {"uplink.kbps=500"});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(*parsed, *loaded);
  EXPECT_EQ(parsed->model.dir, (dir_ / "conf" / "slots").string());
  auto learner = ParseLearnerOptions(kLearnerMin, (dir_ / "learner.toml").string(), {});
  ASSERT_TRUE(learner.ok()) << learner.status().ToString();
  EXPECT_EQ(learner->store.path, (dir_ / "store").string());
  // Errors name the path; nothing is opened (the file does not exist).
  ExpectError(ParseEdgeOptions("device_id = ", "/nonexistent/e.toml", {}).status(),
              {"/nonexistent/e.toml:1:", "TOML parse error"});
  ExpectError(ParseLearnerOptions("", "/nonexistent/l.toml", {}).status(), {"store.path", "missing required key"});
}

// Found by fuzz/config_fuzz.cc: a bare-string override with bytes that are not UTF-8 loaded, and
// ToToml then wrote a config that does not load back. Overrides must be UTF-8, like the file.
TEST_F(DaemonOptionsTest, OverridesMustBeUtf8) {
  const std::string path = (dir_ / "edge.toml").string();
  for (const std::string& bad : {std::string("learner.frames_endpoint=ip\xe8"
                                             "c://x"),
                                 std::string("device_id=cam\xff"),
                                 std::string("source.uri=/v/\xed\xa0\x80.avi"),  // a surrogate
                                 std::string("source.uri=/v/\xc0\xaf.avi"),      // overlong '/'
                                 std::string("uplink.kbps\xf5=1")}) {
    ExpectError(ParseEdgeOptions(kEdgeMin, path, {bad}).status(), {"not valid UTF-8"});
  }
  // UTF-8 outside ASCII is fine, and round-trips through ToToml.
  auto o = ParseEdgeOptions(kEdgeMin, path, {"source.uri=/videos/caf\xc3\xa9 \xf0\x9f\x93\xb7.avi"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->source.uri, "/videos/caf\xc3\xa9 \xf0\x9f\x93\xb7.avi");
  auto again = ParseEdgeOptions(ToToml(*o), path, {});
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *o);
}

TEST_F(DaemonOptionsTest, OverridesWinOverFileInOrder) {
  const std::string file = std::string(kEdgeMin) + "[uplink]\nkbps = 100.0\nmax_fps = 5\n";
  auto o = LoadEdgeOptions(Write("edge.toml", file), {"uplink.kbps=500", "model.threads=4", "model.threads=8"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->uplink.kbps, 500);
  EXPECT_EQ(o->uplink.max_fps, 5);  // from the file (an integer is accepted for a float key)
  EXPECT_EQ(o->model.threads, 8);   // the last override wins
  // An inline table overrides key by key; the file's other keys in the section stay.
  o = LoadEdgeOptions(Write("edge.toml", file), {"uplink={kbps = 300.0}"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->uplink.kbps, 300);
  EXPECT_EQ(o->uplink.max_fps, 5);
  ExpectError(EdgeError(file, {"uplinkkbps"}), {"section.key=value"});
  ExpectError(EdgeError(file, {"uplink..kbps=1"}), {"empty key"});
  ExpectError(EdgeError(file, {"device_id.x=1"}), {"device_id", "not a table"});
  ExpectError(LearnerError(kLearnerMin, {"groups=[{name=\"g\", devices=[\"a\"]}]", "groups.name=x"}),
              {"groups", "not a table"});
}

TEST_F(DaemonOptionsTest, BareStringOverrides) {
  auto o = LoadEdgeOptions(Write("edge.toml", kEdgeMin),
                           {"learner.frames_endpoint=tcp://10.0.0.1:7700", "device_id=123", "output.log_level=debug",
                            "learner.control_endpoint=\"tcp://quoted:1\"", "source.uri=rtsp://cam/stream",
                            "source.pass_effects=[\"none\", \"dark:0.5\"]", "model.bootstrap = 2024-01-01 "});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->learner.frames_endpoint, "tcp://10.0.0.1:7700");
  EXPECT_EQ(o->learner.control_endpoint, "tcp://quoted:1");
  EXPECT_EQ(o->device_id, "123");  // parses as an integer, taken verbatim by a string key
  EXPECT_EQ(o->output.log_level, "debug");
  EXPECT_EQ(o->source.uri, "rtsp://cam/stream");
  EXPECT_EQ(o->source.pass_effects, (std::vector<std::string>{"none", "dark:0.5"}));
  // A TOML date, taken verbatim by a string key (and, being a path key, resolved against the CWD).
  EXPECT_EQ(o->model.bootstrap, (fs::current_path() / "2024-01-01").string());
}

TEST_F(DaemonOptionsTest, RelativePathsResolveAgainstTheFileOrTheCwd) {
  const std::string path = Write("conf/edge.toml", R"(device_id = "cam-1"
[source]
uri = "videos/v.avi"
[model]
dir = "slots"
bootstrap = "/abs/factory.kdw"
[learner]
frames_endpoint = "ipc://run/frames.sock"
control_endpoint = "tcp://host:7701"
server_key = "keys/../keys/server.pub"
client_key = "keys/cam.key_secret"
[update]
trusted_keys = ["keys/pub1", "/etc/pub2"]
[output]
detections = "det.jsonl"
)");
  const fs::path base = dir_ / "conf";
  auto o = LoadEdgeOptions(path, {"model.bootstrap=rel/factory.kdw"});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->source.uri, (base / "videos/v.avi").string());
  EXPECT_EQ(o->model.dir, (base / "slots").string());
  EXPECT_EQ(o->model.bootstrap, (fs::current_path() / "rel/factory.kdw").string());  // override: the CWD
  EXPECT_EQ(o->learner.frames_endpoint, "ipc://" + (base / "run/frames.sock").string());
  EXPECT_EQ(o->learner.control_endpoint, "tcp://host:7701");
  EXPECT_EQ(o->learner.server_key, (base / "keys/server.pub").string());
  EXPECT_EQ(o->learner.client_key, (base / "keys/cam.key_secret").string());
  EXPECT_EQ(o->update.trusted_keys, (std::vector<std::string>{(base / "keys/pub1").string(), "/etc/pub2"}));
  EXPECT_EQ(o->output.detections, (base / "det.jsonl").string());

  // Special values are not paths.
  o = LoadEdgeOptions(path, {"source.uri=v4l2:0", "output.detections=-"});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->source.uri, "v4l2:0");
  EXPECT_EQ(o->output.detections, "-");
  o = LoadEdgeOptions(path, {"source.uri=/dev/video0", "output.detections=\"\""});
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->source.uri, "/dev/video0");
  EXPECT_EQ(o->output.detections, "");

  auto l = LoadLearnerOptions(Write("conf/learner.toml", R"([server]
secret_key = "k/server.key_secret"
[store]
path = "data/store"
[training]
recipe = "distill.toml"
[publish]
signing_key = "k/sign"
[[devices]]
id = "cam-1"
key = "k/cam-1.pub"
)"),
                              {"devices=[{id=\"cam-2\", key=\"cam-2.pub\"}]"});
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_EQ(l->server.secret_key, (base / "k/server.key_secret").string());
  EXPECT_EQ(l->store.path, (base / "data/store").string());
  EXPECT_EQ(l->training.recipe, (base / "distill.toml").string());
  EXPECT_EQ(l->publish.signing_key, (base / "k/sign").string());
  EXPECT_EQ(l->server.admin_endpoint, "ipc://" + (base / "data/store/admin.sock").string());
  ASSERT_EQ(l->devices.size(), 1u);  // the override replaced the array
  EXPECT_EQ(l->devices[0].key, (fs::current_path() / "cam-2.pub").string());
}

TEST_F(DaemonOptionsTest, GroupsAndDevices) {
  const std::string groups = std::string(kLearnerMin) + R"(
[[groups]]
name = "lobby"
devices = ["cam-1", "cam-2"]
[[groups]]
name = "street"
devices = ["cam-3"]
[[devices]]
id = "cam-1"
key = "cam-1.pub"
)";
  auto o = LoadLearnerOptions(Write("learner.toml", groups), {});
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  ASSERT_EQ(o->groups.size(), 2u);
  EXPECT_EQ(o->groups[0].name, "lobby");
  EXPECT_EQ(o->groups[0].devices, (std::vector<std::string>{"cam-1", "cam-2"}));
  EXPECT_EQ(o->devices[0].key, (dir_ / "cam-1.pub").string());

  ExpectError(LearnerError(std::string(kLearnerMin) + R"(
[[groups]]
name = "a"
devices = ["x", "y"]
[[groups]]
name = "b"
devices = ["y"]
)"),
              {"groups[1].devices[0]", "\"y\" is in two groups: \"a\" and \"b\""});
  ExpectError(LearnerError(std::string(kLearnerMin) + "[[groups]]\nname = \"a\"\ndevices = [\"x\", \"x\"]\n"),
              {"groups[0].devices[1]", "listed twice"});
  ExpectError(LearnerError(std::string(kLearnerMin) + "[[groups]]\nname = \"a\"\ndevices = []\n"),
              {"groups[0].devices", "at least one device"});
  ExpectError(LearnerError(std::string(kLearnerMin) + "[[groups]]\nname = \"a b\"\ndevices = [\"x\"]\n"),
              {"groups[0].name"});
  ExpectError(
      LearnerError(std::string(kLearnerMin) +
                   "[[groups]]\nname = \"a\"\ndevices = [\"x\"]\n[[groups]]\nname = \"a\"\ndevices = [\"y\"]\n"),
      {"groups[1].name", "duplicate group name"});
  ExpectError(LearnerError(std::string(kLearnerMin) + "[[devices]]\nid = \"d\"\n[[devices]]\nid = \"d\"\n"),
              {"devices[1].id", "duplicate device id"});
  ExpectError(LearnerError(kLearnerMin, {"groups=[{name=\"g\", devices=[\"a\", \"a\"]}]"}),
              {"override 'groups=", "groups[0].devices[1]", "listed twice"});
}

TEST_F(DaemonOptionsTest, PassEffects) {
  for (const char* good : {"none", "dark:0.4", "dark:1", "bright:1", "bright:4", "blur:3", "blur:31"}) {
    EXPECT_TRUE(ParsePassEffect(good).ok()) << good;
  }
  auto dark = ParsePassEffect("dark:0.25");
  ASSERT_TRUE(dark.ok());
  EXPECT_EQ(dark->kind, PassEffect::Kind::kDark);
  EXPECT_EQ(dark->factor, 0.25);
  EXPECT_EQ(ParsePassEffect("blur:7")->kernel, 7);
  for (const char* bad : {"dark:0", "dark:1.5", "dark:", "dark", "dark:x", "dark:0.5x", "bright:0.9", "bright:5",
                          "blur:4", "blur:1", "blur:33", "blur:3.0", "sepia", "none:1", ""}) {
    EXPECT_TRUE(ParsePassEffect(bad).status().IsInvalidArgument()) << bad;
  }
  ExpectError(EdgeError(kEdgeMin, {"source.pass_effects=[\"none\", \"blur:4\"]"}),
              {"source.pass_effects[1]", "\"blur:4\"", "odd"});
  ExpectError(EdgeError(std::string(kEdgeMin) + "[source]\n"), {"TOML parse error"});
  ExpectError(EdgeError(R"(device_id = "c"
[model]
dir = "m"
[learner]
insecure = true
[source]
uri = "v"
pass_effects = ["dark:2"]
)"),
              {"edge.toml", "source.pass_effects[0]", "(0, 1]"});
}

TEST_F(DaemonOptionsTest, KeysAreRequiredUnlessInsecure) {
  const std::string base = "device_id = \"c\"\n[source]\nuri = \"v\"\n[model]\ndir = \"m\"\n";
  ExpectError(EdgeError(base), {"learner.server_key", "insecure"});
  ExpectError(EdgeError(base, {"learner.server_key=s.pub"}), {"learner.client_key", "insecure"});
  ExpectError(EdgeError(base, {"learner.server_key=s.pub", "learner.client_key=c.key"}),
              {"update.trusted_keys", "insecure"});
  EXPECT_TRUE(
      EdgeError(base, {"learner.server_key=s.pub", "learner.client_key=c.key", "update.trusted_keys=[\"t.pub\"]"})
          .ok());
  // Plaintext transport does not make unsigned updates acceptable (issue 12, defect 6).
  ExpectError(EdgeError(base, {"learner.insecure=true"}), {"update.trusted_keys", "always signed"});
  EXPECT_TRUE(EdgeError(base, {"learner.insecure=true", "update.trusted_keys=[\"t.pub\"]"}).ok());
  // CURVE needs both halves, insecure or not.
  ExpectError(EdgeError(base, {"learner.insecure=true", "learner.server_key=s.pub"}), {"learner.client_key"});

  const std::string lbase = "[store]\npath = \"s\"\n";
  ExpectError(LearnerError(lbase), {"server.secret_key", "insecure"});
  ExpectError(LearnerError(lbase, {"server.secret_key=k"}), {"publish.signing_key", "insecure"});
  EXPECT_TRUE(LearnerError(lbase, {"server.secret_key=k", "publish.signing_key=s"}).ok());
  ExpectError(LearnerError(lbase + "[[devices]]\nid = \"d\"\n", {"server.secret_key=k", "publish.signing_key=s"}),
              {"devices[0].key"});
  // Insecure: plaintext on loopback only, and still a signing key (issue 12, defect 6).
  const std::vector<std::string> insecure = {"server.insecure=true", "publish.signing_key=s",
                                             "server.frames_endpoint=tcp://127.0.0.1:7700",
                                             "server.control_endpoint=tcp://[::1]:7701"};
  EXPECT_TRUE(LearnerError(lbase + "[[devices]]\nid = \"d\"\n", insecure).ok());
  ExpectError(LearnerError(lbase, {"server.insecure=true", "server.frames_endpoint=tcp://127.0.0.1:7700",
                                   "server.control_endpoint=tcp://127.0.0.1:7701"}),
              {"publish.signing_key", "always signed"});
  ExpectError(LearnerError(lbase, {"server.insecure=true", "publish.signing_key=s"}),
              {"server.frames_endpoint", "tcp://*:7700", "loopback"});
  auto all_interfaces = insecure;
  all_interfaces.push_back("server.control_endpoint=tcp://0.0.0.0:7701");
  ExpectError(LearnerError(lbase, all_interfaces), {"server.control_endpoint", "loopback"});
}

TEST_F(DaemonOptionsTest, ToTomlRoundTrips) {
  auto edge = LoadEdgeOptions((kExamples / "kdedge.toml").string(),
                              {"source.pass_effects=[\"none\", \"dark:0.3\", \"blur:5\"]", "source.fps=12.345678901",
                               "uplink.kbps=1.1", "uplink.max_fps=1e-2", "source.loop=true", "source.end=1000",
                               "model.bootstrap=we\"ird\\path\ttab", "output.detections=\"\""});
  ASSERT_TRUE(edge.ok()) << edge.status().ToString();
  const std::string edge_toml = ToToml(*edge);
  auto edge2 = LoadEdgeOptions(Write("edge_effective.toml", edge_toml), {});
  ASSERT_TRUE(edge2.ok()) << edge2.status().ToString() << "\n" << edge_toml;
  EXPECT_EQ(*edge2, *edge) << edge_toml;
  EXPECT_THAT(edge_toml, HasSubstr("[uplink]\nkbps = 1.1\n"));
  EXPECT_THAT(edge_toml, HasSubstr("max_jpeg_bytes = 1048576\n"));

  auto learner = LoadLearnerOptions(
      (kExamples / "kdlearnd.toml").string(),
      {"groups=[{name=\"lobby\", devices=[\"cam-01\", \"cam-02\"]}, {name=\"x\", "
       "devices=[\"cam-03\"]}]",
       "gate.margin=-0.125", "rollout.auto=false", "training.seed=18446744073709551", "store.ttl_seconds=3600"});
  ASSERT_TRUE(learner.ok()) << learner.status().ToString();
  const std::string learner_toml = ToToml(*learner);
  auto learner2 = LoadLearnerOptions(Write("learner_effective.toml", learner_toml), {});
  ASSERT_TRUE(learner2.ok()) << learner2.status().ToString() << "\n" << learner_toml;
  EXPECT_EQ(*learner2, *learner) << learner_toml;
  EXPECT_THAT(learner_toml, HasSubstr("[rollout]\nauto = false\n"));
  EXPECT_THAT(learner_toml, HasSubstr("[[groups]]\nname = \"lobby\"\ndevices = [\"cam-01\", \"cam-02\"]\n"));
}

TEST(DaemonOptionsEnvTest, EnvOverrides) {
  const char* env[] = {"HOME=/root",
                       "KD_EDGE_UPLINK__KBPS=500",
                       "KD_EDGE_DEVICE_ID=cam-9",
                       "KD_EDGE_LEARNER__FRAMES_ENDPOINT=tcp://h:1",
                       "KD_EDGE_=x",
                       "KD_EDGE_NOVALUE",
                       "KD_LEARND_STORE__PATH=/s",
                       nullptr};
  EXPECT_EQ(EnvOverrides(kEdgeEnvPrefix, env),
            (std::vector<std::string>{"uplink.kbps=500", "device_id=cam-9", "learner.frames_endpoint=tcp://h:1"}));
  EXPECT_EQ(EnvOverrides(kLearnerEnvPrefix, env), (std::vector<std::string>{"store.path=/s"}));
  EXPECT_TRUE(EnvOverrides(kEdgeEnvPrefix, nullptr).empty());
  // Env first, then --set: the later override wins.
  std::vector<std::string> overrides = EnvOverrides(kEdgeEnvPrefix, env);
  for (const char* s : {"source.uri=/v", "model.dir=/m", "learner.insecure=true", "update.trusted_keys=[\"/t.pub\"]",
                        "uplink.kbps=700"})
    overrides.push_back(s);
  auto o = LoadEdgeOptions("", overrides);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->uplink.kbps, 700);
  EXPECT_EQ(o->device_id, "cam-9");
}

}  // namespace
}  // namespace kd::config
