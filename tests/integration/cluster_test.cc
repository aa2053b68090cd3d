// The learner spread over worker processes (issue: scale-out on c10d), on real parts: a `kdlearnd
// serve` coordinator with [cluster] on, `kdlearnd worker` processes joining its c10d store on
// 127.0.0.1, simulated cameras streaming frames over ZeroMQ, the real teacher labelling them and
// RocksDB keeping them. Several groups are spread over two workers and versions trained there are
// published; kill -9 of a worker moves its groups to the other and publishing continues; a worker
// that joins later takes groups; workers with the wrong secret or world generation are refused. A
// label worker (`--role label`) labels the coordinator's new frames and holds no groups.
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/check.h"
#include "media/frame.h"
#include "media/image_ops.h"
#include "tests/support/loop_support.h"
#include "update/signing.h"
#include "wire/endpoint.h"
#include "wire/message.h"

namespace kd {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::AssetsPresent;
using testing::ChildProcess;
using testing::FreePort;
using testing::Learner;
using testing::MakeFactoryModel;
using testing::WaitFor;
using testing::WriteText;

constexpr int kGroups = 3;            // one camera per group
constexpr int kFramesPerCamera = 24;  // labelled by the coordinator's teacher

fs::path FreshDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / (name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// A coordinator that trains nothing itself: short rounds on few frames, a gate that passes every
// candidate (margin -1: these tests are about where rounds run, not about accuracy), workers
// declared dead after 3 s of silence.
std::string CoordinatorConfig(const fs::path& dir, int frames_port, int control_port, int cluster_port) {
  const std::string factory = MakeFactoryModel(dir);
  const auto signing = update::GenerateSigningKey();
  KD_CHECK(signing.ok());
  KD_CHECK(update::WriteSigningKey((dir / "s.key").string(), (dir / "s.pub").string(), *signing).ok());
  WriteText(dir / "cluster.secret", "a-secret-shared-by-the-learners-0123456789\n");
  WriteText(dir / "wrong.secret", "another-secret-entirely-9876543210\n");
  const fs::path config = dir / "kdlearnd.toml";
  WriteText(config,
            "[server]\nframes_endpoint = \"tcp://127.0.0.1:" + std::to_string(frames_port) +
                "\"\ncontrol_endpoint = \"tcp://127.0.0.1:" + std::to_string(control_port) +
                "\"\ninsecure = true\n[store]\npath = \"store\"\n[training]\nrecipe = \"" + std::string(KD_SOURCE_DIR) +
                "/tests/integration/one_scale.toml\"\nthreads = 1\nbootstrap = \"" + factory +
                "\"\nmin_frames = 8\nmin_new_frames = 0\nround_frames = 12\nround_iterations = 2\n"
                "[gate]\nholdout_every = 3\nholdout_span_ms = 0\nmin_holdout = 2\nholdout_window = 6\nmargin = -1.0\n"
                "[rollout]\nauto = false\n"
                "[cluster]\nenabled = true\nlisten = \"127.0.0.1:" +
                std::to_string(cluster_port) +
                "\"\nsecret_file = \"cluster.secret\"\nworker_timeout_s = 3.0\nheartbeat_s = 0.5\n"
                "[publish]\nsigning_key = \"s.key\"\n");
  return config.string();
}

ChildProcess Worker(const std::string& config, int cluster_port, const std::string& name, const fs::path& dir,
                    std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {
      KD_KDLEARND, "worker", "--config", config, "--coordinator", "127.0.0.1:" + std::to_string(cluster_port),
      "--name",    name};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return ChildProcess(argv, (dir / (name + ".log")).string());
}

std::string SampleJpeg(int camera) {
  media::Frame frame;
  frame.width = 320;
  frame.height = 240;
  frame.rgb.resize(static_cast<size_t>(frame.width) * frame.height * 3);
  for (size_t i = 0; i < frame.rgb.size(); ++i) frame.rgb[i] = static_cast<uint8_t>((i * (7 + camera)) % 251);
  auto jpeg = media::EncodeJpeg(frame);
  KD_CHECK(jpeg.ok());
  return std::string(jpeg->begin(), jpeg->end());
}

// Streams kFramesPerCamera frames of each camera, one credit window at a time; returns the acks.
size_t StreamFrames(int frames_port) {
  wire::Context ctx;
  size_t acked = 0;
  for (int cam = 0; cam < kGroups; ++cam) {
    wire::ClientOptions co;
    co.endpoint = "tcp://127.0.0.1:" + std::to_string(frames_port);
    auto client = wire::Client::Connect(ctx, co);
    KD_CHECK(client.ok());
    const std::string device = "cam-" + std::to_string(cam);
    uint32_t window = 0;
    (void)WaitFor(
        [&] {
          wire::Message hello;
          hello.header.type = wire::MsgType::kHello;
          hello.header.device_id = device;
          (void)(*client)->Send(hello);
          auto reply = (*client)->Receive(milliseconds(1000));
          if (reply.ok() && reply->has_value() && (*reply)->header.type == wire::MsgType::kCredit) {
            window = (*reply)->header.credits;
          }
          return window > 0;
        },
        seconds(60));
    const std::string jpeg = SampleJpeg(cam);
    uint64_t seq = 1;
    while (seq <= kFramesPerCamera) {
      const uint64_t first = seq;
      for (; seq <= kFramesPerCamera && seq < first + window; ++seq) {
        wire::Message m;
        m.header.type = wire::MsgType::kFrame;
        m.header.device_id = device;
        m.header.seq = seq;
        m.header.capture_time_us = 1'700'000'000'000'000 + static_cast<int64_t>(seq) * 100'000;
        m.header.width = 320;
        m.header.height = 240;
        m.header.selection_score = 1.f;
        m.payload = jpeg;
        KD_CHECK((*client)->Send(m).ok());
      }
      size_t answered = 0;
      const auto deadline = std::chrono::steady_clock::now() + seconds(30);
      while (answered < seq - first && std::chrono::steady_clock::now() < deadline) {
        auto reply = (*client)->Receive(milliseconds(500));
        if (!reply.ok() || !reply->has_value()) continue;
        if ((*reply)->header.type == wire::MsgType::kAck) ++answered, ++acked;
      }
    }
  }
  return acked;
}

json Status(const fs::path& dir) {
  auto reply =
      wire::AdminCall("ipc://" + (dir / "store" / "admin.sock").string(), R"({"cmd":"status"})", milliseconds(5000));
  if (!reply.ok()) return json::object();
  auto doc = json::parse(*reply, nullptr, false);
  return doc.is_object() ? doc : json::object();
}

// worker name -> its groups, for alive train workers.
std::map<std::string, std::set<std::string>> GroupsByWorker(const json& status) {
  std::map<std::string, std::set<std::string>> out;
  if (!status.contains("schedule") || !status["schedule"].contains("workers")) return out;
  for (const auto& w : status["schedule"]["workers"]) {
    if (w.value("state", "") != "alive" || w.value("role", "") != "train") continue;
    auto& groups = out[w.value("name", "")];
    for (const auto& g : w["groups"]) groups.insert(g.get<std::string>());
  }
  return out;
}

uint64_t Latest(const json& status, const std::string& group) {
  if (!status.contains("groups") || !status["groups"].contains(group)) return 0;
  return status["groups"][group].value("latest", uint64_t{0});
}

// The alive worker called `name` as status shows it (null when there is none).
json AliveWorker(const json& status, const std::string& name) {
  if (!status.contains("schedule") || !status["schedule"].contains("workers")) return nullptr;
  for (const auto& w : status["schedule"]["workers"]) {
    if (w.value("name", "") == name && w.value("state", "") == "alive") return w;
  }
  return nullptr;
}

uint64_t Results(const json& status, const std::string& worker) {
  if (!status.contains("schedule") || !status["schedule"].contains("workers")) return 0;
  for (const auto& w : status["schedule"]["workers"]) {
    if (w.value("name", "") == worker && w.value("state", "") == "alive") return w.value("results", uint64_t{0});
  }
  return 0;
}

TEST(ClusterTest, GroupsSpreadOverWorkersMoveOnKillAndJoinAndStrangersAreRefused) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  const fs::path dir = FreshDir("kd_cluster");
  const int frames_port = FreePort(), control_port = FreePort(), cluster_port = FreePort();
  const std::string config = CoordinatorConfig(dir, frames_port, control_port, cluster_port);
  Learner coordinator(config, (dir / "kdlearnd.log").string());
  coordinator.Start();
  ChildProcess a = Worker(config, cluster_port, "worker-a", dir);
  ChildProcess b = Worker(config, cluster_port, "worker-b", dir);
  ChildProcess labeller = Worker(config, cluster_port, "labeller", dir, {"--role", "label"});
  a.Start();
  b.Start();
  labeller.Start();
  // The label worker is in before frames arrive, so the coordinator's labeller sends them to it.
  json st;
  ASSERT_TRUE(WaitFor([&] { return !AliveWorker(st = Status(dir), "labeller").is_null(); }, seconds(120)))
      << st.dump(1);

  const size_t acked = StreamFrames(frames_port);
  ASSERT_EQ(acked, static_cast<size_t>(kGroups * kFramesPerCamera)) << "frames were not all acknowledged";

  // 1. Both workers hold groups, and every group gets a version trained on a worker (v1 is the
  //    factory model the coordinator publishes itself). The label worker labels and holds none.
  ASSERT_TRUE(WaitFor(
      [&] {
        st = Status(dir);
        const auto by_worker = GroupsByWorker(st);
        if (by_worker.size() != 2 || by_worker.count("worker-a") == 0 || by_worker.count("worker-b") == 0) return false;
        if (by_worker.at("worker-a").empty() || by_worker.at("worker-b").empty()) return false;
        for (int g = 0; g < kGroups; ++g) {
          if (Latest(st, "cam-" + std::to_string(g)) < 2) return false;
        }
        return true;
      },
      seconds(400)))
      << st.dump(1);
  const auto before = GroupsByWorker(st);
  std::cout << "[ cluster ] placement: worker-a " << before.at("worker-a").size() << " groups, worker-b "
            << before.at("worker-b").size() << "; versions";
  for (int g = 0; g < kGroups; ++g) std::cout << " cam-" << g << "=v" << Latest(st, "cam-" + std::to_string(g));
  std::cout << "\n";
  const json label_worker = AliveWorker(st, "labeller");
  ASSERT_FALSE(label_worker.is_null()) << st.dump(1);
  EXPECT_EQ(label_worker.value("role", ""), "label");
  EXPECT_TRUE(label_worker["groups"].empty()) << label_worker.dump();
  EXPECT_GE(label_worker.value("results", uint64_t{0}), 1u) << "no batch was labelled on the label worker";
  std::cout << "[ cluster ] label worker: " << label_worker.value("results", uint64_t{0}) << " label jobs answered\n";

  // 2. kill -9 of worker-a: its groups move to worker-b within the timeout (3 s) plus polling, and
  //    a group that was on worker-a publishes again.
  const std::set<std::string> moved = before.at("worker-a");
  std::map<std::string, uint64_t> latest_at_kill;
  for (const auto& g : moved) latest_at_kill[g] = Latest(st, g);
  const auto killed_at = std::chrono::steady_clock::now();
  a.Kill(SIGKILL);
  ASSERT_TRUE(WaitFor(
      [&] {
        st = Status(dir);
        const auto by_worker = GroupsByWorker(st);
        return by_worker.size() == 1 && by_worker.count("worker-b") &&
               by_worker.at("worker-b").size() == static_cast<size_t>(kGroups);
      },
      seconds(60)))
      << st.dump(1);
  const double moved_after_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  std::cout << "[ cluster ] worker-a killed: its " << moved.size() << " groups on worker-b after " << moved_after_s
            << " s\n";
  EXPECT_LT(moved_after_s, 3.0 + 10.0) << "the timeout is 3 s; the trainer thread may be gating a round meanwhile";
  ASSERT_TRUE(WaitFor(
      [&] {
        st = Status(dir);
        for (const auto& g : moved) {
          if (Latest(st, g) > latest_at_kill[g]) return true;
        }
        return false;
      },
      seconds(300)))
      << "no group of the killed worker published again\n"
      << st.dump(1);

  // 3. A new worker joins and takes groups (and trains a round for them).
  ChildProcess c = Worker(config, cluster_port, "worker-c", dir);
  c.Start();
  ASSERT_TRUE(WaitFor(
      [&] {
        st = Status(dir);
        const auto by_worker = GroupsByWorker(st);
        return by_worker.count("worker-c") && !by_worker.at("worker-c").empty() && Results(st, "worker-c") >= 1;
      },
      seconds(300)))
      << st.dump(1);

  // 4. Strangers: the wrong secret, and a world generation that is not the coordinator's.
  ChildProcess wrong_secret = Worker(config, cluster_port, "worker-x", dir,
                                     {"--set", "cluster.secret_file=\"" + (dir / "wrong.secret").string() + "\""});
  wrong_secret.Start();
  auto exit_x = wrong_secret.WaitExit(seconds(60));
  ASSERT_TRUE(exit_x.has_value()) << "a worker with the wrong secret kept running";
  EXPECT_EQ(*exit_x, 2);
  ChildProcess old_world = Worker(config, cluster_port, "worker-y", dir, {"--generation", "999"});
  old_world.Start();
  auto exit_y = old_world.WaitExit(seconds(60));
  ASSERT_TRUE(exit_y.has_value()) << "a worker of another generation kept running";
  EXPECT_EQ(*exit_y, 2);
  st = Status(dir);
  for (const auto& w : st["schedule"]["workers"]) {
    EXPECT_NE(w.value("name", ""), "worker-x");
    EXPECT_NE(w.value("name", ""), "worker-y");
  }

  // Ordered stop: workers leave, the coordinator drains.
  EXPECT_EQ(b.Kill(SIGTERM), 0);
  EXPECT_EQ(c.Kill(SIGTERM), 0);
  EXPECT_EQ(labeller.Kill(SIGTERM), 0);
  EXPECT_EQ(coordinator.Kill(SIGTERM), 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kd
