// The continual loop end to end on real parts: a kdlearnd process (real teacher, RocksDB, sockets)
// and two in-process EdgeAgents on the sample video, over TCP with CURVE. Checks that frames flow,
// a new version is published and both edges switch to it; that after kill -9 of the learner and a
// restart no acknowledged frame is lost and uploads resume; that an unknown device key gets
// nothing. A second test runs an edge against a scripted (fake) learner that offers tampered,
// expired and wrongly signed manifests: each is refused before any download and the model stays.
#include <atomic>
#include <chrono>
#include <cmath>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sched.h>
#include <set>
#include <signal.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include "base/assets.h"
#include "base/sha256.h"
#include "config/daemon_options.h"
#include "edge/agent.h"
#include "edge/running_model.h"
#include "model/student.h"
#include "model/weights_file.h"
#include "storage/sample_store.h"
#include "tests/support/loop_support.h"
#include "update/delta.h"
#include "update/manifest.h"
#include "update/signing.h"
#include "update/slots.h"
#include "update/state.h"
#include "wire/curve_keys.h"
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
using testing::WaitFor;
using testing::WriteText;

TEST(LoopTest, FramesFlowVersionsRollOutAndAckedFramesSurviveKill9) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  const fs::path dir = fs::path(::testing::TempDir()) / ("kd_loop_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // Keys: the learner's CURVE pair, one per camera, a stranger's, and the model-signing key.
  for (const char* name : {"learner", "cam-1", "cam-2", "stranger"}) {
    auto k = wire::GenerateCurveKeyPair();
    ASSERT_TRUE(k.ok());
    ASSERT_TRUE(wire::WriteCurveKeyPair((dir / (std::string(name) + ".key")).string(),
                                        (dir / (std::string(name) + ".pub")).string(), *k)
                    .ok());
  }
  auto sign = update::GenerateSigningKey();
  ASSERT_TRUE(sign.ok());
  ASSERT_TRUE(update::WriteSigningKey((dir / "signing.key").string(), (dir / "signing.pub").string(), *sign).ok());
  const std::string factory = MakeFactoryModel(dir);
  const int frames_port = FreePort(), control_port = FreePort();
  const fs::path store = dir / "store";
  WriteText(dir / "kdlearnd.toml", R"(
[server]
frames_endpoint = "tcp://127.0.0.1:)" + std::to_string(frames_port) +
                                       R"("
control_endpoint = "tcp://127.0.0.1:)" +
                                       std::to_string(control_port) + R"("
secret_key = "learner.key"
[store]
path = "store"
sync_writes = true
[teacher]
batch = 8
[training]
recipe = ")" + std::string(KD_SOURCE_DIR) +
                                       R"(/tests/integration/one_scale.toml"
threads = 2
bootstrap = "factory.kdw"
round_iterations = 8
round_frames = 24
min_frames = 12
sched_idle = true
[gate]
holdout_every = 4
holdout_span_ms = 0
min_holdout = 3
margin = 0.0
[publish]
signing_key = "signing.key"
[rollout]
canary_probation_s = 1
[[groups]]
name = "lobby"
devices = ["cam-1", "cam-2"]
[[devices]]
id = "cam-1"
key = "cam-1.pub"
[[devices]]
id = "cam-2"
key = "cam-2.pub"
)");
  Learner learner((dir / "kdlearnd.toml").string());
  learner.Start();

  std::vector<std::unique_ptr<edge::EdgeAgent>> edges;
  for (const char* cam : {"cam-1", "cam-2"}) {
    const std::vector<std::string> set = {
        std::string("device_id=") + cam,
        "source.uri=" + AssetPath("vtest.avi"),
        "source.end=120",
        "source.loop=true",
        "source.fps=12",
        "model.dir=" + (dir / cam).string(),
        "model.bootstrap=" + factory,
        "learner.frames_endpoint=tcp://127.0.0.1:" + std::to_string(frames_port),
        "learner.control_endpoint=tcp://127.0.0.1:" + std::to_string(control_port),
        "learner.server_key=" + (dir / "learner.pub").string(),
        "learner.client_key=" + (dir / (std::string(cam) + ".key")).string(),
        "learner.timeout_ms=4000",
        "uplink.max_fps=4",
        "update.trusted_keys=[\"" + (dir / "signing.pub").string() + "\"]",
        "update.probation_frames=10",
        "update.probation_seconds=1",
        "update.max_latency_ratio=100",  // shared CI machines: this test is about the flow, not latency
        "output.detections=" + (dir / (std::string(cam) + ".jsonl")).string(),
        "output.status_interval_ms=500",
    };
    auto opts = config::LoadEdgeOptions("", set);
    ASSERT_TRUE(opts.ok()) << opts.status().ToString();
    auto agent = edge::EdgeAgent::Start(*opts);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    edges.push_back(std::move(agent).value());
  }

  // Frames flow and are acknowledged.
  ASSERT_TRUE(WaitFor([&] { return edges[0]->counters().frames_acked >= 5 && edges[1]->counters().frames_acked >= 5; },
                      seconds(120)))
      << edges[0]->StatusJson() << "\n"
      << edges[1]->StatusJson();

  // With training.sched_idle, teacher and training work run under SCHED_IDLE, ingest at normal
  // priority: the learner's threads by name, LibTorch's workers named after their stage.
  {
    std::map<std::string, std::set<int>> policies;
    for (const auto& task : fs::directory_iterator(fs::path("/proc") / std::to_string(learner.pid()) / "task")) {
      std::string comm;
      std::getline(std::ifstream(task.path() / "comm"), comm);
      policies[comm].insert(::sched_getscheduler(std::stoi(task.path().filename().string())));
    }
    EXPECT_EQ(policies["kd-labeller"], std::set<int>{SCHED_IDLE});
    EXPECT_EQ(policies["kd-trainer"], std::set<int>{SCHED_IDLE});
    EXPECT_EQ(policies["kd-ingest"], std::set<int>{SCHED_OTHER});
  }

  // An unknown key gets nothing back (ZAP refuses the handshake).
  {
    wire::Context ctx;
    auto stranger = wire::ReadCurveKeyPair((dir / "stranger.key").string());
    auto server_pub = wire::ReadCurvePublicKey((dir / "learner.pub").string());
    ASSERT_TRUE(stranger.ok() && server_pub.ok());
    wire::ClientOptions co;
    co.endpoint = "tcp://127.0.0.1:" + std::to_string(frames_port);
    co.curve = *stranger;
    co.server_public_key = *server_pub;
    auto client = wire::Client::Connect(ctx, co);
    ASSERT_TRUE(client.ok());
    wire::Message hello;
    hello.header.type = wire::MsgType::kHello;
    hello.header.device_id = "cam-1";  // even claiming a real device's name
    (void)(*client)->Send(hello);
    auto reply = (*client)->Receive(milliseconds(1500));
    ASSERT_TRUE(reply.ok());
    EXPECT_FALSE(reply->has_value()) << "an unknown key got a reply";
  }

  // A new version is published and both edges switch to it (canary first, then the other).
  ASSERT_TRUE(WaitFor(
      [&] { return edges[0]->counters().committed_version >= 2 && edges[1]->counters().committed_version >= 2; },
      seconds(420)))
      << edges[0]->StatusJson() << "\n"
      << edges[1]->StatusJson();
  for (auto& e : edges) {
    EXPECT_EQ(e->counters().rollbacks, 0u);
    // Dropped frames during swaps are measured by bench_loop (target 0), not asserted here: on a
    // loaded CI machine a live-paced source may drop frames for reasons that are not the swap.
    EXPECT_GT(e->counters().frames_inferred, 0u);
  }

  // kdctl revoke (the admin socket): cam-2's uploads stop being acknowledged, cam-1's go on.
  {
    const std::string admin = "ipc://" + (store / "admin.sock").string();
    auto reply = wire::AdminCall(admin, R"({"cmd":"revoke","device":"cam-2"})", milliseconds(5000));
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    EXPECT_NE(reply->find("\"ok\":true"), std::string::npos) << *reply;
    std::this_thread::sleep_for(seconds(2));  // acks already in flight
    const uint64_t cam1 = edges[0]->counters().frames_acked, cam2 = edges[1]->counters().frames_acked;
    ASSERT_TRUE(WaitFor([&] { return edges[0]->counters().frames_acked >= cam1 + 3; }, seconds(60)));
    EXPECT_EQ(edges[1]->counters().frames_acked, cam2) << "a revoked device's frames were acknowledged";
  }

  // The per-camera STORED count, as kdctl status shows it.
  const std::string admin = "ipc://" + (store / "admin.sock").string();
  auto stored_count = [&](const std::string& cam) -> uint64_t {
    auto reply = wire::AdminCall(admin, R"({"cmd":"status"})", milliseconds(5000));
    if (!reply.ok()) return 0;
    const auto doc = nlohmann::json::parse(*reply, nullptr, /*allow_exceptions=*/false);
    const auto at = doc.find("devices");
    if (at == doc.end() || !at->contains(cam)) return 0;
    return (*at)[cam].value("frames_stored", uint64_t{0});
  };
  const uint64_t cam1_stored_before = stored_count("cam-1");
  EXPECT_GT(cam1_stored_before, 0u);

  // kill -9 the learner mid-stream, restart it: uploads resume, and nothing acknowledged is lost.
  EXPECT_EQ(learner.Kill(SIGKILL), -SIGKILL);
  const uint64_t acked_before = edges[0]->counters().frames_acked + edges[1]->counters().frames_acked;
  const uint64_t cam2_revoked = edges[1]->counters().frames_acked;
  std::this_thread::sleep_for(seconds(2));
  learner.Start();
  ASSERT_TRUE(WaitFor(
      [&] { return edges[0]->counters().frames_acked + edges[1]->counters().frames_acked >= acked_before + 10; },
      seconds(120)))
      << edges[0]->StatusJson() << "\n"
      << edges[1]->StatusJson();
  EXPECT_EQ(edges[1]->counters().frames_acked, cam2_revoked) << "the revocation did not survive the restart";
  // Issue 12, defect 4: STORED counts what the store holds, so it does not drop after a restart.
  EXPECT_GE(stored_count("cam-1"), cam1_stored_before);
  for (auto& e : edges) e->Stop(milliseconds(3000));
  EXPECT_EQ(learner.Kill(SIGTERM), 0) << "SIGTERM should drain and exit 0";

  storage::StoreOptions so;
  so.path = store.string();
  so.create_if_missing = false;
  auto db = storage::SampleStore::Open(so);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  size_t checked = 0;
  for (size_t i = 0; i < edges.size(); ++i) {
    const std::string cam = i == 0 ? "cam-1" : "cam-2";
    for (uint64_t seq : edges[i]->AckedSeqs()) {
      auto f = (*db)->GetFrame(cam, seq);
      ASSERT_TRUE(f.ok());
      EXPECT_TRUE(f->has_value()) << cam << " seq " << seq << " was acknowledged but is not stored";
      ++checked;
    }
  }
  EXPECT_GT(checked, 20u);
  fs::remove_all(dir);
}

