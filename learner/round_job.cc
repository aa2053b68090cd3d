#include "learner/round_job.h"

#include <nlohmann/json.hpp>

#include "base/coding.h"
#include "model/json_int.h"

namespace kd::learner {
namespace {

constexpr char kJobMagic[] = "KDRJ";
constexpr char kResultMagic[] = "KDRR";
constexpr uint32_t kVersion = 1;
constexpr size_t kMaxHeaderBytes = 1 << 16;
constexpr size_t kMaxIdBytes = 256;

Status Bad(const char* what, const std::string& why) { return Status::Corruption(std::string(what) + ": " + why); }

// Reads the magic and the version.
bool Preamble(ByteReader& r, const char* magic) {
  std::span<const uint8_t> m;
  uint32_t version = 0;
  return r.Bytes(4, &m) && std::equal(m.begin(), m.end(), magic) && r.U32(&version) && version == kVersion;
}

std::string_view AsView(const std::vector<uint8_t>& v) { return {reinterpret_cast<const char*>(v.data()), v.size()}; }

// A length-prefixed byte string of at most kMaxFrameBytes.
bool Blob(ByteReader& r, std::vector<uint8_t>* out) {
  uint32_t n = 0;
  std::span<const uint8_t> bytes;
  if (!r.U32(&n) || n > kMaxFrameBytes || !r.Bytes(n, &bytes)) return false;
  out->assign(bytes.begin(), bytes.end());
  return true;
}

}  // namespace

std::string EncodeRoundJob(const RoundJob& job) {
  std::string out(kJobMagic, 4);
  PutLe32(&out, kVersion);
  const nlohmann::json h{{"group", job.group},
                         {"epoch", job.epoch},
                         {"token", job.token},
                         {"iterations", job.iterations},
                         {"seed", job.seed},
                         {"anchor", job.anchor},
                         {"update_fraction", job.update_fraction}};
  PutLengthPrefixed(&out, h.dump());
  PutLengthPrefixed(&out, job.start_kdw);
  PutLe32(&out, static_cast<uint32_t>(job.frames.size()));
  for (const auto& f : job.frames) {
    PutLengthPrefixed(&out, f.device_id);
    PutLe64(&out, f.seq);
    PutLengthPrefixed(&out, AsView(f.jpeg));
    PutLengthPrefixed(&out, AsView(f.teacher_blob));
  }
  return out;
}

Result<RoundJob> DecodeRoundJob(std::string_view bytes) {
  if (bytes.size() > kMaxJobBytes) return Bad("round job", "larger than " + std::to_string(kMaxJobBytes) + " bytes");
  ByteReader r(bytes);
  if (!Preamble(r, kJobMagic)) return Bad("round job", "not a version-1 job (magic or version)");
  std::string header;
  RoundJob job;
  if (!r.LengthPrefixed(kMaxHeaderBytes, &header)) return Bad("round job", "truncated header");
  try {
    const auto h = nlohmann::json::parse(header);
    // Checked integer reads (nlohmann's get<int>() of a float out of range is undefined behaviour).
    using model::internal::JsonInt;
    job.group = h.at("group").get<std::string>();
    job.epoch = JsonInt<uint64_t>(h.at("epoch"));
    job.token = JsonInt<uint64_t>(h.at("token"));
    job.iterations = JsonInt<int>(h.at("iterations"));
    job.seed = JsonInt<uint64_t>(h.at("seed"));
    if (h.contains("anchor")) job.anchor = JsonInt<uint64_t>(h.at("anchor"));
    if (h.contains("update_fraction")) job.update_fraction = h.at("update_fraction").get<double>();
  } catch (const std::exception& e) {
    return Bad("round job header", e.what());
  }
  if (job.group.empty() || job.iterations < 1) return Bad("round job header", "empty group or no iterations");
  if (!(job.update_fraction > 0 && job.update_fraction <= 1)) {
    return Bad("round job header", "update_fraction outside (0, 1]");
  }
  if (!r.LengthPrefixed(kMaxFrameBytes, &job.start_kdw)) return Bad("round job", "truncated start weights");
  uint32_t n = 0;
  if (!r.U32(&n)) return Bad("round job", "truncated frame count");
  // Each frame takes at least 20 bytes: a count beyond what remains is a lie, not an allocation.
  if (n > r.remaining() / 20) return Bad("round job", "frame count " + std::to_string(n) + " exceeds the bytes");
  job.frames.resize(n);
  for (auto& f : job.frames) {
    if (!r.LengthPrefixed(kMaxIdBytes, &f.device_id) || !r.U64(&f.seq) || !Blob(r, &f.jpeg) ||
        !Blob(r, &f.teacher_blob)) {
      return Bad("round job", "truncated frame");
    }
  }
  if (r.remaining() != 0) return Bad("round job", std::to_string(r.remaining()) + " trailing bytes");
  return job;
}

std::string EncodeRoundResult(const RoundResult& result) {
  std::string out(kResultMagic, 4);
  PutLe32(&out, kVersion);
  const nlohmann::json h{{"group", result.group}, {"epoch", result.epoch},     {"error", result.error},
                         {"round", result.round}, {"frames", result.frames},   {"steps", result.steps},
                         {"loss", result.loss},   {"seconds", result.seconds}, {"stopped", result.stopped}};
  PutLengthPrefixed(&out, h.dump());
  PutLengthPrefixed(&out, result.trained_kdw);
  return out;
}

Result<RoundResult> DecodeRoundResult(std::string_view bytes) {
  ByteReader r(bytes);
  if (!Preamble(r, kResultMagic)) return Bad("round result", "not a version-1 result (magic or version)");
  std::string header;
  RoundResult out;
  if (!r.LengthPrefixed(kMaxHeaderBytes, &header)) return Bad("round result", "truncated header");
  try {
    const auto h = nlohmann::json::parse(header);
    using model::internal::JsonInt;
    out.group = h.at("group").get<std::string>();
    out.epoch = JsonInt<uint64_t>(h.at("epoch"));
    out.error = h.at("error").get<std::string>();
    out.round = JsonInt<uint64_t>(h.at("round"));
    out.frames = JsonInt<uint64_t>(h.at("frames"));
    out.steps = JsonInt<int>(h.at("steps"));
    out.loss = h.at("loss").get<double>();
    out.seconds = h.at("seconds").get<double>();
    out.stopped = h.at("stopped").get<bool>();
  } catch (const std::exception& e) {
    return Bad("round result header", e.what());
  }
  if (!r.LengthPrefixed(kMaxFrameBytes, &out.trained_kdw)) return Bad("round result", "truncated weights");
  if (r.remaining() != 0) return Bad("round result", std::to_string(r.remaining()) + " trailing bytes");
  return out;
}

}  // namespace kd::learner
