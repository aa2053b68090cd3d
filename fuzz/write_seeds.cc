// kd_write_seeds: writes the seed corpus of the fuzz targets (fuzz/corpus/<target>/<seed>) with the
// project's own encoders, so that the seeds follow the formats: rerun it after a format change.
//   ./build/fuzz/kd_write_seeds [CORPUS_DIR]     (default: the source tree's fuzz/corpus)
// Every seed is deterministic (fixed seeds, times and keys). Each real encoding is checked to decode
// before it is written; the edge cases (truncated, wrong version, garbage) are expected to fail.
// Files it does not write (e.g. regression inputs from fuzzer findings) are left alone.
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/torch.h>

#include "base/check.h"
#include "base/coding.h"
#include "base/crc32c.h"
#include "base/detection.h"
#include "base/sha256.h"
#include "config/daemon_options.h"
#include "fuzz/delta_base.h"
#include "fuzz/fuzz_util.h"
#include "learner/dataset.h"
#include "learner/label_job.h"
#include "learner/round_job.h"
#include "learner/teacher_record.h"
#include "model/student.h"
#include "model/weights_file.h"
#include "storage/frame_journal.h"
#include "storage/record_codec.h"
#include "update/delta.h"
#include "update/manifest.h"
#include "wire/message.h"

namespace kd::fuzz {
namespace {

namespace fs = std::filesystem;

class SeedWriter {
 public:
  explicit SeedWriter(fs::path root) : root_(std::move(root)) {}