// A scripted learner for one edge, on plaintext loopback sockets: `on_control` answers (or not)
// each control message; frames are received and ignored.
class FakeLearner {
 public:
  using Handler = std::function<std::optional<wire::Message>(const wire::Message&)>;
  explicit FakeLearner(Handler on_control) : on_control_(std::move(on_control)) {
    wire::ServerOptions so;
    so.endpoint = "tcp://127.0.0.1:*";
    frames_ = std::move(wire::Server::Bind(ctx_, so)).value();
    control_ = std::move(wire::Server::Bind(ctx_, so)).value();
    control_thread_ = std::thread([this] {
      while (!stop_) {
        auto in = control_->Receive(milliseconds(50));
        if (!in.ok() || !*in) continue;
        if (auto reply = on_control_((*in)->message)) (void)control_->Send((*in)->peer, *reply);
      }
    });
    frames_thread_ = std::thread([this] {
      while (!stop_) (void)frames_->Receive(milliseconds(50));
    });
  }
  ~FakeLearner() {
    stop_ = true;
    control_thread_.join();
    frames_thread_.join();
  }
  // Overrides for an edge of this learner, trusting `signing_pub`, bootstrapped with `factory`.
  std::vector<std::string> EdgeOverrides(const std::string& device, const fs::path& dir, const std::string& factory,
                                         const fs::path& signing_pub) const {
    return {"device_id=" + device,
            "source.uri=" + AssetPath("vtest.avi"),
            "source.end=400",
            "source.fps=25",
            "model.dir=" + (dir / "slots").string(),
            "model.bootstrap=" + factory,
            "learner.insecure=true",
            "learner.frames_endpoint=" + frames_->bound_endpoint(),
            "learner.control_endpoint=" + control_->bound_endpoint(),
            "update.trusted_keys=[\"" + signing_pub.string() + "\"]",
            "output.detections=",
            "output.status_interval_ms=200"};
  }

