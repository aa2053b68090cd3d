#include "learner/dataset.h"

#include <torch/torch.h>

#include "media/image_ops.h"
#include "media/video_source.h"
#include "model/decode.h"
#include "model/tfjs_graph.h"

namespace kd::learner {
namespace {

torch::Tensor ToTensor(const media::Frame& f) {  // -> [3,H,W] uint8
  return torch::from_blob(const_cast<uint8_t*>(f.rgb.data()), {f.height, f.width, 3}, torch::kUInt8)
      .permute({2, 0, 1})
      .clone();
}

}  // namespace

Result<DistillDataset> BuildDataset(const std::string& video, int64_t begin, int64_t end,
                                    const model::CenterNetTeacher& teacher, const DatasetOptions& options,
                                    const ProgressFn& progress) {
  media::SourceOptions so;
  so.begin = begin;
  so.end = end;
  KD_ASSIGN_OR_RETURN(auto source, media::OpenSource(video, so));
  const auto info = source->info();
  DistillDataset d;
  d.labels = options.labels;
  d.orig_width = info.width;
  d.orig_height = info.height;
  std::tie(d.student_width, d.student_height) = media::FitSize(info.width, info.height, options.student_long_side, 32);
  std::tie(d.teacher_width, d.teacher_height) = media::FitSize(info.width, info.height, options.teacher_long_side, 32);
  const int64_t gh = d.student_height / 4, gw = d.student_width / 4;
  auto label_index = torch::tensor(std::vector<int64_t>(options.labels.begin(), options.labels.end()));
  const float box_scale = static_cast<float>(d.student_width) / static_cast<float>(d.teacher_width);
  std::vector<torch::Tensor> images, heats, boxes, means, sqmeans;
  const int64_t total = end > begin ? end - begin : (info.frame_count > 0 ? info.frame_count - begin : 0);
  while (true) {
    KD_ASSIGN_OR_RETURN(auto frame, source->Next());
    if (!frame) break;
    images.push_back(ToTensor(media::ResizeRgb(*frame, d.student_width, d.student_height)));
    auto tin = ToTensor(media::ResizeRgb(*frame, d.teacher_width, d.teacher_height)).unsqueeze(0).to(torch::kFloat);
    KD_ASSIGN_OR_RETURN(auto out, teacher.Forward(tin));
    auto heat = out.heat.index_select(1, label_index.to(out.heat.device()));          // [1,K,ht,wt]
    auto heat_s = model::ResizeBilinearLegacy(heat, gh, gw).clamp(0, 1);              // [1,K,gh,gw]
    auto box_s = model::ResizeBilinearLegacy(out.box, gh, gw).clamp_min(0) * box_scale;  // [1,4,gh,gw]
    heats.push_back(heat_s.squeeze(0).to(torch::kCPU, torch::kHalf));
    boxes.push_back(box_s.squeeze(0).to(torch::kCPU, torch::kHalf));
    auto feat = out.feature.squeeze(0).flatten(1);  // [128, ht*wt]
    means.push_back(feat.mean(1).to(torch::kCPU));
    sqmeans.push_back(feat.square().mean(1).to(torch::kCPU));
    model::DecodeOptions dec;
    dec.score_threshold = options.teacher_min_score;
    dec.nms_iou = options.teacher_nms_iou;
    std::vector<int> channels(options.labels.size());
    for (size_t k = 0; k < channels.size(); ++k) channels[k] = static_cast<int>(k);
    // Pseudo-labels in student pixels (teacher grid decoded, then scaled).
    d.pseudo.push_back(model::DecodeDense(heat[0], out.box[0], channels, model::CenterNetTeacher::kStride, box_scale,
                                          box_scale, dec));
    // Evaluation ground truth in original pixels with COCO labels.
    const float ox = static_cast<float>(d.orig_width) / static_cast<float>(d.teacher_width);
    const float oy = static_cast<float>(d.orig_height) / static_cast<float>(d.teacher_height);
    d.teacher_dets.push_back(
        {frame->index, model::DecodeDense(heat[0], out.box[0], options.labels, model::CenterNetTeacher::kStride, ox, oy, dec)});
    d.frame_indices.push_back(frame->index);
    if (progress) progress(d.frame_indices.size(), static_cast<size_t>(std::max<int64_t>(total, 0)));
  }
  if (d.frame_indices.empty()) return Status::InvalidArgument("no frames in range of '" + video + "'");
  d.images = torch::stack(images);
  d.teacher_heat = torch::stack(heats);
  d.teacher_box = torch::stack(boxes);
  d.feat_mean = torch::stack(means);
  d.feat_sqmean = torch::stack(sqmeans);
  return d;
}

std::vector<FrameDetections> TeacherGroundTruth(const DistillDataset& data, const std::vector<size_t>& rows,
                                                float min_score) {
  std::vector<FrameDetections> gt;
  for (size_t r : rows) {
    FrameDetections f{data.teacher_dets[r].frame_index, {}};
    for (const auto& det : data.teacher_dets[r].detections) {
      if (det.score >= min_score) f.detections.push_back(det);
    }
    gt.push_back(std::move(f));
  }
  return gt;
}

}  // namespace kd::learner
