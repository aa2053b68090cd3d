// RemoteTeacherPass and AnswerLabelJob over a real c10d store on 127.0.0.1: the coordinator's side
// (a WorkerPool polled as the service polls it) and a label worker's side (a WorkerLink on its own
// thread answering with AnswerLabelJob), with a synthetic teacher on each side.
#include "learner/remote_teacher.h"

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "learner/teacher_record.h"
#include "media/image_ops.h"
#include "tests/learner/label_worker.h"
#include "tests/learner/stage_fixture.h"

namespace kd::learner {
namespace {

using std::chrono::milliseconds;
using testing::LabelWorker;
constexpr const char* kSecret = testing::kClusterSecret;

// Random rows on the requested grid (with the requested labels); keeps the last dataset it made.
class SyntheticTeacher final : public TeacherPass {
 public:
  Result<DistillDataset> Label(const std::vector<media::Frame>& frames, const std::vector<std::vector<uint8_t>>& jpegs,
                               const DatasetOptions& options, const std::atomic<bool>& /*cancel*/) override {
    ++calls;
    jpegs_seen = jpegs.size();
    options_seen = options;
    if (fail) return Status::Internal("teacher forward failed");
    const int w = frames[0].width, h = frames[0].height;
    const int sw = options.student_long_side * w / std::max(w, h), sh = options.student_long_side * h / std::max(w, h);
    DistillDataset d = testing::SyntheticRows(frames.size(), w, h, sw / 4 * 4, sh / 4 * 4);
    d.labels = options.labels;
    d.teacher_dets[0].detections = {Detection{{1, 2, 30, 40}, 0.9f, 0}};
    last = d;
    return d;
  }
  std::atomic<int> calls{0};
  size_t jpegs_seen = 0;
  DatasetOptions options_seen;
  std::atomic<bool> fail{false};
  DistillDataset last;
};

class RemoteTeacherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::move(cluster::KvStore::Serve({.host = "127.0.0.1", .port = 0, .timeout_s = 5})).value();
    pool_ = std::move(cluster::WorkerPool::Open(*server_, {.secret = kSecret, .generation = 1, .worker_timeout_s = 0.5},
                                                SystemClock::Get()))
                .value();
    polling_ = std::thread([this] {
      while (!stop_) {
        (void)pool_->Poll();
        std::this_thread::sleep_for(milliseconds(50));
      }
    });
    for (int i = 0; i < 3; ++i) {
      jpegs_.push_back(testing::GreyJpeg(64, 48, static_cast<uint8_t>(40 * i + 20)));
      frames_.push_back(media::DecodeJpeg(jpegs_.back()).value());
      frames_.back().index = 100 + i;  // the seq, as the labeller sets it
    }
    options_.student_long_side = 32;
    options_.labels = {0, 2};
    options_.refine = {.enabled = true, .extra_long_sides = {640}, .wbf_iou = 0.6};
  }
  void TearDown() override {
    stop_ = true;
    polling_.join();
  }
  int port() const { return server_->port(); }
  // Waits until the pool counts exactly `n` alive label workers (joins and departures take a poll).
  void AwaitLabelWorkers(size_t n) {
    for (int i = 0; i < 200; ++i) {
      size_t alive = 0;
      for (const auto& w : pool_->Workers()) {
        alive += w.role == cluster::WorkerRole::kLabel && w.state == cluster::WorkerState::kAlive;
      }
      if (alive == n) return;
      std::this_thread::sleep_for(milliseconds(20));
    }
    FAIL() << "the pool never counted " << n << " alive label workers";
  }

  std::unique_ptr<cluster::KvStore> server_;
  std::unique_ptr<cluster::WorkerPool> pool_;
  std::atomic<bool> stop_{false};
  std::thread polling_;
  std::vector<std::vector<uint8_t>> jpegs_;
  std::vector<media::Frame> frames_;
  DatasetOptions options_;
  const std::atomic<bool> never_{false};
};

TEST_F(RemoteTeacherTest, ABatchIsLabelledOnALabelWorkerWithTheRowsItsTeacherMade) {
  SyntheticTeacher remote;
  LabelWorker worker(port(), cluster::WorkerRole::kLabel, remote);
  AwaitLabelWorkers(1);
  SyntheticTeacher local;
  RemoteTeacherPass pass(*pool_, local);
  auto data = pass.Label(frames_, jpegs_, options_, never_);
  ASSERT_TRUE(data.ok()) << data.status().ToString();
  EXPECT_EQ(local.calls, 0);
  EXPECT_EQ(worker.jobs, 1);
  EXPECT_EQ(pass.frames_remote(), 3u);
  EXPECT_EQ(pass.frames_local(), 0u);
  // The worker labelled the JPEGs it was sent, under the coordinator's options.
  EXPECT_EQ(remote.jpegs_seen, 3u);
  EXPECT_EQ(remote.options_seen.student_long_side, 32);
  EXPECT_EQ(remote.options_seen.labels, options_.labels);
  EXPECT_EQ(remote.options_seen.refine.extra_long_sides, std::vector<int>{640});
  EXPECT_DOUBLE_EQ(remote.options_seen.refine.wbf_iou, 0.6);
  // What the store will keep is exactly what the worker's teacher made.
  ASSERT_EQ(data->size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(EncodeTeacherRow(*data, i), EncodeTeacherRow(remote.last, i)) << "row " << i;
    EXPECT_EQ(data->frame_indices[i], 100 + static_cast<int64_t>(i));
  }
  EXPECT_EQ(data->images.sizes(), (std::vector<int64_t>{3, 3, 24, 32}));  // the coordinator's frames, resized
  ASSERT_EQ(data->teacher_dets[0].detections.size(), 1u);
  EXPECT_FLOAT_EQ(data->teacher_dets[0].detections[0].box.x2, 30.f);
}