 private:
  Handler on_control_;
  wire::Context ctx_;
  std::unique_ptr<wire::Server> frames_, control_;
  std::atomic<bool> stop_{false};
  std::thread control_thread_, frames_thread_;
};

update::Manifest ManifestAt(int64_t now) {
  update::Manifest m;
  m.version = 2;
  m.kind = update::ArtifactKind::kFull;
  m.created_unix_s = now;
  m.expires_unix_s = now + 3600;
  return m;
}

int64_t UnixNow() {
  return std::chrono::duration_cast<seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A full update to `version` with `student`'s weights, signed by `key`: (transport blob, artefact).
std::pair<std::string, std::vector<uint8_t>> SignedFullUpdate(const model::StudentImpl& student, uint64_t version,
                                                              const std::string& model_id,
                                                              const update::SigningKeyPair& key) {
  auto artefact = model::EncodeWeights(student, {version, 0, "test", 0}, model::WeightDtype::kF32).value();
  update::Manifest m = ManifestAt(UnixNow());
  m.version = version;
  m.model_id = model_id;
  m.arch_hash = update::ArchHash(student.options());
  m.target_digest = update::StateDigest(update::StateOf(student));
  m.artifact_size = artefact.size();
  m.artifact_sha256 = Sha256Hex(artefact);
  m.chunk_size = 4096;
  return {update::EncodeSignedManifest(update::SignManifest(m, key).value()), std::move(artefact)};
}

wire::Message ChunkReply(const wire::Message& request, const std::vector<uint8_t>& artefact) {
  const auto& h = request.header;
  wire::Message r;
  r.header.type = wire::MsgType::kChunk;
  r.header.device_id = h.device_id;
  r.header.object_id = h.object_id;
  r.header.offset = h.offset;
  r.payload.assign(reinterpret_cast<const char*>(artefact.data()) + h.offset, h.length);
  r.header.length = r.payload.size();
  return r;
}

wire::Message StatusReply(const wire::Message& status, std::string manifest, uint64_t desired_version = 2) {
  wire::Message r;
  r.header.type = wire::MsgType::kStatusReply;
  r.header.device_id = status.header.device_id;
  r.header.desired_version = desired_version;
  r.payload = std::move(manifest);
  return r;
}

// A temporary directory with a trusted signing key (s.key/s.pub) and a factory model, for the
// tests against a FakeLearner. Removes the directory when destroyed.
struct UpdateFixture {
  explicit UpdateFixture(const std::string& name, bool one_to_one_factory = false)
      : dir(fs::path(::testing::TempDir()) / (name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    key = update::GenerateSigningKey().value();
    KD_CHECK(update::WriteSigningKey((dir / "s.key").string(), (dir / "s.pub").string(), key).ok());
    factory = MakeFactoryModel(dir, one_to_one_factory);
  }
  ~UpdateFixture() { fs::remove_all(dir); }
  fs::path dir;
  update::SigningKeyPair key;
  std::string factory;
};

// Every status gets a manifest in turn: tampered after signing, expired, signed by a foreign key.
TEST(LoopTest, TamperedExpiredOrForeignManifestsAreRefusedAndTheModelStays) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  UpdateFixture fx("kd_manifest");
  const fs::path& dir = fx.dir;
  const std::string& factory = fx.factory;
  const update::SigningKeyPair* trusted = &fx.key;
  auto foreign = update::GenerateSigningKey();
  ASSERT_TRUE(foreign.ok());

  update::Manifest m = ManifestAt(UnixNow());
  m.model_id = "cam-x";
  m.arch_hash = std::string(64, 'a');
  m.target_digest = std::string(64, 'b');
  m.artifact_size = 1000;
  m.artifact_sha256 = std::string(64, 'c');
  std::vector<std::string> offers;
  {
    auto s = update::SignManifest(m, *trusted);
    ASSERT_TRUE(s.ok());
    s->bytes[s->bytes.size() / 2] ^= 0x01;
    offers.push_back(update::EncodeSignedManifest(*s));
  }
  {
    update::Manifest expired = m;
    expired.created_unix_s -= 7200;
    expired.expires_unix_s -= 7200;
    auto s = update::SignManifest(expired, *trusted);
    ASSERT_TRUE(s.ok());
    offers.push_back(update::EncodeSignedManifest(*s));
  }
  {
    auto s = update::SignManifest(m, *foreign);
    ASSERT_TRUE(s.ok());
    offers.push_back(update::EncodeSignedManifest(*s));
  }
  std::atomic<int> rejected{0}, chunk_requests{0};
  size_t next = 0;
  FakeLearner learner([&](const wire::Message& in) -> std::optional<wire::Message> {
    const auto& h = in.header;
    if (h.type == wire::MsgType::kStatus) return StatusReply(in, offers[next++ % offers.size()]);
    if (h.type == wire::MsgType::kUpdateReport && h.outcome == wire::UpdateOutcome::kRejected) ++rejected;
    if (h.type == wire::MsgType::kChunkRequest) ++chunk_requests;
    return std::nullopt;
  });
  auto opts = config::LoadEdgeOptions("", learner.EdgeOverrides("cam-x", dir, factory, dir / "s.pub"));
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  auto agent = edge::EdgeAgent::Start(*opts);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  EXPECT_TRUE(WaitFor([&] { return rejected >= 3; }, seconds(30)));
  const auto k = (*agent)->counters();
  EXPECT_GE(k.rejected_manifests, 3u);
  EXPECT_EQ(k.running_version, 1u);
  EXPECT_EQ(k.swaps, 0u);
  EXPECT_EQ(chunk_requests.load(), 0) << "nothing may be downloaded for a manifest that does not verify";
  EXPECT_GT(k.frames_inferred, 0u);
  (*agent)->Stop(milliseconds(0));
}

// A correctly signed update whose weights produce NaN: downloaded in chunks, verified, then refused
// by the self-test before it ever runs on a camera frame; the running model stays.
TEST(LoopTest, AModelThatFailsTheSelfTestIsRefusedAndReported) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  UpdateFixture fx("kd_selftest");
  const fs::path& dir = fx.dir;
  const std::string& factory = fx.factory;
  const update::SigningKeyPair* key = &fx.key;
  auto loaded = model::LoadWeights(factory);
  ASSERT_TRUE(loaded.ok());
  model::Student broken = loaded->student;
  {
    torch::NoGradGuard ng;
    broken->named_parameters()[broken->named_parameters().keys().back()].fill_(std::nanf(""));
  }
  const auto [offer, artefact] = SignedFullUpdate(*broken, 2, "cam-y", *key);

  std::atomic<int> rejected{0}, chunks{0};
  std::string reason;
  std::mutex reason_mu;
  FakeLearner learner([&](const wire::Message& in) -> std::optional<wire::Message> {
    const auto& h = in.header;
    if (h.type == wire::MsgType::kStatus) return StatusReply(in, offer);
    if (h.type == wire::MsgType::kChunkRequest) {
      ++chunks;
      return ChunkReply(in, artefact);
    }
    if (h.type == wire::MsgType::kUpdateReport && h.outcome == wire::UpdateOutcome::kRejected) {
      std::lock_guard lock(reason_mu);
      reason = h.error_text;
      ++rejected;
    }
    return std::nullopt;
  });
  auto opts = config::LoadEdgeOptions("", learner.EdgeOverrides("cam-y", dir, factory, dir / "s.pub"));
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  auto agent = edge::EdgeAgent::Start(*opts);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  EXPECT_TRUE(WaitFor([&] { return rejected >= 1; }, seconds(30)));
  const auto k = (*agent)->counters();
  EXPECT_GT(chunks.load(), 1) << "the artefact comes in several chunks";
  EXPECT_EQ(k.running_version, 1u);
  EXPECT_EQ(k.swaps, 0u);
  {
    std::lock_guard lock(reason_mu);
    EXPECT_NE(reason.find("non-finite"), std::string::npos) << reason;
  }
  (*agent)->Stop(milliseconds(0));
}

}  // namespace
}  // namespace kd

