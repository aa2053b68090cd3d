#include "learner/teacher_record.h"

#include <bit>
#include <string>

#include <torch/torch.h>

#include "base/coding.h"
#include "media/image_ops.h"
#include "model/checked_run.h"
#include "model/frame_tensor.h"

namespace kd::learner {
namespace {

// The blob is little-endian (base/coding.h); tensor bytes are copied in host order, which is
// little-endian on every supported host.
static_assert(std::endian::native == std::endian::little, "teacher blobs assume a little-endian host");

constexpr uint32_t kMagic = 0x3154444b;  // "KDT1" little-endian
constexpr uint32_t kMaxDim = 16384, kMaxLabels = 80, kMaxDets = 100000, kFeat = 128;
constexpr size_t kDetBytes = 24;  // x1, y1, x2, y2, score (f32), label (i32)

void PutF32(std::vector<uint8_t>* out, float v) { PutLe32(out, std::bit_cast<uint32_t>(v)); }

void PutDets(std::vector<uint8_t>* out, const std::vector<Detection>& dets) {
  PutLe32(out, static_cast<uint32_t>(dets.size()));
  for (const auto& d : dets) {
    PutF32(out, d.box.x1), PutF32(out, d.box.y1), PutF32(out, d.box.x2), PutF32(out, d.box.y2), PutF32(out, d.score);
    PutLe32(out, static_cast<uint32_t>(int32_t{d.label}));
  }
}

bool GetDets(ByteReader& rd, std::vector<Detection>* dets) {
  uint32_t n = 0;
  if (!rd.U32(&n) || n > kMaxDets || rd.remaining() / kDetBytes < n) return false;
  dets->resize(n);
  for (auto& d : *dets) {
    if (!rd.F32(&d.box.x1) || !rd.F32(&d.box.y1) || !rd.F32(&d.box.x2) || !rd.F32(&d.box.y2) || !rd.F32(&d.score)) {
      return false;
    }
    int32_t label = 0;
    if (!rd.I32(&label)) return false;
    d.label = label;
  }
  return true;
}

}  // namespace

std::vector<uint8_t> EncodeTeacherRow(const DistillDataset& data, size_t row) {
  KD_CHECK(row < data.size());
  const auto r = static_cast<int64_t>(row);
  auto heat = data.teacher_heat[r].contiguous();  // [K,h,w] f16
  auto box = data.teacher_box[r].contiguous();    // [4,h,w] f16
  auto mean = data.feat_mean[r].contiguous(), sqmean = data.feat_sqmean[r].contiguous();
  KD_CHECK(heat.scalar_type() == torch::kHalf && box.scalar_type() == torch::kHalf);
  KD_CHECK(mean.numel() == kFeat && sqmean.numel() == kFeat);
  std::vector<uint8_t> out;
  PutLe32(&out, kMagic);
  for (int v : {data.orig_width, data.orig_height, data.student_width, data.student_height, data.teacher_width,
                data.teacher_height}) {
    PutLe32(&out, static_cast<uint32_t>(v));
  }
  PutLe32(&out, static_cast<uint32_t>(data.labels.size()));
  for (int l : data.labels) PutLe32(&out, static_cast<uint32_t>(int32_t{l}));
  PutBytes(&out, heat.data_ptr(), static_cast<size_t>(heat.numel()) * 2);
  PutBytes(&out, box.data_ptr(), static_cast<size_t>(box.numel()) * 2);
  PutBytes(&out, mean.data_ptr<float>(), kFeat * 4);
  PutBytes(&out, sqmean.data_ptr<float>(), kFeat * 4);
  PutDets(&out, data.pseudo[row]);
  PutDets(&out, data.teacher_dets[row].detections);
  return out;
}

Result<TeacherRow> DecodeTeacherRow(std::span<const uint8_t> blob) {
  ByteReader rd(blob);
  uint32_t magic = 0;
  if (!rd.U32(&magic) || magic != kMagic) return Status::Corruption("teacher blob: bad magic");
  uint32_t dims[6];
  for (auto& d : dims) {
    if (!rd.U32(&d) || d == 0 || d > kMaxDim) return Status::Corruption("teacher blob: bad dimensions");
  }
  TeacherRow row;
  row.orig_width = static_cast<int>(dims[0]), row.orig_height = static_cast<int>(dims[1]);
  row.student_width = static_cast<int>(dims[2]), row.student_height = static_cast<int>(dims[3]);
  row.teacher_width = static_cast<int>(dims[4]), row.teacher_height = static_cast<int>(dims[5]);
  if (row.student_width % 4 != 0 || row.student_height % 4 != 0) {
    return Status::Corruption("teacher blob: student size not a multiple of 4");
  }
  uint32_t k = 0;
  if (!rd.U32(&k) || k == 0 || k > kMaxLabels) return Status::Corruption("teacher blob: bad label count");
  row.labels.resize(k);
  for (auto& l : row.labels) {
    int32_t v = 0;
    if (!rd.I32(&v) || v < 0 || v >= 80) return Status::Corruption("teacher blob: bad label");
    l = v;
  }
  const int64_t gh = row.student_height / 4, gw = row.student_width / 4;
  // The sizes are known now: a blob too short for its tensors is refused before they are allocated
  // (found by fuzz/teacher_record_fuzz.cc: 352 bytes claiming 80 x 4096 x 4096 made it reserve 2.7 GB).
  const uint64_t tensor_bytes = (uint64_t{k} + 4) * static_cast<uint64_t>(gh * gw) * 2 + 2 * kFeat * 4;
  if (rd.remaining() < tensor_bytes) return Status::Corruption("teacher blob: truncated tensors");
  row.heat = torch::empty({k, gh, gw}, torch::kHalf);
  row.box = torch::empty({4, gh, gw}, torch::kHalf);
  row.feat_mean = torch::empty({kFeat}, torch::kFloat);
  row.feat_sqmean = torch::empty({kFeat}, torch::kFloat);
  if (!rd.CopyTo(row.heat.data_ptr(), static_cast<size_t>(row.heat.numel()) * 2) ||
      !rd.CopyTo(row.box.data_ptr(), static_cast<size_t>(row.box.numel()) * 2) ||
      !rd.CopyTo(row.feat_mean.data_ptr<float>(), kFeat * 4) ||
      !rd.CopyTo(row.feat_sqmean.data_ptr<float>(), kFeat * 4)) {
    return Status::Corruption("teacher blob: truncated tensors");
  }
  if (!GetDets(rd, &row.pseudo) || !GetDets(rd, &row.teacher))
    return Status::Corruption("teacher blob: bad detections");
  if (rd.remaining() != 0) return Status::Corruption("teacher blob: trailing bytes");
  return row;
}

Status DatasetAssembler::Add(const media::Frame& frame, TeacherRow row) {
  if (!rows_.empty()) {
    const auto& f = rows_.front();
    if (row.orig_width != f.orig_width || row.orig_height != f.orig_height || row.student_width != f.student_width ||
        row.student_height != f.student_height || row.labels != f.labels) {
      return Status::InvalidArgument("teacher row does not match the dataset's sizes or labels");
    }
  }
  if (frame.width != row.orig_width || frame.height != row.orig_height) {
    return Status::InvalidArgument("frame size " + std::to_string(frame.width) + "x" + std::to_string(frame.height) +
                                   " does not match its teacher record");
  }
  images_.push_back(model::FrameToTensor(media::ResizeRgb(frame, row.student_width, row.student_height)));
  rows_.push_back(std::move(row));
  return Status::Ok();
}

Result<DistillDataset> DatasetAssembler::Finish() && {
  if (rows_.empty()) return Status::InvalidArgument("no frames");
  DistillDataset d;
  const auto& f = rows_.front();
  d.labels = f.labels;
  d.orig_width = f.orig_width, d.orig_height = f.orig_height;
  d.student_width = f.student_width, d.student_height = f.student_height;
  d.teacher_width = f.teacher_width, d.teacher_height = f.teacher_height;
  std::vector<torch::Tensor> heats, boxes, means, sqmeans;
  for (size_t i = 0; i < rows_.size(); ++i) {
    auto& r = rows_[i];
    d.frame_indices.push_back(static_cast<int64_t>(i));
    heats.push_back(r.heat), boxes.push_back(r.box), means.push_back(r.feat_mean), sqmeans.push_back(r.feat_sqmean);
    d.pseudo.push_back(std::move(r.pseudo));
    d.teacher_dets.push_back({static_cast<int64_t>(i), std::move(r.teacher)});
  }
  d.images = torch::stack(images_);
  d.teacher_heat = torch::stack(heats);
  d.teacher_box = torch::stack(boxes);
  d.feat_mean = torch::stack(means);
  d.feat_sqmean = torch::stack(sqmeans);
  return d;
}

std::vector<float> StudentDisagreement(const model::FusedStudent& student, const DistillDataset& data,
                                       const std::vector<size_t>& rows) {
  std::vector<float> out;
  if (rows.empty()) return out;
  torch::NoGradGuard no_grad;
  std::vector<int64_t> idx(rows.begin(), rows.end());
  auto index = torch::tensor(idx);
  auto images = data.images.index_select(0, index).to(torch::kFloat);
  // The head the student's architecture uses at inference (one-to-one when it is NMS-free).
  auto head = model::ForwardChecked(student, images);
  if (!head.ok()) return std::vector<float>(rows.size(), 1.f);          // cannot run: unknown
  auto s = torch::sigmoid(head->cls);                                   // [B,K,h,w]
  auto t = data.teacher_heat.index_select(0, index).to(torch::kFloat);  // [B,K,h,w]
  if (s.dim() == 4 && t.dim() == 4 && s.size(2) * 2 == t.size(2) && s.size(3) * 2 == t.size(3)) {
    // A one-to-one branch at stride 8: the teacher's strongest probability per 2x2 block.
    t = torch::max_pool2d(t, {2, 2});
  }
  if (s.sizes() != t.sizes()) return std::vector<float>(rows.size(), 1.f);  // other classes/grid: unknown
  auto w = torch::maximum(s, t);
  auto num = ((s - t).abs() * w).flatten(1).sum(1);
  auto den = w.flatten(1).sum(1) + 1e-3;
  auto d = (num / den).clamp(0, 1).contiguous();
  const float* p = d.data_ptr<float>();
  out.assign(p, p + d.numel());
  return out;
}

}  // namespace kd::learner
