// What the learner stage tests share: a real SampleStore in a scratch directory, LoopState,
// Catalogue and Publisher over it, a FakeClock, a fresh signing key, tiny students and synthetic
// teacher rows. No teacher, no video: every test runs in well under a second.
#ifndef KD_TESTS_LEARNER_STAGE_FIXTURE_H_
#define KD_TESTS_LEARNER_STAGE_FIXTURE_H_

#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/clock.h"
#include "config/daemon_options.h"
#include "learner/catalogue.h"
#include "learner/dataset.h"
#include "learner/deployed_model.h"
#include "learner/loop_state.h"
#include "learner/publisher.h"
#include "media/image_ops.h"
#include "model/student.h"
#include "storage/sample_store.h"
#include "tests/support/scratch_dir.h"
#include "tests/support/tiny_student.h"
#include "update/signing.h"
#include "update/state.h"
#include "wire/endpoint.h"

namespace kd::learner::testing {

inline model::StudentOptions TinyStudent() { return kd::testing::TinyStudentOptions(); }

// A JPEG of a w x h frame of one grey level.
inline std::vector<uint8_t> GreyJpeg(int w, int h, uint8_t level = 128) {
  media::Frame f;
  f.width = w, f.height = h;
  f.rgb.assign(static_cast<size_t>(w) * h * 3, level);
  return media::EncodeJpeg(f).value();
}

// `n` rows of random teacher targets for frames of w x h on a student grid of sw x sh.
inline DistillDataset SyntheticRows(size_t n, int w, int h, int sw, int sh) {
  DistillDataset d;
  const auto N = static_cast<int64_t>(n);
  d.labels = {0, 2};
  d.orig_width = w, d.orig_height = h;
  d.student_width = sw, d.student_height = sh;
  d.teacher_width = w, d.teacher_height = h;
  for (size_t i = 0; i < n; ++i) d.frame_indices.push_back(static_cast<int64_t>(i));
  d.images = torch::randint(0, 255, {N, 3, sh, sw}, torch::kUInt8);
  d.teacher_heat = torch::rand({N, 2, sh / 4, sw / 4}).to(torch::kHalf);
  d.teacher_box = (torch::rand({N, 4, sh / 4, sw / 4}) * 10).to(torch::kHalf);
  d.feat_mean = torch::rand({N, 128});
  d.feat_sqmean = torch::rand({N, 128});
  d.pseudo.resize(n);
  for (size_t i = 0; i < n; ++i) d.teacher_dets.push_back({static_cast<int64_t>(i), {}});
  return d;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

// Options for stage tests: small windows, a gate that decides after 2 held-out frames.
inline config::LearnerOptions StageOptions(const std::string& store_path) {
  config::LearnerOptions o;
  o.store.path = store_path;
  o.server.credits = 4;
  o.gate.holdout_every = 2;
  o.gate.holdout_window = 3;
  o.gate.min_holdout = 2;
  o.gate.holdout_span_ms = 0;  // the fixtures' seqs are counters: split per frame
  o.publish.keep_versions = 2;
  o.publish.chunk_bytes = 4096;
  o.rollout.canary_probation_s = 10;
  return o;
}

struct StageFixture {
  explicit StageFixture(config::LearnerOptions (*make_options)(const std::string&) = StageOptions)
      : options(make_options(dir / "store")), state(options, clock) {
    storage::StoreOptions so;
    so.path = options.store.path;
    so.sync_writes = false;
    store = storage::SampleStore::Open(so).value();
    std::filesystem::create_directories(dir / "artifacts");
    catalogue = std::make_unique<Catalogue>(state, *store, dir / "artifacts");
    key = update::GenerateSigningKey().value();
    publisher = std::make_unique<Publisher>(state, *catalogue, key, clock);
  }

  // Creates `group`'s device entry and sets the group's architecture, as enrolment and the
  // trainer's first round do.
  void MakeGroup(const std::string& device, const model::StudentOptions& arch = TinyStudent()) {
    std::lock_guard lock(state.mu);
    state.Device(device);
    state.GroupFor(device).arch = std::make_shared<const model::StudentOptions>(arch);
  }

  // The weights of a tiny student seeded by `seed`, fp16-exact (so a full snapshot is fp16).
  static update::TensorMap Weights(uint64_t seed) {
    torch::manual_seed(seed);
    model::Student s(TinyStudent());
    return update::RoundParametersToF16(update::StateOf(*s), update::ParameterNames(*s));
  }

  // Publishes Weights(seed) as the trainer does: as the reconstruction of a delta from the deployed
  // version, so the version ships with a delta.
  // `via`: another Publisher over the same state (one with a faulty FileSystem, say).
  Status PublishAsDelta(const std::string& group, uint64_t seed, Publisher* via = nullptr) {
    Publisher& p = via ? *via : *publisher;
    std::shared_ptr<const DeployedModel> deployed;
    {
      std::lock_guard lock(state.mu);
      deployed = state.groups.at(group).deployed;
    }
    if (!deployed) return p.Publish(group, Weights(seed), {});
    model::Student s(TinyStudent());
    auto delta =
        update::EncodeDelta(deployed->state, Weights(seed), update::ParameterNames(*s), DeltaOptionsOf(options));
    if (!delta.ok()) return delta.status();
    return p.Publish(group, delta->reconstructed, {}, &*delta);
  }

  static wire::Incoming Message(const std::string& device, wire::MsgType type, uint64_t seq,
                                std::vector<uint8_t> payload = {}) {
    wire::Incoming in;
    in.peer = "peer-" + device;
    in.message.header.type = type;
    in.message.header.device_id = device;
    in.message.header.seq = seq;
    in.message.payload.assign(payload.begin(), payload.end());
    return in;
  }

  kd::testing::ScratchDir dir;
  config::LearnerOptions options;
  FakeClock clock{1'000'000'000'000};  // before `state`, which keeps a reference
  LoopState state;
  std::unique_ptr<storage::SampleStore> store;
  std::unique_ptr<Catalogue> catalogue;
  update::SigningKeyPair key;
  std::unique_ptr<Publisher> publisher;
};

}  // namespace kd::learner::testing

#endif  // KD_TESTS_LEARNER_STAGE_FIXTURE_H_