namespace kd {
namespace {

// A process that dies while a new model is on probation (here: stopped before the probation ends,
// which leaves the slots exactly as kill -9 would: the trial staged, not committed) runs the trial
// again at the next start, and after more than update.max_trial_starts such starts returns to the
// committed model: A or B, never a mix, and never stuck on an unproven model.
TEST(LoopTest, ATrialInterruptedByRestartsIsAbandonedAfterMaxTrialStarts) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  UpdateFixture fx("kd_trial");
  const fs::path& dir = fx.dir;
  const std::string& factory = fx.factory;
  const update::SigningKeyPair* key = &fx.key;
  model::Student next = model::LoadWeights(factory).value().student;
  {
    torch::NoGradGuard ng;
    for (auto& p : next->parameters()) p.add_(0.01);
  }
  const auto [offer, artefact] = SignedFullUpdate(*next, 2, "cam-z", *key);
  std::atomic<bool> offering{true};
  FakeLearner learner([&](const wire::Message& in) -> std::optional<wire::Message> {
    if (in.header.type == wire::MsgType::kStatus && offering) return StatusReply(in, offer);
    if (in.header.type == wire::MsgType::kChunkRequest) return ChunkReply(in, artefact);
    return std::nullopt;
  });
  auto overrides = learner.EdgeOverrides("cam-z", dir, factory, dir / "s.pub");
  overrides.push_back("update.probation_seconds=3600");  // the trial never ends by itself here
  overrides.push_back("update.max_trial_starts=2");
  auto opts = config::LoadEdgeOptions("", overrides);
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  {
    auto agent = edge::EdgeAgent::Start(*opts);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    ASSERT_TRUE(WaitFor([&] { return (*agent)->counters().running_version == 2; }, seconds(30)));
    EXPECT_EQ((*agent)->counters().committed_version, 1u);
    (*agent)->Stop(milliseconds(0));
  }
  offering = false;
  for (int start = 1; start <= 2; ++start) {  // starts 1 and 2 run the trial again
    auto agent = edge::EdgeAgent::Start(*opts);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    ASSERT_TRUE(WaitFor([&] { return (*agent)->counters().frames_inferred > 3; }, seconds(30)));
    EXPECT_EQ((*agent)->counters().running_version, 2u) << "start " << start;
    (*agent)->Stop(milliseconds(0));
  }
  auto agent = edge::EdgeAgent::Start(*opts);  // start 3 > max_trial_starts: back to v1
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  ASSERT_TRUE(WaitFor([&] { return (*agent)->counters().frames_inferred > 3; }, seconds(30)));
  EXPECT_EQ((*agent)->counters().running_version, 1u);
  EXPECT_EQ((*agent)->counters().committed_version, 1u);
  (*agent)->Stop(milliseconds(0));
}

}  // namespace
}  // namespace kd

namespace kd {
namespace {

// A delta update from `base` (running as `base_version`) to `target`, signed by `key`:
// (transport blob, artefact).
std::pair<std::string, std::vector<uint8_t>> SignedDeltaUpdate(const model::StudentImpl& base,
                                                               const model::StudentImpl& target, uint64_t base_version,
                                                               uint64_t version, const std::string& model_id,
                                                               const update::SigningKeyPair& key) {
  auto delta =
      update::EncodeDelta(update::StateOf(base), update::StateOf(target), update::ParameterNames(target)).value();
  update::Manifest m = ManifestAt(UnixNow());
  m.version = version;
  m.base_version = base_version;
  m.kind = update::ArtifactKind::kDelta;
  m.model_id = model_id;
  m.arch_hash = update::ArchHash(target.options());
  m.target_digest = update::StateDigest(delta.reconstructed);
  m.artifact_size = delta.bytes.size();
  m.artifact_sha256 = Sha256Hex(delta.bytes);
  m.chunk_size = 4096;
  return {update::EncodeSignedManifest(update::SignManifest(m, key).value()), std::move(delta.bytes)};
}

// A fake learner that offers a sequence of signed updates, each once the edge has committed the one
// before, and records the edge's reports.
struct UpdateSequence {
  struct Offer {
    uint64_t version = 0;
    std::string manifest;
    std::vector<uint8_t> artefact;
  };
  std::vector<Offer> offers;
  std::mutex mu;
  std::vector<uint64_t> committed;  // UPDATE_REPORT committed, in order
  std::vector<std::string> refusals;

