// End-to-end faults of the learner's ingest, on real parts (a kdlearnd process, RocksDB, TCP):
//   - credits: a device that sends more frames than its window gets OUT_OF_CREDIT for the excess,
//     and those frames are neither acknowledged nor stored;
//   - a full disk: the learner's store lives on a small tmpfs that really fills while an edge
//     streams; the edge is told STORAGE_FULL, keeps its frames and resends them, nothing
//     acknowledged is lost, and ingest resumes by itself once the disk has room again;
//   - probation: a new version that passes its self-test and is then slow on probation is rolled
//     back and reported; the learner halts the rollout and republishes the previous weights.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <signal.h>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "base/assets.h"
#include "base/clock.h"
#include "config/daemon_options.h"
#include "edge/agent.h"
#include "edge/running_model.h"
#include "media/frame.h"
#include "media/image_ops.h"
#include "storage/sample_store.h"
#include "tests/support/loop_support.h"
#include "tests/support/small_disk.h"
#include "update/signing.h"
#include "wire/endpoint.h"
#include "wire/message.h"

namespace kd {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::AssetsPresent;
using testing::ChildProcess;
using testing::FreePort;
using testing::Learner;
using testing::MakeFactoryModel;
using testing::SlowInferenceClock;
using testing::WaitFor;
using testing::WriteText;

fs::path FreshDir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / (name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// An insecure (loopback-only) learner that stores and labels but never trains: these tests are
// about ingest. `store_path` may lie on another file system (the small disk).
std::string LearnerConfig(const fs::path& dir, const std::string& store_path, int frames_port, int control_port,
                          int credits) {
  const std::string factory = MakeFactoryModel(dir);
  const auto signing = update::GenerateSigningKey();
  KD_CHECK(signing.ok());
  KD_CHECK(update::WriteSigningKey((dir / "s.key").string(), (dir / "s.pub").string(), *signing).ok());
  const fs::path config = dir / "kdlearnd.toml";
  WriteText(config, "[server]\nframes_endpoint = \"tcp://127.0.0.1:" + std::to_string(frames_port) +
                        "\"\ncontrol_endpoint = \"tcp://127.0.0.1:" + std::to_string(control_port) +
                        "\"\ninsecure = true\ncredits = " + std::to_string(credits) + "\n[store]\npath = \"" +
                        store_path + "\"\nmax_bytes = 1073741824\n[training]\nrecipe = \"" +
                        std::string(KD_SOURCE_DIR) +
                        "/tests/integration/one_scale.toml\"\nthreads = 1\nbootstrap = \"" + factory +
                        "\"\nmin_frames = 1000000\n[publish]\nsigning_key = \"s.key\"\n");
  return config.string();
}

// One real frame of the sample video as JPEG: what a camera uploads.
std::string SampleJpeg() {
  media::Frame frame;
  frame.width = 320;
  frame.height = 240;
  frame.rgb.resize(static_cast<size_t>(frame.width) * frame.height * 3);
  for (size_t i = 0; i < frame.rgb.size(); ++i) frame.rgb[i] = static_cast<uint8_t>((i * 7) % 251);
  auto jpeg = media::EncodeJpeg(frame);
  KD_CHECK(jpeg.ok());
  return std::string(jpeg->begin(), jpeg->end());
}

wire::Message FrameMessage(const std::string& device, uint64_t seq, const std::string& jpeg) {
  wire::Message m;
  m.header.type = wire::MsgType::kFrame;
  m.header.device_id = device;
  m.header.seq = seq;
  m.header.capture_time_us = 1'700'000'000'000'000 + static_cast<int64_t>(seq);
  m.header.width = 320;
  m.header.height = 240;
  m.header.selection_score = 1.f;
  m.payload = jpeg;
  return m;
}

// Credits (PROTOCOL.md section 4): the learner is stopped (SIGSTOP) while a device sends far more
// than its window, so that every frame is waiting when it wakes. Frames beyond the window get
// OUT_OF_CREDIT and are not stored; the others are stored and acknowledged. Each frame gets
// exactly one answer.
TEST(FaultsTest, FramesBeyondTheCreditWindowGetOutOfCreditAndAreNotStored) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  const fs::path dir = FreshDir("kd_credit");
  constexpr int kCredits = 4;
  const int frames_port = FreePort(), control_port = FreePort();
  Learner learner(LearnerConfig(dir, "store", frames_port, control_port, kCredits), (dir / "kdlearnd.log").string());
  learner.Start();

  wire::Context ctx;
  wire::ClientOptions co;
  co.endpoint = "tcp://127.0.0.1:" + std::to_string(frames_port);
  auto client = wire::Client::Connect(ctx, co);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  // HELLO until the learner answers with its window.
  uint32_t window = 0;
  ASSERT_TRUE(WaitFor(
      [&] {
        wire::Message hello;
        hello.header.type = wire::MsgType::kHello;
        hello.header.device_id = "cam-c";
        (void)(*client)->Send(hello);
        auto reply = (*client)->Receive(milliseconds(1000));
        if (reply.ok() && reply->has_value() && (*reply)->header.type == wire::MsgType::kCredit) {
          window = (*reply)->header.credits;
        }
        return window > 0;
      },
      seconds(120)))
      << "the learner never granted credits";
  EXPECT_EQ(window, static_cast<uint32_t>(kCredits));

  const std::string jpeg = SampleJpeg();
  std::set<uint64_t> acked, out_of_credit;
  std::map<uint64_t, int> answers;
  uint64_t next_seq = 1;
  // Up to 3 bursts of 8 windows: the learner reads what is waiting in one batch after SIGCONT, but
  // libzmq may hand over the first message alone, so a burst could in principle be split.
  for (int burst = 0; burst < 3 && out_of_credit.empty(); ++burst) {
    const uint64_t first = next_seq, count = 8 * kCredits;
    learner.Signal(SIGSTOP);
    for (uint64_t s = first; s < first + count; ++s) ASSERT_TRUE((*client)->Send(FrameMessage("cam-c", s, jpeg)).ok());
    std::this_thread::sleep_for(milliseconds(300));
    learner.Signal(SIGCONT);
    next_seq = first + count;
    size_t answered = 0;
    const auto deadline = std::chrono::steady_clock::now() + seconds(30);
    while (answered < count && std::chrono::steady_clock::now() < deadline) {
      auto reply = (*client)->Receive(milliseconds(500));
      ASSERT_TRUE(reply.ok()) << reply.status().ToString();
      if (!reply->has_value()) continue;
      const wire::Header& h = (*reply)->header;
      if (h.type == wire::MsgType::kAck) {
        acked.insert(h.ack_seq);
        ++answers[h.ack_seq];
        ++answered;
      } else if (h.type == wire::MsgType::kError && h.error_code == wire::ErrorCode::kOutOfCredit) {
        out_of_credit.insert(h.seq);
        ++answers[h.seq];
        ++answered;
      }
    }
    ASSERT_EQ(answered, count) << "every frame gets one answer (ACK or OUT_OF_CREDIT)";
  }
  std::cout << "[ credits ] window " << window << ": " << acked.size() << " acked, " << out_of_credit.size()
            << " OUT_OF_CREDIT in " << next_seq - 1 << " frames sent without waiting\n";
  EXPECT_FALSE(out_of_credit.empty()) << "a device far beyond its window was never told OUT_OF_CREDIT";
  EXPECT_GE(acked.size(), static_cast<size_t>(kCredits));
  for (const auto& [seq, n] : answers) EXPECT_EQ(n, 1) << "seq " << seq << " answered " << n << " times";
  for (uint64_t s : out_of_credit) EXPECT_EQ(acked.count(s), 0u) << "seq " << s << " both acked and refused";

  // The learner counts them, and kept only what it acknowledged.
  auto reply =
      wire::AdminCall("ipc://" + (dir / "store" / "admin.sock").string(), R"({"cmd":"status"})", milliseconds(5000));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  const auto doc = nlohmann::json::parse(*reply, nullptr, false);
  ASSERT_TRUE(doc.is_object() && doc.contains("devices") && doc["devices"].contains("cam-c")) << *reply;
  EXPECT_EQ(doc["devices"]["cam-c"].value("frames_out_of_credit", uint64_t{0}), out_of_credit.size());
  EXPECT_EQ(learner.Kill(SIGTERM), 0);
  storage::StoreOptions so;
  so.path = (dir / "store").string();
  so.create_if_missing = false;
  auto db = storage::SampleStore::Open(so);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  for (uint64_t s : acked) EXPECT_TRUE((*db)->GetFrame("cam-c", s)->has_value()) << "acked seq " << s << " missing";
  for (uint64_t s : out_of_credit) {
    EXPECT_FALSE((*db)->GetFrame("cam-c", s)->has_value()) << "refused seq " << s << " was stored";
  }
  fs::remove_all(dir);
}

// The learner's disk really fills (a 40 MiB tmpfs, store budget far above it) while a real edge
// streams the sample video: the edge is answered STORAGE_FULL, keeps those frames and resends;
// acks stop. When the disk grows back, ingest resumes without a restart and the kept frames are
// stored. Every acknowledged frame is in the store at the end.
TEST(FaultsTest, AFullDiskStopsAcksLosesNothingAndIngestResumesWhenSpaceReturns) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  const fs::path dir = FreshDir("kd_disk_full");
  testing::SmallDisk disk((dir / "disk").string(), 40);
  if (!disk.mounted()) GTEST_SKIP() << "needs root and tmpfs (mount -t tmpfs) to fill a real disk";
  const int frames_port = FreePort(), control_port = FreePort();
  const std::string store = (dir / "disk" / "store").string();
  Learner learner(LearnerConfig(dir, store, frames_port, control_port, 16), (dir / "kdlearnd.log").string());
  learner.Start();