  void Write(const std::string& target, const std::string& name, std::string_view bytes) {
    const fs::path dir = root_ / target;
    fs::create_directories(dir);
    std::ofstream f(dir / name, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    KD_CHECK_MSG(f.good(), "cannot write " + (dir / name).string());
    ++count_;
    total_bytes_ += bytes.size();
  }
  void Write(const std::string& target, const std::string& name, const std::vector<uint8_t>& bytes) {
    Write(target, name, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  size_t count() const { return count_; }
  size_t total_bytes() const { return total_bytes_; }

 private:
  fs::path root_;
  size_t count_ = 0, total_bytes_ = 0;
};

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

// ---- wire ----------------------------------------------------------------------------------------

wire::Message WireMessage(wire::MsgType type) {
  wire::Message m;
  m.header.type = type;
  m.header.device_id = "cam-1";
  m.header.seq = 42;
  m.header.send_time_us = 1'700'000'000'100'000;
  m.header.model_version = 3;
  switch (type) {
    case wire::MsgType::kFrame:
      m.header.capture_time_us = 1'700'000'000'000'000;
      m.header.width = 768;
      m.header.height = 576;
      m.header.selection_score = 0.5f;
      m.payload = std::string("\xFF\xD8\xFF\xE0", 4) + std::string(28, 'j');
      break;
    case wire::MsgType::kAck:
      m.header.ack_seq = 41;
      m.header.credits = 16;
      break;
    case wire::MsgType::kCredit:
    case wire::MsgType::kHeartbeat:
      m.header.credits = 8;
      break;
    case wire::MsgType::kError:
      m = wire::MakeError(m.header, wire::ErrorCode::kStorageFull, "disk budget/full");
      break;
    case wire::MsgType::kStatus:
      m.header.status.running_version = 3;
      m.header.status.committed_version = 2;
      m.header.status.floor_version = 2;
      m.header.status.state = "probation";
      m.header.status.fps = 9.5;
      m.header.status.frames_captured = 1000;
      m.header.status.frames_inferred = 990;
      m.header.status.frames_selected = 50;
      m.header.status.frames_acked = 48;
      m.header.status.uplink_bytes = 123456;
      m.header.status.want_full = true;
      break;
    case wire::MsgType::kStatusReply:
      m.header.desired_version = 4;
      m.payload = "KDSM";  // a (short) signed manifest goes here
      break;
    case wire::MsgType::kChunkRequest:
      m.header.object_id = Sha256Hex("artefact");
      m.header.offset = 65536;
      m.header.length = 65536;
      break;
    case wire::MsgType::kChunk:
      m.header.object_id = Sha256Hex("artefact");
      m.header.offset = 0;
      m.payload = std::string(48, '\x5a');
      m.header.length = m.payload.size();
      break;
    case wire::MsgType::kUpdateReport:
      m.header.outcome = wire::UpdateOutcome::kRolledBack;
      m.header.error_text = "probation: latency 3.2x";
      break;
    default:
      break;
  }
  return m;
}

void WireSeeds(SeedWriter& w) {
  for (uint32_t t = 1; t <= wire::kMaxMsgType; ++t) {
    const auto type = static_cast<wire::MsgType>(t);
    const std::vector<std::string> frames = wire::EncodeFrames(WireMessage(type));
    auto decoded = wire::DecodeFrames(frames, wire::Limits{});
    KD_CHECK_MSG(decoded.ok(), decoded.status().ToString());
    std::string name = wire::MsgTypeName(type);
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    w.Write("wire", name, JoinFrames(frames));
  }
  // Edge cases: no frames, two frames, four frames, another protocol id, an empty header.
  const std::vector<std::string> frame = wire::EncodeFrames(WireMessage(wire::MsgType::kFrame));
  w.Write("wire", "edge-empty", std::string());
  w.Write("wire", "edge-two-frames", JoinFrames({frame[0], frame[1]}));
  w.Write("wire", "edge-four-frames", JoinFrames({frame[0], frame[1], frame[2], frame[2]}));
  w.Write("wire", "edge-protocol-kdp1", JoinFrames({"KDP1", frame[1], frame[2]}));  // the previous protocol
  w.Write("wire", "edge-empty-header", JoinFrames({frame[0], "", ""}));
}

// ---- .kdw weights --------------------------------------------------------------------------------

void WeightsSeeds(SeedWriter& w) {
  torch::manual_seed(1);
  model::StudentOptions small;
  small.width = 8;
  small.head_channels = 8;
  small.labels = {0, 2};
  small.input_width = 64;
  small.input_height = 64;
  model::StudentOptions o2o = small;
  o2o.one_to_one = true;
  model::WeightsMeta meta;
  meta.model_version = 5;
  meta.base_version = 4;
  meta.created_by = "kd_write_seeds";
  meta.created_unix_s = 1'700'000'000;
  struct Variant {
    const char* name;
    const model::StudentOptions* options;
    model::WeightDtype dtype;
  };
  for (const Variant& v :
       {Variant{"small-f32", &small, model::WeightDtype::kF32}, Variant{"small-f16", &small, model::WeightDtype::kF16},
        Variant{"o2o-f16", &o2o, model::WeightDtype::kF16}}) {
    model::Student student(*v.options);
    auto bytes = model::EncodeWeights(*student, meta, v.dtype);
    KD_CHECK(bytes.ok());
    auto decoded = model::DecodeWeights(*bytes);
    KD_CHECK_MSG(decoded.ok(), decoded.status().ToString());
    w.Write("weights", v.name, *bytes);
    if (std::string(v.name) == "small-f16") {
      std::vector<uint8_t> body(bytes->begin(), bytes->end() - 32);  // the target re-seals it
      w.Write("weights", "edge-unsealed-small-f16", body);
      std::vector<uint8_t> v2 = *bytes;
      v2[4] = 2;  // format version 2
      w.Write("weights", "edge-version-2", v2);
    }
  }
  w.Write("weights", "edge-magic-only", std::string("KDW1\x01\x00\x00\x00\x00\x00\x00\x00", 12));
}

// ---- update manifests ----------------------------------------------------------------------------

update::Manifest BaseManifest() {
  update::Manifest m;
  m.model_id = "cam-a";
  m.version = 3;
  m.kind = update::ArtifactKind::kFull;
  m.arch_hash = Sha256Hex("arch");
  m.target_digest = Sha256Hex("target");
  m.artifact_size = 167584;
  m.artifact_sha256 = Sha256Hex("artefact");
  m.chunk_size = 65536;
  m.created_unix_s = 1'700'000'000;
  m.expires_unix_s = 1'700'086'400;
  m.rollout_id = "rollout-3";
  return m;
}

void ManifestSeeds(SeedWriter& w) {
  const update::SigningKeyPair key = TestSigningKey();
  update::Manifest full = BaseManifest();
  update::Manifest delta = BaseManifest();
  delta.kind = update::ArtifactKind::kDelta;
  delta.base_version = 2;
  delta.artifact_size = 33229;
  delta.min_kdedge_version = update::KdedgeVersion(0, 1, 0);
  for (const auto& [name, m] : {std::pair<std::string, update::Manifest>{"full", full}, {"delta", delta}}) {
    auto bytes = update::EncodeManifest(m);
    KD_CHECK(bytes.ok() && update::ParseManifest(*bytes).ok());
    w.Write("manifest", name, *bytes);
    auto signed_manifest = update::SignManifest(m, key);
    KD_CHECK(signed_manifest.ok());
    const std::string envelope = update::EncodeSignedManifest(*signed_manifest);
    update::VerifyOptions options;
    options.trusted_keys = {key.public_key};
    options.now_unix_s = m.created_unix_s + 1;
    auto decoded = update::DecodeSignedManifest(envelope);
    KD_CHECK(decoded.ok() && update::VerifyManifest(*decoded, options).ok());
    w.Write("manifest", "signed-" + name, envelope);
  }
  const std::string bytes = *update::EncodeManifest(full);
  w.Write("manifest", "edge-truncated", bytes.substr(0, bytes.size() / 2));
  std::string v2 = bytes;
  v2[4] = 2;
  w.Write("manifest", "edge-version-2", v2);
  w.Write("manifest", "edge-envelope-empty", update::EncodeSignedManifest({}));
}

// ---- update deltas -------------------------------------------------------------------------------

void DeltaSeeds(SeedWriter& w) {
  const update::TensorMap base = DeltaBase();
  const std::set<std::string> params = DeltaParameterNames();
  auto with = [&](const std::string& name, const torch::Tensor& value) {
    update::TensorMap t = base;
    t[name] = value;
    return t;
  };
  update::TensorMap all = base;
  all["conv.weight"] = base.at("conv.weight") + 0.5f;
  all["conv.bias"] = base.at("conv.bias") - 0.25f;
  all["bn.running_mean"] = base.at("bn.running_mean") + 0.125f;
  all["bn.num_batches_tracked"] = torch::tensor(8, torch::kLong);
  torch::Tensor one = base.at("conv.weight").clone();
  one.view({-1})[4] = 1.0f;
  update::DeltaOptions top_half;
  top_half.max_fraction = 0.5;
  struct Variant {
    const char* name;
    update::TensorMap target;
    update::DeltaOptions options;
  };
  for (const Variant& v : {Variant{"unchanged", base, {}}, Variant{"sparse-one-element", with("conv.weight", one), {}},
                           Variant{"dense-all", all, {}}, Variant{"top-half", all, top_half},
                           Variant{"buffers-only", with("bn.running_var", torch::tensor({2.0f, 3.0f})), {}}}) {
    auto delta = update::EncodeDelta(base, v.target, params, v.options);
    KD_CHECK_MSG(delta.ok(), delta.status().ToString());
    KD_CHECK(update::ApplyDelta(base, delta->bytes).ok() && update::ReadDeltaHeader(delta->bytes).ok());
    w.Write("delta", v.name, delta->bytes);
    // Without its SHA-256 trailer (when it has the documented one): the target re-seals it.
    const std::vector<uint8_t> body(delta->bytes.begin(), delta->bytes.end() - 32);
    if (Sealed(body) == delta->bytes) w.Write("delta", std::string("unsealed-") + v.name, body);
  }
  w.Write("delta", "edge-magic-only", std::string("KDDL\x01\x00\x00\x00", 8));
}

// ---- teacher records -----------------------------------------------------------------------------

std::vector<uint8_t> TeacherBlob(const std::vector<int>& labels, int detections) {
  learner::DistillDataset d;
  d.labels = labels;
  d.orig_width = 64, d.orig_height = 48;
  d.student_width = 32, d.student_height = 24;
  d.teacher_width = 64, d.teacher_height = 64;
  d.frame_indices = {0};
  const auto k = static_cast<int64_t>(labels.size());
  d.teacher_heat = torch::rand({1, k, 6, 8}).to(torch::kHalf);
  d.teacher_box = (torch::rand({1, 4, 6, 8}) * 16).to(torch::kHalf);
  d.feat_mean = torch::randn({1, 128});
  d.feat_sqmean = d.feat_mean.square() + 0.5f;
  std::vector<Detection> pseudo, teacher;
  for (int i = 0; i < detections; ++i) {
    pseudo.push_back({Box{1.f + i, 2.f, 10.f + i, 12.f}, 0.9f - 0.1f * static_cast<float>(i), i % static_cast<int>(k)});
    teacher.push_back({Box{2.f + i, 4.f, 20.f + i, 24.f}, 0.9f - 0.1f * static_cast<float>(i), labels[i % k]});
  }
  d.pseudo = {pseudo};
  d.teacher_dets = {FrameDetections{0, teacher}};
  return learner::EncodeTeacherRow(d, 0);
}

void TeacherRecordSeeds(SeedWriter& w) {
  torch::manual_seed(2);
  const std::vector<uint8_t> two = TeacherBlob({0, 2}, 3);
  KD_CHECK(learner::DecodeTeacherRow(two).ok());
  w.Write("teacher_record", "two-classes-three-boxes", two);
  const std::vector<uint8_t> one = TeacherBlob({7}, 0);
  KD_CHECK(learner::DecodeTeacherRow(one).ok());
  w.Write("teacher_record", "one-class-no-boxes", one);
  w.Write("teacher_record", "edge-truncated", std::vector<uint8_t>(two.begin(), two.begin() + 40));
  std::vector<uint8_t> trailing = one;
  trailing.push_back(0);
  w.Write("teacher_record", "edge-trailing-byte", trailing);
}

// ---- round jobs and results (learner/round_job.h) --------------------------------------------------

void RoundJobSeeds(SeedWriter& w) {
  learner::RoundJob job;
  job.group = "lobby";
  job.epoch = 3;
  job.token = 3000004;
  job.iterations = 100;
  job.seed = 1;
  job.start_kdw = "not really a kdw";
  job.frames.push_back({.device_id = "cam-1", .seq = 7, .jpeg = {0xff, 0xd8, 0xff, 0xd9}, .teacher_blob = {1, 2, 3}});
  job.frames.push_back({.device_id = "cam-2", .seq = 8, .jpeg = {0xff, 0xd8}, .teacher_blob = {}});
  const std::string job_bytes = learner::EncodeRoundJob(job);
  KD_CHECK(learner::DecodeRoundJob(job_bytes).ok());
  w.Write("round_job", "job-two-frames", job_bytes);
  job.anchor = 5;  // sparse rounds: the deployed version the start weights are, and the fraction
  job.update_fraction = 0.2;
  w.Write("round_job", "job-sparse-anchor", learner::EncodeRoundJob(job));
  job.anchor = 0;
  job.update_fraction = 1.0;
  job.frames.clear();
  job.start_kdw.clear();
  w.Write("round_job", "job-no-frames", learner::EncodeRoundJob(job));
  learner::RoundResult result;
  result.group = "lobby";
  result.epoch = 3;
  result.round = 12;
  result.frames = 2;
  result.steps = 100;
  result.loss = 1.5;
  result.seconds = 30;
  result.trained_kdw = "weights";
  w.Write("round_job", "result-trained", learner::EncodeRoundResult(result));
  result.error = "LibTorch: out of memory";
  result.trained_kdw.clear();
  w.Write("round_job", "result-error", learner::EncodeRoundResult(result));
  w.Write("round_job", "edge-truncated-job", job_bytes.substr(0, job_bytes.size() / 2));

  // Label jobs and results (learner/label_job.h) go through the same target.
  learner::LabelJob label;
  label.student_long_side = 384;
  label.teacher_long_side = 512;
  label.teacher_min_score = 0.05f;
  label.labels = {0, 1, 2, 3, 5, 7};
  label.refine.extra_long_sides = {640, 768};
  label.jpegs = {std::string("\xff\xd8\xff\xd9", 4), std::string("\xff\xd8", 2)};
  const std::string label_bytes = learner::EncodeLabelJob(label);
  KD_CHECK(learner::DecodeLabelJob(label_bytes).ok());
  w.Write("round_job", "label-job-two-frames", label_bytes);
  learner::LabelResult labelled;
  labelled.seconds = 1.5;
  labelled.rows = {"row 1", "row 2"};
  w.Write("round_job", "label-result-two-rows", learner::EncodeLabelResult(labelled));
  labelled.rows.clear();
  labelled.error = "LibTorch: out of memory";
  w.Write("round_job", "label-result-error", learner::EncodeLabelResult(labelled));
}

// ---- store values --------------------------------------------------------------------------------

void StoreSeeds(SeedWriter& w) {
  using storage::SampleKey;
  const std::string frame_key = SampleKey("cam-1", 42);
  storage::FrameRecord frame;
  frame.capture_time_us = 1'700'000'000'000'000;
  frame.received_time_us = 1'700'000'000'250'000;
  frame.jpeg = Bytes(std::string("\xFF\xD8\xFF\xE0", 4) + std::string(28, 'j'));
  const std::string frame_value = storage::EncodeFrameValue(frame_key, frame);
  KD_CHECK(storage::DecodeFrameValue(frame_key, frame_value, nullptr).ok());
  w.Write("store", "frame", JoinKeyValue(frame_key, frame_value));

  torch::manual_seed(3);
  const std::string teacher_key = SampleKey("cam-1", 43);
  const std::string teacher_value = storage::EncodeTeacherValue(teacher_key, TeacherBlob({0}, 1), 0.25f, 1);
  KD_CHECK(storage::DecodeTeacherValue(teacher_key, teacher_value, nullptr).ok());
  w.Write("store", "teacher", JoinKeyValue(teacher_key, teacher_value));

  const std::string meta_key = "registry/devices";
  const std::string meta_value = storage::EncodeMetaValue(meta_key, R"({"cam-1":{"key":"abc","revoked":false}})");
  KD_CHECK(storage::DecodeMetaValue(meta_key, meta_value, nullptr).ok());
  w.Write("store", "meta", JoinKeyValue(meta_key, meta_value));
  w.Write("store", "format-marker", JoinKeyValue(storage::kFormatMarkerKey, storage::EncodeFormatMarkerValue()));

  // Edge cases: empty, a value under another key, a newer format version (CRC valid), a short value.
  w.Write("store", "edge-empty", std::string());
  w.Write("store", "edge-other-key", JoinKeyValue(SampleKey("cam-1", 44), frame_value));
  std::string v2 = frame_value.substr(0, frame_value.size() - 4);
  v2[0] = 2;
  const uint32_t crc = Crc32cExtend(Crc32c(frame_key), v2.data(), v2.size());
  PutLe32(&v2, crc);
  w.Write("store", "edge-version-2", JoinKeyValue(frame_key, v2));
  w.Write("store", "edge-short-value", JoinKeyValue(frame_key, frame_value.substr(0, 4)));
}

// ---- frame journal files -------------------------------------------------------------------------

void JournalSeeds(SeedWriter& w) {
  using storage::SampleKey;
  std::string file;
  std::vector<size_t> ends;
  for (uint64_t seq = 7; seq < 10; ++seq) {
    const std::string key = SampleKey("cam-1", seq);
    storage::FrameRecord frame;
    frame.capture_time_us = 1'700'000'000'000'000 + static_cast<int64_t>(seq);
    frame.received_time_us = 1'700'000'000'250'000;
    frame.jpeg = Bytes(std::string("\xFF\xD8\xFF\xE0", 4) + std::string(20 + seq, 'j'));
    const std::string value = storage::EncodeFrameValue(key, frame);
    file += storage::EncodeJournalHeader(static_cast<uint32_t>(key.size()), static_cast<uint32_t>(value.size()));
    file += key + value;
    ends.push_back(file.size());
  }
  KD_CHECK(storage::ParseJournal(file, [](std::string_view, std::string_view) {}).records == 3);
  w.Write("journal", "three-frames", file);
  w.Write("journal", "edge-empty", std::string());
  w.Write("journal", "edge-torn-tail", file.substr(0, ends[1] + 21));  // two records and half a header+
  std::string damaged = file;
  damaged[ends[0] + storage::kJournalHeaderBytes + 12] ^= 0x20;  // inside the second record's key/value
  w.Write("journal", "edge-damaged-record", damaged);
}

// ---- daemon configs ------------------------------------------------------------------------------

std::string ReadText(const fs::path& path) {
  std::ifstream f(path);
  KD_CHECK_MSG(f.good(), "cannot read " + path.string());
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void ConfigSeeds(SeedWriter& w, const fs::path& examples) {
  const std::string path = "/fuzz/conf/daemon.toml";
  const std::string edge_example = ReadText(examples / "kdedge.toml");
  const std::string learner_example = ReadText(examples / "kdlearnd.toml");
  auto edge = config::ParseEdgeOptions(edge_example, path, {});
  auto learner = config::ParseLearnerOptions(learner_example, path, {});
  KD_CHECK_MSG(edge.ok(), edge.status().ToString());
  KD_CHECK_MSG(learner.ok(), learner.status().ToString());
  w.Write("config", "kdedge-example", edge_example);
  w.Write("config", "kdlearnd-example", learner_example);
  w.Write("config", "kdedge-effective", config::ToToml(*edge));
  w.Write("config", "kdlearnd-effective", config::ToToml(*learner));
  const std::string edge_min =
      "device_id = \"cam-1\"\n[source]\nuri = \"video.avi\"\n[model]\ndir = \"slots\"\n[learner]\ninsecure = "
      "true\n[update]\ntrusted_keys = [\"t.pub\"]\n";
  const std::string learner_min =
      "[server]\nframes_endpoint = \"tcp://127.0.0.1:7700\"\ncontrol_endpoint = \"tcp://127.0.0.1:7701\"\n"
      "insecure = true\n[store]\npath = \"store\"\n[publish]\nsigning_key = \"s.key\"\n"
      "[[groups]]\nname = \"lobby\"\ndevices = [\"cam-1\", \"cam-2\"]\n[[devices]]\nid = \"cam-1\"\n";
  KD_CHECK(config::ParseEdgeOptions(edge_min, path, {}).ok());
  KD_CHECK(config::ParseLearnerOptions(learner_min, path, {}).ok());
  w.Write("config", "kdedge-minimal", edge_min);
  w.Write("config", "kdlearnd-minimal-groups", learner_min);
  // Overrides follow the text after a NUL, one per NUL-separated part.
  const std::string overrides[] = {"uplink.kbps=500", "uplink={kbps = 300.0, max_fps = 1.0}",
                                   "source.pass_effects=[\"none\", \"dark:0.4\"]", "learner.frames_endpoint=ipc://x"};
  std::string with_overrides = edge_min;
  for (const std::string& o : overrides) with_overrides += std::string(1, '\0') + o;
  KD_CHECK(config::ParseEdgeOptions(edge_min, path, {std::begin(overrides), std::end(overrides)}).ok());
  w.Write("config", "kdedge-minimal-overrides", with_overrides);
  w.Write("config", "edge-unknown-key", edge_min + "[uplink]\nkbpss = 1\n");
  w.Write("config", "edge-bad-toml", "device_id = \"cam-1\n[source\n");
}

}  // namespace
}  // namespace kd::fuzz

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const fs::path source(KD_SOURCE_DIR);
  const fs::path out = argc > 1 ? fs::path(argv[1]) : source / "fuzz" / "corpus";
  if (argc > 2 || (argc == 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h"))) {
    std::cerr << "usage: kd_write_seeds [CORPUS_DIR]   (default " << out.string() << ")\n";
    return argc > 2 ? 2 : 0;
  }
  kd::fuzz::SeedWriter w(out);
  kd::fuzz::WireSeeds(w);
  kd::fuzz::WeightsSeeds(w);
  kd::fuzz::ManifestSeeds(w);
  kd::fuzz::DeltaSeeds(w);
  kd::fuzz::TeacherRecordSeeds(w);
  kd::fuzz::StoreSeeds(w);
  kd::fuzz::JournalSeeds(w);
  kd::fuzz::RoundJobSeeds(w);
  kd::fuzz::ConfigSeeds(w, source / "config" / "examples");
  std::cout << "wrote " << w.count() << " seeds (" << w.total_bytes() << " bytes) under " << out.string() << "\n";
  return 0;
}