  std::optional<wire::Message> Handle(const wire::Message& in) {
    const auto& h = in.header;
    if (h.type == wire::MsgType::kStatus) {
      for (const Offer& o : offers) {
        if (h.status.committed_version < o.version) return StatusReply(in, o.manifest, o.version);
      }
      return std::nullopt;  // every offer committed
    }
    if (h.type == wire::MsgType::kChunkRequest) {
      for (const Offer& o : offers) {
        if (h.object_id == Sha256Hex(o.artefact)) return ChunkReply(in, o.artefact);
      }
    }
    if (h.type == wire::MsgType::kUpdateReport) {
      std::lock_guard lock(mu);
      if (h.outcome == wire::UpdateOutcome::kCommitted) committed.push_back(h.model_version);
      if (h.outcome != wire::UpdateOutcome::kCommitted) refusals.push_back(h.error_text);
    }
    return std::nullopt;
  }
};

// v2 for `device`: the fixture's factory model with every parameter moved by 0.01, as a signed
// full update. A model that runs like v1 (so it passes the self-test) but is another version.
UpdateSequence::Offer NudgedFactoryOffer(const UpdateFixture& fx, const std::string& device) {
  model::Student next = model::LoadWeights(fx.factory).value().student;
  {
    torch::NoGradGuard ng;
    for (auto& p : next->parameters()) p.add_(0.01);
  }
  auto update = SignedFullUpdate(*next, 2, device, fx.key);
  return {2, std::move(update.first), std::move(update.second)};
}

// The model_version of every JSON line of a detections file.
std::set<uint64_t> VersionsInDetections(const fs::path& jsonl, size_t* lines) {
  std::set<uint64_t> versions;
  std::ifstream in(jsonl);
  std::string line;
  *lines = 0;
  while (std::getline(in, line)) {
    const auto at = line.find("\"model_version\":");
    if (at == std::string::npos) continue;
    versions.insert(std::stoull(line.substr(at + 16)));
    ++*lines;
  }
  return versions;
}

// NMS-free (one-to-one) students on a camera, as the built-in recipe and CAKD train them: a device
// bootstrapped with one runs and uploads; a delta to another NMS-free version is installed; a
// full one-to-many version replaces it, and a one-to-one version replaces that. Each is verified,
// self-tested, swapped in between frames and committed after probation, and every frame is
// written as a JSON line under the version that ran it.
TEST(LoopTest, NmsFreeStudentsRunUpdateAndSwapWithOneToManyStudentsBothWays) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  UpdateFixture fx("kd_o2o", /*one_to_one_factory=*/true);
  const model::Student v1 = model::LoadWeights(fx.factory).value().student;
  ASSERT_TRUE(v1->options().one_to_one);
  model::Student v2 = model::LoadWeights(fx.factory).value().student;
  {
    torch::NoGradGuard ng;
    for (auto& p : v2->parameters()) p.add_(0.01);
  }
  model::StudentOptions one_to_many = v1->options();
  one_to_many.one_to_one = false;
  torch::manual_seed(3);
  model::Student v3(one_to_many);
  v3->eval();
  torch::manual_seed(4);
  model::Student v4(v1->options());
  v4->eval();

  UpdateSequence seq;
  auto add = [&](uint64_t version, std::pair<std::string, std::vector<uint8_t>> update) {
    seq.offers.push_back({version, std::move(update.first), std::move(update.second)});
  };
  add(2, SignedDeltaUpdate(*v1, *v2, 1, 2, "cam-o2o", fx.key));
  add(3, SignedFullUpdate(*v3, 3, "cam-o2o", fx.key));
  add(4, SignedFullUpdate(*v4, 4, "cam-o2o", fx.key));
  FakeLearner learner([&](const wire::Message& in) { return seq.Handle(in); });

  auto overrides = learner.EdgeOverrides("cam-o2o", fx.dir, fx.factory, fx.dir / "s.pub");
  const fs::path jsonl = fx.dir / "cam-o2o.jsonl";
  overrides.push_back("output.detections=" + jsonl.string());
  overrides.push_back("source.loop=true");
  overrides.push_back("update.probation_frames=5");
  overrides.push_back("update.probation_seconds=0");
  overrides.push_back("update.max_latency_ratio=50");  // about heads, not timing on a shared machine
  auto opts = config::LoadEdgeOptions("", overrides);
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  auto agent = edge::EdgeAgent::Start(*opts);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  const bool all_committed = WaitFor([&] { return (*agent)->counters().committed_version == 4; }, seconds(120));
  (*agent)->Stop(milliseconds(0));
  const auto k = (*agent)->counters();
  {
    std::lock_guard lock(seq.mu);
    std::string refusals;
    for (const auto& r : seq.refusals) refusals += r + "; ";
    ASSERT_TRUE(all_committed) << "committed v" << k.committed_version << ", refusals: " << refusals;
    EXPECT_EQ(seq.committed, (std::vector<uint64_t>{2, 3, 4}));
    EXPECT_TRUE(seq.refusals.empty()) << refusals;
  }
  EXPECT_EQ(k.running_version, 4u);
  EXPECT_EQ(k.swaps, 3u);
  EXPECT_EQ(k.commits, 3u);
  EXPECT_EQ(k.rollbacks, 0u);
  EXPECT_EQ(k.inference_errors, 0u);
  EXPECT_GT(k.frames_selected, 0u) << "uplink selection runs on the NMS-free head";
  size_t lines = 0;
  EXPECT_EQ(VersionsInDetections(jsonl, &lines), (std::set<uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(lines, k.frames_inferred);
}

// A version rolled back on probation is not installed again by the same edge, even when the
// learner keeps offering it (here a scripted learner that offers v2 until it is committed). The
// test's inference clock makes v2 look 3 s slower per frame once it is on probation; the latency
// ratio allowed (20) leaves the self-test, timed on the real clock, room for a busy machine (a CI
// run measured 10.2 ms against 2.7 ms there, and a ratio of 3 refused v2 before probation).
TEST(LoopTest, AVersionRolledBackOnProbationIsNotInstalledAgain) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  UpdateFixture fx("kd_no_retry");
  UpdateSequence seq;
  seq.offers.push_back(NudgedFactoryOffer(fx, "cam-r"));
  FakeLearner learner([&](const wire::Message& in) { return seq.Handle(in); });
  testing::SlowInferenceClock clock(3'000'000'000);
  edge::EdgeSeams seams;
  seams.inference_clock = &clock;
  auto overrides = learner.EdgeOverrides("cam-r", fx.dir, fx.factory, fx.dir / "s.pub");
  overrides.push_back("update.probation_frames=10");
  overrides.push_back("update.probation_seconds=1");
  overrides.push_back("update.max_latency_ratio=20");
  auto opts = config::LoadEdgeOptions("", overrides);
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  auto agent = edge::EdgeAgent::Start(*opts, seams);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto k = (*agent)->counters();
        clock.set_slow(k.running_version == 2);
        return k.rollbacks >= 1;
      },
      seconds(60)))
      << (*agent)->StatusJson();
  clock.set_slow(false);
  std::this_thread::sleep_for(seconds(6));  // 30 status rounds that offer v2 again
  const auto k = (*agent)->counters();
  EXPECT_EQ(k.swaps, 1u) << "v2 was installed again after its rollback";
  EXPECT_EQ(k.rollbacks, 1u);
  EXPECT_EQ(k.committed_version, 1u);
  EXPECT_EQ(k.running_version, 1u);
  {
    std::lock_guard lock(seq.mu);
    ASSERT_EQ(seq.refusals.size(), 1u);
    EXPECT_NE(seq.refusals[0].find("inference"), std::string::npos) << seq.refusals[0];
  }
  (*agent)->Stop(milliseconds(0));
}