  const std::vector<std::string> set = {
      "device_id=cam-f",
      "source.uri=" + AssetPath("vtest.avi"),
      "source.end=300",
      "source.loop=true",
      "source.fps=15",
      "model.dir=" + (dir / "slots").string(),
      "model.bootstrap=" + (dir / "factory.kdw").string(),
      "learner.insecure=true",
      "learner.frames_endpoint=tcp://127.0.0.1:" + std::to_string(frames_port),
      "learner.control_endpoint=tcp://127.0.0.1:" + std::to_string(control_port),
      "learner.timeout_ms=4000",
      "uplink.max_fps=15",
      "uplink.buffer_frames=4096",
      "uplink.resend_after_ms=1000",
      "update.trusted_keys=[\"" + (dir / "s.pub").string() + "\"]",
      "output.detections=",
      "output.status_interval_ms=500",
  };
  auto opts = config::LoadEdgeOptions("", set);
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  auto edge = edge::EdgeAgent::Start(*opts);
  ASSERT_TRUE(edge.ok()) << edge.status().ToString();
  auto counters = [&] { return (*edge)->counters(); };

  // The disk fills: the learner answers STORAGE_FULL, the edge keeps those frames.
  ASSERT_TRUE(WaitFor([&] { return counters().frames_kept_for_resend >= 5; }, seconds(300)))
      << "the disk never filled: " << (*edge)->StatusJson();
  const uint64_t acked_when_full = counters().frames_acked;
  std::this_thread::sleep_for(seconds(5));
  const uint64_t acked_while_full = counters().frames_acked - acked_when_full;
  EXPECT_LE(acked_while_full, 16u) << "acks went on while the disk was full (more than one window in flight)";
  std::cout << "[ disk full ] " << acked_when_full << " frames acked before the 40 MiB disk filled; "
            << counters().frames_kept_for_resend << " answers kept frames for resend; " << acked_while_full
            << " acked in the next 5 s\n";

