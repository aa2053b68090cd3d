// A `kdlearnd worker --role label` in miniature for tests: its own connection to a c10d store on
// 127.0.0.1, a WorkerLink and a thread that answers label jobs with AnswerLabelJob
// (learner/remote_teacher.h) on the teacher pass it is given.
#ifndef KD_TESTS_LEARNER_LABEL_WORKER_H_
#define KD_TESTS_LEARNER_LABEL_WORKER_H_

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "learner/label_job.h"
#include "learner/remote_teacher.h"

#include "cluster/kv_store.h"
#include "cluster/membership.h"

namespace kd::learner::testing {

inline constexpr char kClusterSecret[] = "0123456789abcdef-shared-secret";

class LabelWorker {
 public:
  LabelWorker(int port, cluster::WorkerRole role, learner::TeacherPass& teacher, bool answer = true)
      : teacher_(teacher), answer_(answer) {
    store_ = std::move(cluster::KvStore::Connect({.host = "127.0.0.1", .port = port, .timeout_s = 5})).value();
    link_ = std::move(cluster::WorkerLink::Join(
                          *store_, {.secret = kClusterSecret, .name = "w", .role = role, .heartbeat_s = 0.1}))
                .value();
    thread_ = std::thread([this] {
      while (!stop_) {
        auto job = link_->NextJob(0.1, stop_);
        if (!job.ok() || !job->has_value()) continue;
        ++jobs;
        while (!answer_ && !stop_) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (stop_) break;
        auto decoded = learner::DecodeLabelJob(**job);
        learner::LabelResult result;
        if (decoded.ok()) {
          result = learner::AnswerLabelJob(*decoded, teacher_, stop_);
        } else {
          result.error = decoded.status().ToString();
        }
        (void)link_->PutResult(learner::EncodeLabelResult(result));
      }
    });
  }
  ~LabelWorker() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (link_) (void)link_->Leave();  // a goodbye: gone at the coordinator's next poll
  }
  void Answer() { answer_ = true; }
  // Stops the thread and the heartbeat without a goodbye: to the coordinator, a crash.
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    link_.reset();
  }
  std::atomic<int> jobs{0};

 private:
  learner::TeacherPass& teacher_;
  std::atomic<bool> answer_, stop_{false};
  std::unique_ptr<cluster::KvStore> store_;
  std::unique_ptr<cluster::WorkerLink> link_;
  std::thread thread_;
};

}  // namespace kd::learner::testing

#endif  // KD_TESTS_LEARNER_LABEL_WORKER_H_