// A model whose forward throws inside LibTorch (here: built by a model builder that breaks one
// convolution, the seam of edge/running_model.h): offered as an update, it is refused by the
// self-test and reported, and the daemon keeps running on the model it had; as the only model of
// a device, it stops the start with an error instead of a crash.
TEST(LoopTest, AModelWhoseForwardThrowsIsRefusedAndTheEdgeStaysUp) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  UpdateFixture fx("kd_throw", /*one_to_one_factory=*/true);
  UpdateSequence seq;
  seq.offers.push_back(NudgedFactoryOffer(fx, "cam-t"));
  FakeLearner learner([&](const wire::Message& in) { return seq.Handle(in); });
  std::atomic<uint64_t> break_version{2};
  edge::EdgeSeams seams;
  seams.build_model = [&](const model::StudentImpl& s, uint64_t version,
                          bool trial) -> Result<std::shared_ptr<const edge::RunningModel>> {
    if (version != break_version) return edge::BuildRunningModel(s, version, trial);
    model::Student broken(s.options());
    broken->eval();
    torch::NoGradGuard ng;
    broken->named_parameters()["cls_o2o.weight"].set_data(torch::zeros({6, 3, 1, 1}));
    return edge::BuildRunningModel(*broken, version, trial);
  };
  auto opts = config::LoadEdgeOptions("", learner.EdgeOverrides("cam-t", fx.dir, fx.factory, fx.dir / "s.pub"));
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  {
    auto agent = edge::EdgeAgent::Start(*opts, seams);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    ASSERT_TRUE(WaitFor(
        [&] {
          std::lock_guard lock(seq.mu);
          return !seq.refusals.empty();
        },
        seconds(30)));
    const uint64_t inferred = (*agent)->counters().frames_inferred;
    ASSERT_TRUE(WaitFor([&] { return (*agent)->counters().frames_inferred > inferred + 5; }, seconds(30)))
        << "the edge keeps inferring after the refusal";
    const auto k = (*agent)->counters();
    EXPECT_EQ(k.running_version, 1u);
    EXPECT_EQ(k.committed_version, 1u);
    EXPECT_EQ(k.swaps, 0u);
    EXPECT_EQ(k.inference_errors, 0u);
    {
      std::lock_guard lock(seq.mu);
      EXPECT_NE(seq.refusals[0].find("self-test"), std::string::npos) << seq.refusals[0];
      EXPECT_NE(seq.refusals[0].find("Internal"), std::string::npos) << seq.refusals[0];
    }
    (*agent)->Stop(milliseconds(0));
  }
  break_version = 1;  // the committed model itself cannot run: a clear error, no abort
  auto agent = edge::EdgeAgent::Start(*opts, seams);
  ASSERT_FALSE(agent.ok());
  EXPECT_NE(agent.status().message().find("v1 cannot run"), std::string::npos) << agent.status().ToString();
}

}  // namespace
}  // namespace kd

namespace kd {
namespace {

// Issue 12, defect 1: the edge died after the last chunk of an update reached disk but before the
// install. At the next start the download resumes "at" its full length, so no chunk is requested
// and none arrives; the install must still happen (it used to wait for a chunk for ever).
TEST(LoopTest, ADownloadCompleteOnDiskBeforeARestartIsInstalled) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  UpdateFixture fx("kd_complete_partial");
  UpdateSequence seq;
  seq.offers.push_back(NudgedFactoryOffer(fx, "cam-p"));
  const auto& artefact = seq.offers[0].artefact;
  {  // what the dead process left: every byte on disk, not finished
    fs::create_directories(fx.dir / "slots");
    auto d = update::ModelSlots::Download::Begin((fx.dir / "slots").string(), Sha256Hex(artefact), artefact.size());
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    ASSERT_TRUE(d->Append(0, artefact).ok());
    ASSERT_TRUE(d->complete());
  }
  std::atomic<int> chunk_requests{0};
  FakeLearner learner([&](const wire::Message& in) {
    if (in.header.type == wire::MsgType::kChunkRequest) ++chunk_requests;
    return seq.Handle(in);
  });
  auto overrides = learner.EdgeOverrides("cam-p", fx.dir, fx.factory, fx.dir / "s.pub");
  overrides.push_back("source.loop=true");
  overrides.push_back("update.probation_frames=5");
  overrides.push_back("update.probation_seconds=0");
  overrides.push_back("update.max_latency_ratio=50");
  auto opts = config::LoadEdgeOptions("", overrides);
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  auto agent = edge::EdgeAgent::Start(*opts);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  EXPECT_TRUE(WaitFor([&] { return (*agent)->counters().committed_version == 2; }, seconds(60)))
      << "running v" << (*agent)->counters().running_version << ", downloading " << (*agent)->counters().downloading;
  EXPECT_EQ(chunk_requests.load(), 0) << "nothing was missing";
  (*agent)->Stop(milliseconds(0));
}

}  // namespace
}  // namespace kd