  // Space comes back: ingest resumes on its own.
  ASSERT_TRUE(disk.Resize(512));
  const uint64_t acked_at_resize = counters().frames_acked;
  ASSERT_TRUE(WaitFor([&] { return counters().frames_acked >= acked_at_resize + 20; }, seconds(120)))
      << "ingest did not resume once the disk had room: " << (*edge)->StatusJson();
  std::cout << "[ disk full ] resumed: " << counters().frames_acked - acked_at_resize
            << " frames acked after the disk grew; edge dropped " << counters().frames_dropped_unacked
            << " un-acked frames from its buffer\n";
  EXPECT_EQ(counters().frames_dropped_unacked, 0u) << "the edge's resend buffer overflowed";
  (*edge)->Stop(milliseconds(3000));
  const std::vector<uint64_t> acked = (*edge)->AckedSeqs();
  EXPECT_EQ(learner.Kill(SIGTERM), 0);

  storage::StoreOptions so;
  so.path = store;
  so.create_if_missing = false;
  auto db = storage::SampleStore::Open(so);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  size_t missing = 0;
  for (uint64_t s : acked) missing += (*db)->GetFrame("cam-f", s)->has_value() ? 0 : 1;
  EXPECT_EQ(missing, 0u) << "of " << acked.size() << " acknowledged frames";
  std::cout << "[ disk full ] " << acked.size() << " acknowledged frames checked in the store, " << missing
            << " missing\n";
  db->reset();
  edge->reset();
}

