// The edge's stages at once, as the agent runs them: capture, inference and the uplink each on their
// own thread (bounded queues between them), while this thread does what the updater does to the
// shared parts (stages trial models, self-tests them against the running one on the latest frame,
// judges probation, commits or rolls back, reads the counters). The checks are light; the point is
// the ThreadSanitizer build (docs/DEVELOPING.md, "Sanitizers").
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/clock.h"
#include "edge/bounded_queue.h"
#include "edge/capture.h"
#include "edge/infer.h"
#include "edge/running_model.h"
#include "edge/uplink.h"
#include "tests/edge/fake_link.h"
#include "tests/edge/tiny_model.h"

namespace kd::edge {
namespace {
using std::chrono::milliseconds;

std::shared_ptr<const RunningModel> Tiny(uint64_t version, bool trial) {
  return testing::TinyRunningModel(version, trial);
}

class CountingSource final : public media::FrameSource {
 public:
  explicit CountingSource(int count) : count_(count) {}
  Result<std::optional<media::Frame>> Next() override {
    if (next_ >= count_) return std::optional<media::Frame>();
    media::Frame f;
    f.index = next_;
    f.width = 96, f.height = 64;
    f.rgb.assign(96 * 64 * 3, static_cast<uint8_t>(7 * next_++));
    return std::optional<media::Frame>(std::move(f));
  }
  media::SourceInfo info() const override {
    media::SourceInfo i;
    i.kind = media::SourceKind::kVideoFile;
    return i;
  }

 private:
  int count_, next_ = 0;
};

// The scripted learner of FakeLink (credits on hello, an ack per frame) that waits a little when it
// has nothing to say, as a socket would, instead of letting the uplink spin.
class LearnerLink final : public Link {
 public:
  LearnerLink() {
    fake_.on_send = [this](const wire::Message& m) {
      if (m.header.type == wire::MsgType::kHello) {
        fake_.Reply(wire::MsgType::kCredit, [](wire::Header& h) { h.credits = 8; });
      } else if (m.header.type == wire::MsgType::kFrame) {
        fake_.Reply(wire::MsgType::kAck, [&](wire::Header& h) {
          h.ack_seq = m.header.seq;
          h.credits = 8;
        });
      }
    };
  }
  Status Send(const wire::Message& m) override { return fake_.Send(m); }
  Result<std::optional<wire::Message>> Receive(milliseconds timeout) override {
    if (fake_.inbox.empty()) std::this_thread::sleep_for(std::min(timeout, milliseconds(1)));
    return fake_.Receive(timeout);
  }
  Status Reconnect() override { return fake_.Reconnect(); }

 private:
  testing::FakeLink fake_;
};

TEST(EdgeStagesConcurrencyTest, StagesShareModelsProbationAndStatsOnTheirOwnThreads) {
  constexpr int kFrames = 48;
  FakeClock clock(1'000'000'000);
  EdgeStats stats(clock);
  ProbationOptions po;
  po.frames = 3;
  po.seconds = 0;
  Probation probation(po, clock);
  LatestFrame latest;
  BoundedQueue<media::Frame> capture_q(2);
  BoundedQueue<PendingFrame> upload_q(64);
  const auto v1 = Tiny(1, false);
  ModelHolder models(v1, v1);
  std::vector<std::shared_ptr<const RunningModel>> trials = {Tiny(2, true), Tiny(3, true), Tiny(4, true)};
  LearnerLink link;
  config::EdgeUplinkOptions uo;
  uo.max_fps = 100;
  uo.kbps = 100000;
  config::EdgeLearnerOptions lo;
  config::EdgeSourceOptions so;
  so.uri = "counting";
  so.realtime = false;  // every frame is inferred
  auto picker = UploadPicker::Create(uo, clock);
  ASSERT_TRUE(picker.ok());

  Uplink uplink("cam1", uo, lo, link, upload_q, models, stats, clock);
  Infer infer(0.3, capture_q, upload_q, std::move(picker).value(), models, probation, stats, latest, nullptr, clock);
  Capture capture(
      so, []() -> Result<std::unique_ptr<media::FrameSource>> { return Status::NotFound("one pass only"); },
      std::make_unique<CountingSource>(kFrames), capture_q, stats, clock);
  uplink.Start();
  infer.Start();
  capture.Start();

  // The updater's side, until the source is done.
  size_t next_trial = 0;
  uint64_t commits = 0, self_tests = 0;
  while (!infer.WaitDone(milliseconds(1))) {
    const std::shared_ptr<const RunningModel> settled = models.Settled();
    if (!models.Busy() && next_trial < trials.size()) {
      if (auto frame = latest.Get()) {
        // The self-test runs the running model on this thread while inference runs it on its own.
        EXPECT_TRUE(SelfTest(*trials[next_trial], *models.current(), *frame, 1e9, clock).ok());
        ++self_tests;
      }
      probation.Start();
      models.Stage(trials[next_trial++]);
    } else if (settled && settled->trial) {
      const Probation::Decision d = probation.Decide();
      if (d.verdict == Probation::Verdict::kCommit) {
        auto kept = std::make_shared<RunningModel>(*settled);
        kept->trial = false;
        models.Commit(std::move(kept));
        ++commits;
      } else if (d.verdict == Probation::Verdict::kRollBack) {
        models.RollBack();
      }
    }
    (void)stats.CloseInterval();
  }
  uplink.FinishWhenDrained();
  capture.Stop();
  infer.Join();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!uplink.drained() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(milliseconds(5));
  EXPECT_TRUE(uplink.drained());
  uplink.Stop();

  const EdgeCounters c = stats.Snapshot();
  EXPECT_EQ(c.frames_captured, static_cast<uint64_t>(kFrames));
  EXPECT_EQ(c.frames_inferred, static_cast<uint64_t>(kFrames));
  EXPECT_EQ(c.inference_errors, 0u);
  EXPECT_GE(c.frames_selected, 1u);
  EXPECT_EQ(c.frames_acked, c.frames_selected);
  EXPECT_EQ(c.running_version, models.current()->version);
  EXPECT_LE(commits, trials.size());
  EXPECT_GE(self_tests, 1u);
}

}  // namespace
}  // namespace kd::edge