namespace kd {
namespace {

// Issue 13 with the real learner: a kdlearnd whose bootstrap is an NMS-free student (so its recipe
// trains with CAKD, on top of a recipe file that had CrossKD off) labels, trains, gates and
// publishes one-to-one versions, and an edge runs, installs and commits them. Before, the learner
// aborted in its first training round and the edge on its first frame.
TEST(LoopTest, ALearnerWithAnNmsFreeBootstrapPublishesVersionsTheEdgeCommits) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  UpdateFixture fx("kd_o2o_learner", /*one_to_one_factory=*/true);
  const int frames_port = FreePort(), control_port = FreePort();
  WriteText(fx.dir / "kdlearnd.toml",
            "[server]\nframes_endpoint = \"tcp://127.0.0.1:" + std::to_string(frames_port) +
                "\"\ncontrol_endpoint = \"tcp://127.0.0.1:" + std::to_string(control_port) +
                "\"\ninsecure = true\n[store]\npath = \"store\"\n[training]\nrecipe = \"" + std::string(KD_SOURCE_DIR) +
                "/tests/integration/one_scale.toml\"\nthreads = 2\nbootstrap = \"" + fx.factory +
                "\"\nround_iterations = 8\nround_frames = 24\nmin_frames = 12\n"
                "[gate]\nholdout_every = 4\nholdout_span_ms = 0\nmin_holdout = 3\nmargin = -1.0\n"
                "[publish]\nsigning_key = \"s.key\"\n");
  Learner learner((fx.dir / "kdlearnd.toml").string());
  learner.Start();
  const std::vector<std::string> set = {
      "device_id=cam-o",
      "source.uri=" + AssetPath("vtest.avi"),
      "source.end=120",
      "source.loop=true",
      "source.fps=12",
      "model.dir=" + (fx.dir / "slots").string(),
      "model.bootstrap=" + fx.factory,
      "learner.insecure=true",
      "learner.frames_endpoint=tcp://127.0.0.1:" + std::to_string(frames_port),
      "learner.control_endpoint=tcp://127.0.0.1:" + std::to_string(control_port),
      "uplink.max_fps=4",
      "update.trusted_keys=[\"" + (fx.dir / "s.pub").string() + "\"]",
      "update.probation_frames=10",
      "update.probation_seconds=1",
      "update.max_latency_ratio=100",  // about heads, not timing on a shared machine
      "output.detections=",
      "output.status_interval_ms=500",
  };
  auto opts = config::LoadEdgeOptions("", set);
  ASSERT_TRUE(opts.ok()) << opts.status().ToString();
  auto agent = edge::EdgeAgent::Start(*opts);
  ASSERT_TRUE(agent.ok()) << agent.status().ToString();
  EXPECT_TRUE(WaitFor([&] { return (*agent)->counters().committed_version >= 2; }, seconds(300)))
      << (*agent)->StatusJson();
  const auto k = (*agent)->counters();
  EXPECT_EQ(k.inference_errors, 0u);
  EXPECT_EQ(k.rollbacks, 0u);
  EXPECT_GT(k.frames_acked, 0u);
  (*agent)->Stop(milliseconds(1000));
  EXPECT_EQ(learner.Kill(SIGTERM), 0) << "the learner must still be running and drain cleanly";
}

}  // namespace
}  // namespace kd

namespace kd {
namespace {

// Issue 12, crash loops: the learner is killed with -9 at random moments while two edges stream,
// and restarted each time; every frame an edge saw acknowledged must be in the store at the end.
// KD_CRASH_LOOPS sets the number of kills (default 5 in ctest; scripts/crash_loops.sh runs 100).
TEST(LoopTest, RandomKill9OfTheLearnerWhileEdgesStreamLosesNoAcknowledgedFrame) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  const char* env = std::getenv("KD_CRASH_LOOPS");
  const int kills = env != nullptr ? std::max(1, std::atoi(env)) : 5;
  UpdateFixture fx("kd_crash_loop");
  const int frames_port = FreePort(), control_port = FreePort();
  WriteText(fx.dir / "kdlearnd.toml", "[server]\nframes_endpoint = \"tcp://127.0.0.1:" + std::to_string(frames_port) +
                                          "\"\ncontrol_endpoint = \"tcp://127.0.0.1:" + std::to_string(control_port) +
                                          "\"\ninsecure = true\n[store]\npath = \"store\"\n"
                                          "[training]\nmin_frames = 1000000000\n"  // ingest and labelling only
                                          "[publish]\nsigning_key = \"s.key\"\n");
  Learner learner((fx.dir / "kdlearnd.toml").string());
  learner.Start();
  std::vector<std::unique_ptr<edge::EdgeAgent>> edges;
  for (const char* cam : {"crash-1", "crash-2"}) {
    auto opts = config::LoadEdgeOptions(
        "",
        {std::string("device_id=") + cam, "source.uri=" + AssetPath("vtest.avi"), "source.end=200", "source.loop=true",
         "source.fps=15", "model.dir=" + (fx.dir / cam).string(), "model.bootstrap=" + fx.factory,
         "learner.insecure=true", "learner.frames_endpoint=tcp://127.0.0.1:" + std::to_string(frames_port),
         "learner.control_endpoint=tcp://127.0.0.1:" + std::to_string(control_port), "learner.timeout_ms=2000",
         "learner.heartbeat_ms=500", "learner.reconnect_max_ms=1000", "uplink.max_fps=15",
         "uplink.resend_after_ms=1000", "update.trusted_keys=[\"" + (fx.dir / "s.pub").string() + "\"]",
         "output.detections="});
    ASSERT_TRUE(opts.ok()) << opts.status().ToString();
    auto agent = edge::EdgeAgent::Start(*opts);
    ASSERT_TRUE(agent.ok()) << agent.status().ToString();
    edges.push_back(std::move(agent).value());
  }
  auto acked = [&] { return edges[0]->counters().frames_acked + edges[1]->counters().frames_acked; };
  ASSERT_TRUE(WaitFor([&] { return acked() >= 10; }, seconds(120)));
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> pause_ms(200, 2500);
  const auto t0 = std::chrono::steady_clock::now();
  for (int k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(milliseconds(pause_ms(rng)));  // mid-stream, at a random moment
    ASSERT_EQ(learner.Kill(SIGKILL), -SIGKILL);
    const uint64_t before = acked();
    learner.Start();
    ASSERT_TRUE(WaitFor([&] { return acked() > before; }, seconds(120))) << "uploads did not resume after kill " << k;
  }
  const double seconds_per_kill =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(kills);
  for (auto& e : edges) e->Stop(milliseconds(3000));
  EXPECT_EQ(learner.Kill(SIGTERM), 0);

  storage::StoreOptions so;
  so.path = (fx.dir / "store").string();
  so.create_if_missing = false;
  auto db = storage::SampleStore::Open(so);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  size_t checked = 0, lost = 0;
  for (size_t i = 0; i < edges.size(); ++i) {
    const std::string cam = i == 0 ? "crash-1" : "crash-2";
    for (uint64_t seq : edges[i]->AckedSeqs()) {
      auto f = (*db)->GetFrame(cam, seq);
      ASSERT_TRUE(f.ok()) << f.status().ToString();
      if (!f->has_value()) ++lost;
      ++checked;
    }
  }
  std::cout << "[ crash loop ] " << kills << " x kill -9 of the learner while 2 edges streamed (" << seconds_per_kill
            << " s per kill and recovery): " << checked << " acknowledged frames checked, " << lost << " lost\n";
  EXPECT_EQ(lost, 0u);
  EXPECT_GT(checked, static_cast<size_t>(kills));
}

}  // namespace
}  // namespace kd

