#include "learner/label_job.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "base/coding.h"
#include "model/json_int.h"

namespace kd::learner {
namespace {

constexpr char kJobMagic[] = "KDLJ";
constexpr char kResultMagic[] = "KDLR";
constexpr uint32_t kVersion = 1;
constexpr size_t kMaxHeaderBytes = 1 << 16;
constexpr size_t kMaxExtraScales = 8;  // as the recipe allows (config/distill_options.cc)

Status Bad(const char* what, const std::string& why) { return Status::Corruption(std::string(what) + ": " + why); }

bool Preamble(ByteReader& r, const char* magic) {
  std::span<const uint8_t> m;
  uint32_t version = 0;
  return r.Bytes(4, &m) && std::equal(m.begin(), m.end(), magic) && r.U32(&version) && version == kVersion;
}

bool TeacherSide(int side) { return side >= 64 && side <= 2048 && side % 32 == 0; }

// Reads u32 n and n length-prefixed strings of at most kMaxLabelFrameBytes each.
bool Strings(ByteReader& r, std::vector<std::string>* out) {
  uint32_t n = 0;
  if (!r.U32(&n) || n > r.remaining() / 4) return false;  // each takes at least its 4-byte length
  out->resize(n);
  for (auto& s : *out) {
    if (!r.LengthPrefixed(kMaxLabelFrameBytes, &s)) return false;
  }
  return true;
}

void PutStrings(std::string* out, const std::vector<std::string>& strings) {
  PutLe32(out, static_cast<uint32_t>(strings.size()));
  for (const auto& s : strings) PutLengthPrefixed(out, s);
}

}  // namespace

std::string EncodeLabelJob(const LabelJob& job) {
  std::string out(kJobMagic, 4);
  PutLe32(&out, kVersion);
  const nlohmann::json h{{"student_long_side", job.student_long_side},
                         {"teacher_long_side", job.teacher_long_side},
                         {"teacher_min_score", job.teacher_min_score},
                         {"labels", job.labels},
                         {"refine",
                          {{"enabled", job.refine.enabled},
                           {"extra_long_sides", job.refine.extra_long_sides},
                           {"wbf_iou", job.refine.wbf_iou}}}};
  PutLengthPrefixed(&out, h.dump());
  PutStrings(&out, job.jpegs);
  return out;
}

Result<LabelJob> DecodeLabelJob(std::string_view bytes) {
  if (bytes.size() > kMaxLabelJobBytes) {
    return Bad("label job", "larger than " + std::to_string(kMaxLabelJobBytes) + " bytes");
  }
  ByteReader r(bytes);
  if (!Preamble(r, kJobMagic)) return Bad("label job", "not a version-1 label job (magic or version)");
  std::string header;
  if (!r.LengthPrefixed(kMaxHeaderBytes, &header)) return Bad("label job", "truncated header");
  LabelJob job;
  try {
    const auto h = nlohmann::json::parse(header);
    // Checked reads: nlohmann's get<int>() of 5e42 (or get<float>() of 1e300) is undefined
    // behaviour (a fuzzer found it), so integers go through JsonInt and the score through double.
    using model::internal::JsonInt;
    using model::internal::JsonInts;
    job.student_long_side = JsonInt<int>(h.at("student_long_side"));
    job.teacher_long_side = JsonInt<int>(h.at("teacher_long_side"));
    const double min_score = h.at("teacher_min_score").get<double>();
    if (!(min_score >= 0 && min_score <= 1)) throw std::out_of_range("teacher_min_score outside [0,1]");
    job.teacher_min_score = static_cast<float>(min_score);
    job.labels = JsonInts<int>(h.at("labels"));
    const auto& refine = h.at("refine");
    job.refine.enabled = refine.at("enabled").get<bool>();
    job.refine.extra_long_sides = JsonInts<int>(refine.at("extra_long_sides"));
    job.refine.wbf_iou = refine.at("wbf_iou").get<double>();
  } catch (const std::exception& e) {
    return Bad("label job header", e.what());
  }
  if (job.student_long_side < 32 || job.student_long_side > 4096) {
    return Bad("label job header", "student_long_side outside 32..4096");
  }
  if (!TeacherSide(job.teacher_long_side)) {
    return Bad("label job header", "teacher_long_side is not a multiple of 32 in 64..2048");
  }
  if (!(job.teacher_min_score >= 0 && job.teacher_min_score <= 1)) {
    return Bad("label job header", "teacher_min_score outside [0,1]");
  }
  if (job.labels.empty() || job.labels.size() > 80 ||
      !std::all_of(job.labels.begin(), job.labels.end(), [](int l) { return l >= 0 && l < 80; })) {
    return Bad("label job header", "labels must be 1..80 COCO labels in 0..79");
  }
  if (job.refine.extra_long_sides.size() > kMaxExtraScales ||
      !std::all_of(job.refine.extra_long_sides.begin(), job.refine.extra_long_sides.end(), TeacherSide)) {
    return Bad("label job header", "refine.extra_long_sides: at most 8 multiples of 32 in 64..2048");
  }
  if (!(job.refine.wbf_iou > 0 && job.refine.wbf_iou < 1))
    return Bad("label job header", "refine.wbf_iou outside (0,1)");
  if (!Strings(r, &job.jpegs)) return Bad("label job", "truncated frames");
  if (r.remaining() != 0) return Bad("label job", std::to_string(r.remaining()) + " trailing bytes");
  return job;
}

std::string EncodeLabelResult(const LabelResult& result) {
  std::string out(kResultMagic, 4);
  PutLe32(&out, kVersion);
  PutLengthPrefixed(&out, nlohmann::json{{"error", result.error}, {"seconds", result.seconds}}.dump());
  PutStrings(&out, result.rows);
  return out;
}

Result<LabelResult> DecodeLabelResult(std::string_view bytes) {
  if (bytes.size() > kMaxLabelJobBytes) {
    return Bad("label result", "larger than " + std::to_string(kMaxLabelJobBytes) + " bytes");
  }
  ByteReader r(bytes);
  if (!Preamble(r, kResultMagic)) return Bad("label result", "not a version-1 label result (magic or version)");
  std::string header;
  if (!r.LengthPrefixed(kMaxHeaderBytes, &header)) return Bad("label result", "truncated header");
  LabelResult out;
  try {
    const auto h = nlohmann::json::parse(header);
    out.error = h.at("error").get<std::string>();
    out.seconds = h.at("seconds").get<double>();
  } catch (const std::exception& e) {
    return Bad("label result header", e.what());
  }
  if (!Strings(r, &out.rows)) return Bad("label result", "truncated rows");
  if (r.remaining() != 0) return Bad("label result", std::to_string(r.remaining()) + " trailing bytes");
  return out;
}

}  // namespace kd::learner