TEST_F(RemoteTeacherTest, WithoutALabelWorkerTheBatchIsLabelledHereAndTrainersGetNoLabelJobs) {
  SyntheticTeacher local;
  RemoteTeacherPass pass(*pool_, local);
  ASSERT_TRUE(pass.Label(frames_, jpegs_, options_, never_).ok());  // nobody joined
  SyntheticTeacher unused;
  LabelWorker trainer(port(), cluster::WorkerRole::kTrain, unused);
  ASSERT_TRUE(pass.Label(frames_, jpegs_, options_, never_).ok());
  EXPECT_EQ(local.calls, 2);
  EXPECT_EQ(pass.frames_local(), 6u);
  EXPECT_EQ(trainer.jobs, 0);
  // Unknown JPEGs (a caller without them): labelled here even with a label worker.
  LabelWorker labeller(port(), cluster::WorkerRole::kLabel, unused);
  AwaitLabelWorkers(1);
  ASSERT_TRUE(pass.Label(frames_, {}, options_, never_).ok());
  EXPECT_EQ(local.calls, 3);
  EXPECT_EQ(labeller.jobs, 0);
}

TEST_F(RemoteTeacherTest, AWorkerThatFailsDiesOrIsLateLeavesTheBatchToTheCoordinator) {
  SyntheticTeacher local;
  {
    SyntheticTeacher broken;
    broken.fail = true;
    LabelWorker failing(port(), cluster::WorkerRole::kLabel, broken);
    AwaitLabelWorkers(1);
    RemoteTeacherPass pass(*pool_, local);
    auto data = pass.Label(frames_, jpegs_, options_, never_);
    ASSERT_TRUE(data.ok()) << data.status().ToString();
    EXPECT_EQ(failing.jobs, 1);
    EXPECT_EQ(local.calls, 1);
    EXPECT_EQ(pass.frames_local(), 3u);
    // It gets no batch for a while (kRetryAfterFailure): the next one is labelled here at once.
    ASSERT_TRUE(pass.Label(frames_, jpegs_, options_, never_).ok());
    EXPECT_EQ(failing.jobs, 1);
    EXPECT_EQ(local.calls, 2);
  }
  {
    // Takes the job, then crashes: declared dead after 0.5 s of silence, the batch is labelled here.
    AwaitLabelWorkers(0);
    LabelWorker crashing(port(), cluster::WorkerRole::kLabel, local, /*answer=*/false);
    AwaitLabelWorkers(1);
    RemoteTeacherPass pass(*pool_, local);
    std::thread crash([&] {
      while (crashing.jobs == 0) std::this_thread::sleep_for(milliseconds(10));
      crashing.Stop();
    });
    ASSERT_TRUE(pass.Label(frames_, jpegs_, options_, never_).ok());
    crash.join();
    EXPECT_EQ(local.calls, 3);
  }
  {
    // Alive but late: given up after the timeout; its late answer is drained and, once its pause
    // after the failure is over (0 here), it labels a batch again.
    AwaitLabelWorkers(0);
    SyntheticTeacher remote;
    LabelWorker slow(port(), cluster::WorkerRole::kLabel, remote, /*answer=*/false);
    AwaitLabelWorkers(1);
    RemoteTeacherPass pass(*pool_, local, milliseconds(300), milliseconds(0));
    ASSERT_TRUE(pass.Label(frames_, jpegs_, options_, never_).ok());
    EXPECT_EQ(local.calls, 4);
    EXPECT_EQ(slow.jobs, 1);
    slow.Answer();
    bool labelled_there = false;
    // Batches meanwhile are labelled here (the worker is busy until its late answer is drained).
    for (int i = 0; i < 250 && !labelled_there; ++i) {
      ASSERT_TRUE(pass.Label(frames_, jpegs_, options_, never_).ok());
      labelled_there = pass.frames_remote() > 0;
      std::this_thread::sleep_for(milliseconds(20));
    }
    EXPECT_TRUE(labelled_there) << "the late worker never got a batch again";
    EXPECT_EQ(slow.jobs, 2);
  }
  // A stopping labeller does not wait for a worker: Unavailable, nothing labelled.
  AwaitLabelWorkers(0);
  LabelWorker silent(port(), cluster::WorkerRole::kLabel, local, /*answer=*/false);
  AwaitLabelWorkers(1);
  RemoteTeacherPass pass(*pool_, local);
  std::atomic<bool> cancel{false};
  std::thread stopper([&] {
    while (silent.jobs == 0) std::this_thread::sleep_for(milliseconds(10));
    cancel = true;
  });
  auto cancelled = pass.Label(frames_, jpegs_, options_, cancel);
  stopper.join();
  EXPECT_EQ(cancelled.status().code(), Status::Code::kUnavailable);
}

}  // namespace
}  // namespace kd::learner