namespace kd {
namespace {

using testing::AssetsPresent;
using testing::ChildProcess;
using testing::FreePort;
using testing::Learner;
using testing::MakeFactoryModel;
using testing::WaitFor;
using testing::WriteText;

// kdedge run --config CONFIG, its output appended to `log`.
class EdgeProcess : public ChildProcess {
 public:
  EdgeProcess(const std::string& config, const std::string& log)
      : ChildProcess({KD_KDEDGE, "run", "--config", config, "--set", "http.listen=\"127.0.0.1:0\""}, log) {}
};

// Issue 12, crash loops on the edge: a kdedge process is killed with -9 at random moments while a
// learner publishes a new version every few seconds, so kills land while it downloads, stages,
// runs a trial on probation or runs a committed model. After every kill the slot directory must
// open and name only whole, checksum-valid models; after the loop the edge must still take the
// next update. KD_TEST_EDGE_KILLS sets the number of kills (default 5; the script runs 50); not a
// KD_EDGE_* name, which kdedge would read as a config override.
TEST(LoopTest, RandomKill9OfAnEdgeDuringUpdatesAlwaysComesBackOnAWholeModel) {
  if (!AssetsPresent()) GTEST_SKIP() << "assets missing (scripts/fetch_assets.sh)";
  const char* env = std::getenv("KD_TEST_EDGE_KILLS");
  const int kills = env != nullptr ? std::max(1, std::atoi(env)) : 5;
  UpdateFixture fx("kd_edge_crash");
  const int frames_port = FreePort(), control_port = FreePort();
  WriteText(
      fx.dir / "kdlearnd.toml",
      "[server]\nframes_endpoint = \"tcp://127.0.0.1:" + std::to_string(frames_port) +
          "\"\ncontrol_endpoint = \"tcp://127.0.0.1:" + std::to_string(control_port) +
          "\"\ninsecure = true\n[store]\npath = \"store\"\n[training]\nrecipe = \"" + std::string(KD_SOURCE_DIR) +
          "/tests/integration/one_scale.toml\"\nthreads = 1\nbootstrap = \"" + fx.factory +
          "\"\nround_iterations = 3\nround_frames = 16\nmin_frames = 8\n"
          "[gate]\nholdout_every = 4\nholdout_span_ms = 0\nmin_holdout = 2\nmargin = -1.0\n"  // publish every round
          "[publish]\nsigning_key = \"s.key\"\n[rollout]\ncanary_probation_s = 0\n");
  const fs::path slots = fx.dir / "slots";
  WriteText(fx.dir / "cam.toml",
            "device_id = \"cam-k\"\n[source]\nuri = \"" + AssetPath("vtest.avi") +
                "\"\nend = 200\nloop = true\nfps = 10\n[model]\ndir = \"" + slots.string() + "\"\nbootstrap = \"" +
                fx.factory +
                "\"\n[learner]\ninsecure = true\nframes_endpoint = \"tcp://127.0.0.1:" + std::to_string(frames_port) +
                "\"\ncontrol_endpoint = \"tcp://127.0.0.1:" + std::to_string(control_port) +
                "\"\n[uplink]\nmax_fps = 4\n[update]\ntrusted_keys = [\"" + (fx.dir / "s.pub").string() +
                "\"]\nprobation_frames = 10\nprobation_seconds = 2\nmax_latency_ratio = 100\n"
                "[output]\ndetections = \"\"\nstatus_interval_ms = 300\n");
  Learner learner((fx.dir / "kdlearnd.toml").string());
  learner.Start();
  EdgeProcess edge((fx.dir / "cam.toml").string(), (fx.dir / "cam.log").string());
  edge.Start();
  const std::string admin = "ipc://" + (fx.dir / "store" / "admin.sock").string();
  auto device = [&]() -> nlohmann::json {
    auto reply = wire::AdminCall(admin, R"({"cmd":"status"})", milliseconds(3000));
    if (!reply.ok()) return nlohmann::json::object();
    const auto doc = nlohmann::json::parse(*reply, nullptr, false);
    if (!doc.is_object() || !doc.contains("devices") || !doc["devices"].contains("cam-k")) {
      return nlohmann::json::object();
    }
    return doc["devices"]["cam-k"];
  };
  auto committed = [&] { return device().value("committed_version", uint64_t{0}); };
  ASSERT_TRUE(WaitFor([&] { return committed() >= 2; }, seconds(300))) << "no update reached the edge";

  std::mt19937 rng(4321);
  std::uniform_int_distribution<int> pause_ms(300, 3000);
  std::map<std::string, int> kills_in_state;
  for (int k = 0; k < kills; ++k) {
    std::this_thread::sleep_for(milliseconds(pause_ms(rng)));
    ++kills_in_state[device().value("state", std::string("unknown"))];  // as last reported (<= 300 ms old)
    ASSERT_EQ(edge.Kill(SIGKILL), -SIGKILL);
    // What a restarted edge finds: a store that opens, and whole, checksum-valid models only.
    {
      auto s = update::ModelSlots::Open(slots.string());
      ASSERT_TRUE(s.ok()) << "kill " << k << ": " << s.status().ToString();
      ASSERT_FALSE(s->CommittedPath().empty());
      auto c = model::LoadWeights(s->CommittedPath());
      ASSERT_TRUE(c.ok()) << "kill " << k << ": committed model: " << c.status().ToString();
      if (!s->TrialPath().empty()) {
        auto t = model::LoadWeights(s->TrialPath());
        ASSERT_TRUE(t.ok()) << "kill " << k << ": trial model: " << t.status().ToString();
      }
    }
    edge.Start();
  }
  // It still takes the next update.
  const uint64_t at_end = std::max<uint64_t>(committed(), 1);
  EXPECT_TRUE(WaitFor([&] { return committed() > at_end; }, seconds(300)))
      << "the edge did not commit a version after v" << at_end;
  std::string states;
  for (const auto& [state, n] : kills_in_state) states += " " + state + "=" + std::to_string(n);
  std::cout << "[ edge crash loop ] " << kills << " x kill -9 of kdedge; state at the kill:" << states
            << "; committed v" << at_end << " then v" << committed() << "\n";
  EXPECT_EQ(edge.Kill(SIGTERM), 0);
  EXPECT_EQ(learner.Kill(SIGTERM), 0);
}

}  // namespace
}  // namespace kd