// Issue 12: a model that passes the self-test and then fails probation. Every new trained
// version runs normally through its self-test and then, once on probation, looks 3 s slower
// per frame (the test's inference clock), as a model that is slow on real frames would. The edge
// rolls it back and reports it; the learner halts the rollout and republishes the previous
// weights as a new version, which the edge commits. A real kdlearnd trains and publishes.
TEST(FaultsTest, AModelThatFailsProbationIsRolledBackAndTheLearnerRepublishesThePreviousWeights) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  const fs::path dir = FreshDir("kd_probation");
  const int frames_port = FreePort(), control_port = FreePort();
  const std::string factory = MakeFactoryModel(dir);
  const auto signing = update::GenerateSigningKey();
  ASSERT_TRUE(signing.ok());
  ASSERT_TRUE(update::WriteSigningKey((dir / "s.key").string(), (dir / "s.pub").string(), *signing).ok());
  WriteText(
      dir / "kdlearnd.toml",
      "[server]\nframes_endpoint = \"tcp://127.0.0.1:" + std::to_string(frames_port) +
          "\"\ncontrol_endpoint = \"tcp://127.0.0.1:" + std::to_string(control_port) +
          "\"\ninsecure = true\n[store]\npath = \"store\"\n[training]\nrecipe = \"" + std::string(KD_SOURCE_DIR) +
          "/tests/integration/one_scale.toml\"\nthreads = 1\nbootstrap = \"" + factory +
          "\"\nround_iterations = 3\nround_frames = 16\nmin_frames = 8\n"
          "[gate]\nholdout_every = 4\nholdout_span_ms = 0\nmin_holdout = 2\nmargin = -1.0\n"  // publish every round
          "[publish]\nsigning_key = \"s.key\"\n[rollout]\ncanary_probation_s = 0\nfailure_threshold = 1\n");
  Learner learner((dir / "kdlearnd.toml").string(), (dir / "kdlearnd.log").string());
  learner.Start();

  SlowInferenceClock clock(3'000'000'000);
  edge::EdgeSeams seams;
  seams.inference_clock = &clock;
  const std::vector<std::string> set = {
      "device_id=cam-p",
      "source.uri=" + AssetPath("vtest.avi"),
      "source.end=200",
      "source.loop=true",
      "source.fps=10",
      "model.dir=" + (dir / "slots").string(),
      "model.bootstrap=" + factory,
      "learner.insecure=true",
      "learner.frames_endpoint=tcp://127.0.0.1:" + std::to_string(frames_port),
      "learner.control_endpoint=tcp://127.0.0.1:" + std::to_string(control_port),
      "uplink.max_fps=4",
      "update.trusted_keys=[\"" + (dir / "s.pub").string() + "\"]",
      "update.probation_frames=10",
      "update.probation_seconds=2",
      "update.max_latency_ratio=20",  // the self-test is timed on the real clock: room for a busy CI
      "output.detections=",
      "output.status_interval_ms=300",
  };
  auto opts = config::LoadEdgeOptions("", set);
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  auto edge = edge::EdgeAgent::Start(*opts, seams);
  ASSERT_TRUE(edge.ok()) << edge.status().ToString();

  // version -> revert_of, from the learner's status (kdctl status --json).
  const std::string admin = "ipc://" + (dir / "store" / "admin.sock").string();
  auto reverts = [&] {
    std::map<uint64_t, uint64_t> revert_of;
    auto reply = wire::AdminCall(admin, R"({"cmd":"status"})", milliseconds(3000));
    if (!reply.ok()) return revert_of;
    const auto doc = nlohmann::json::parse(*reply, nullptr, false);
    if (!doc.is_object() || !doc.contains("groups")) return revert_of;
    for (const auto& [name, g] : doc["groups"].items()) {
      for (const auto& v : g.value("versions", nlohmann::json::array())) {
        revert_of[v.value("version", uint64_t{0})] = v.value("revert_of", uint64_t{0});
      }
    }
    return revert_of;
  };
  uint64_t slowed_version = 0, committed_revert = 0, reverted_to = 0;
  const bool done = WaitFor(
      [&] {
        const edge::EdgeCounters k = (*edge)->counters();
        const auto revert_of = reverts();
        const auto r = revert_of.find(k.running_version);
        const bool on_trial = k.running_version != k.committed_version;
        const bool trained = r != revert_of.end() && r->second == 0 && k.running_version >= 2;
        clock.set_slow(on_trial && trained);  // only a new trained version, only on probation
        if (on_trial && trained) slowed_version = k.running_version;
        const auto c = revert_of.find(k.committed_version);
        if (k.rollbacks >= 1 && c != revert_of.end() && c->second != 0) {
          committed_revert = k.committed_version;
          reverted_to = c->second;
        }
        return committed_revert != 0;
      },
      seconds(480));
  clock.set_slow(false);
  const edge::EdgeCounters k = (*edge)->counters();
  std::cout << "[ probation ] slowed v" << slowed_version << " on probation; rollbacks " << k.rollbacks
            << "; committed v" << k.committed_version << " (a republish of v" << reverted_to << ")\n";
  ASSERT_TRUE(done) << "no rollback followed by a committed revert: " << (*edge)->StatusJson();
  EXPECT_GE(k.rollbacks, 1u);
  EXPECT_EQ(k.inference_errors, 0u);

  // The learner halted that rollout and recorded the device's report.
  auto reply = wire::AdminCall(admin, R"({"cmd":"status"})", milliseconds(3000));
  ASSERT_TRUE(reply.ok()) << reply.status().ToString();
  const auto doc = nlohmann::json::parse(*reply, nullptr, false);
  ASSERT_TRUE(doc.is_object() && doc.contains("devices") && doc["devices"].contains("cam-p")) << *reply;
  EXPECT_NE(doc["devices"]["cam-p"].dump().find("rolled back"), std::string::npos) << doc["devices"]["cam-p"].dump();
  (*edge)->Stop(milliseconds(1000));
  edge->reset();
  EXPECT_EQ(learner.Kill(SIGTERM), 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kd
