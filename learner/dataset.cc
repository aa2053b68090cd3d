#include "learner/dataset.h"

#include <torch/torch.h>

#include "learner/refine.h"
#include "media/image_ops.h"
#include "media/video_source.h"
#include "model/decode.h"
#include "model/frame_tensor.h"
#include "model/tfjs_graph.h"

namespace kd::learner {

DatasetBuilder::DatasetBuilder(const model::CenterNetTeacher& teacher, DatasetOptions options,
                               std::function<void()> before_forward)
    : teacher_(teacher), options_(std::move(options)), before_forward_(std::move(before_forward)) {
  data_.labels = options_.labels;
}

Status DatasetBuilder::Add(const media::Frame& frame) { return AddBatch({frame}); }

Status DatasetBuilder::AddBatch(const std::vector<media::Frame>& frames) {
  if (frames.empty()) return Status::Ok();
  auto& d = data_;
  if (d.frame_indices.empty()) {
    const auto& first = frames.front();
    d.orig_width = first.width;
    d.orig_height = first.height;
    std::tie(d.student_width, d.student_height) =
        media::FitSize(first.width, first.height, options_.student_long_side, 32);
    if (options_.teacher_width > 0 && options_.teacher_height > 0) {
      d.teacher_width = options_.teacher_width;
      d.teacher_height = options_.teacher_height;
    } else {
      std::tie(d.teacher_width, d.teacher_height) =
          media::FitSize(first.width, first.height, options_.teacher_long_side, 32);
    }
  }
  for (const auto& frame : frames) {
    if (frame.width != d.orig_width || frame.height != d.orig_height) {
      return Status::InvalidArgument("frame " + std::to_string(frame.index) + " changes the camera size");
    }
  }
  const int64_t gh = d.student_height / 4, gw = d.student_width / 4;
  auto label_index = torch::tensor(std::vector<int64_t>(options_.labels.begin(), options_.labels.end()));
  // Teacher-input pixels -> student-input pixels, per axis (the two sizes may round differently).
  const float sx = static_cast<float>(d.student_width) / static_cast<float>(d.teacher_width);
  const float sy = static_cast<float>(d.student_height) / static_cast<float>(d.teacher_height);
  std::vector<torch::Tensor> teacher_inputs;
  for (const auto& frame : frames) {
    images_.push_back(model::FrameToTensor(media::ResizeRgb(frame, d.student_width, d.student_height)));
    teacher_inputs.push_back(model::FrameToTensor(media::ResizeRgb(frame, d.teacher_width, d.teacher_height)));
  }
  // One teacher forward for the whole batch: [B,3,Ht,Wt].
  auto tin = torch::stack(teacher_inputs).to(torch::kFloat);
  if (before_forward_) before_forward_();
  KD_ASSIGN_OR_RETURN(auto out, teacher_.Forward(tin));
  auto heat = out.heat.index_select(1, label_index.to(out.heat.device()));  // [B,K,ht,wt]
  auto heat_s = model::ResizeBilinearLegacy(heat, gh, gw).clamp(0, 1);      // [B,K,gh,gw]
  auto axis_scale = torch::tensor({sx, sy, sx, sy}, out.box.options()).view({1, 4, 1, 1});
  auto box_s = model::ResizeBilinearLegacy(out.box, gh, gw).clamp_min(0) * axis_scale;  // [B,4,gh,gw]
  auto feat = out.feature.flatten(2);                                                   // [B,128,ht*wt]
  auto mean = feat.mean(2).to(torch::kCPU), sqmean = feat.square().mean(2).to(torch::kCPU);
  model::DecodeOptions dec;
  dec.score_threshold = options_.teacher_min_score;
  dec.nms_iou = options_.teacher_nms_iou;
  std::vector<int> channels(options_.labels.size());
  for (size_t k = 0; k < channels.size(); ++k) channels[k] = static_cast<int>(k);
  // Detections per frame in original pixels with channel labels: one pass per input scale.
  const auto decode_pass = [&](const torch::Tensor& heat_k, const torch::Tensor& box, int in_w, int in_h,
                               std::vector<std::vector<std::vector<Detection>>>* passes) {
    const float ox = static_cast<float>(d.orig_width) / static_cast<float>(in_w);
    const float oy = static_cast<float>(d.orig_height) / static_cast<float>(in_h);
    for (size_t b = 0; b < frames.size(); ++b) {
      const auto i = static_cast<int64_t>(b);
      (*passes)[b].push_back(
          model::DecodeDense(heat_k[i], box[i], channels, model::CenterNetTeacher::kStride, ox, oy, dec));
    }
  };
  std::vector<std::vector<std::vector<Detection>>> passes(frames.size());
  decode_pass(heat, out.box, d.teacher_width, d.teacher_height, &passes);
  if (options_.refine.enabled) {
    for (int side : options_.refine.extra_long_sides) {
      const auto [w, h] = media::FitSize(d.orig_width, d.orig_height, side, 32);
      std::vector<torch::Tensor> inputs;
      for (const auto& frame : frames) inputs.push_back(model::FrameToTensor(media::ResizeRgb(frame, w, h)));
      if (before_forward_) before_forward_();
      KD_ASSIGN_OR_RETURN(auto scaled, teacher_.Forward(torch::stack(inputs).to(torch::kFloat)));
      decode_pass(scaled.heat.index_select(1, label_index.to(scaled.heat.device())), scaled.box, w, h, &passes);
    }
  }
  for (size_t b = 0; b < frames.size(); ++b) {
    const auto i = static_cast<int64_t>(b);
    heats_.push_back(heat_s[i].to(torch::kCPU, torch::kHalf));
    boxes_.push_back(box_s[i].to(torch::kCPU, torch::kHalf));
    means_.push_back(mean[i]);
    sqmeans_.push_back(sqmean[i]);
    // Evaluation ground truth in original pixels with COCO labels; the pseudo-labels are the same
    // boxes in student pixels with channel labels.
    FrameDetections fd{frames[b].index, FuseBoxes(passes[b], static_cast<float>(options_.refine.wbf_iou))};
    for (auto& det : fd.detections) det.label = options_.labels[static_cast<size_t>(det.label)];
    d.teacher_dets.push_back(std::move(fd));
    d.pseudo.emplace_back();
    d.frame_indices.push_back(frames[b].index);
    PseudoFromTeacherDets(&d, d.frame_indices.size() - 1);
  }
  return Status::Ok();
}

Result<DistillDataset> DatasetBuilder::Finish() && {
  if (data_.frame_indices.empty()) return Status::InvalidArgument("no frames");
  data_.images = torch::stack(images_);
  data_.teacher_heat = torch::stack(heats_);
  data_.teacher_box = torch::stack(boxes_);
  data_.feat_mean = torch::stack(means_);
  data_.feat_sqmean = torch::stack(sqmeans_);
  return std::move(data_);
}

void PseudoFromTeacherDets(DistillDataset* data, size_t row) {
  const float sx = static_cast<float>(data->student_width) / static_cast<float>(data->orig_width);
  const float sy = static_cast<float>(data->student_height) / static_cast<float>(data->orig_height);
  auto& pseudo = data->pseudo[row];
  pseudo.clear();
  for (const Detection& det : data->teacher_dets[row].detections) {
    const auto k = std::find(data->labels.begin(), data->labels.end(), det.label);
    if (k == data->labels.end()) continue;
    pseudo.push_back({{det.box.x1 * sx, det.box.y1 * sy, det.box.x2 * sx, det.box.y2 * sy},
                      det.score,
                      static_cast<int>(k - data->labels.begin())});
  }
}

Result<DistillDataset> BuildDataset(const std::string& video, int64_t begin, int64_t end,
                                    const model::CenterNetTeacher& teacher, const DatasetOptions& options,
                                    const ProgressFn& progress) {
  media::SourceOptions so;
  so.begin = begin;
  so.end = end;
  KD_ASSIGN_OR_RETURN(auto source, media::OpenSource(video, so));
  const auto info = source->info();
  const int64_t total = end > begin ? end - begin : (info.frame_count > 0 ? info.frame_count - begin : 0);
  DatasetBuilder builder(teacher, options);
  size_t done = 0;
  while (true) {
    KD_ASSIGN_OR_RETURN(auto frame, source->Next());
    if (!frame) break;
    KD_RETURN_IF_ERROR(builder.Add(*frame));
    if (progress) progress(++done, static_cast<size_t>(std::max<int64_t>(total, 0)));
  }
  auto r = std::move(builder).Finish();
  if (!r.ok()) return r.status().WithContext(video);
  if (options.refine.enabled && options.refine.smooth) SmoothDatasetLabels(&*r, options.refine);
  return r;
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
