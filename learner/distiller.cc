#include "learner/distiller.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <random>

#include <torch/torch.h>

#include "base/check.h"
#include "base/clock.h"
#include "base/log.h"
#include "learner/losses.h"
#include "model/decode.h"
#include "model/inference.h"
#include "update/delta.h"

namespace kd::learner {
namespace {

namespace nn = torch::nn;

// KD losses of dense predictions against the teacher's, normalised for label-free batches:
// cls by max(1, #locations where the teacher is confident), box by the sum of its weights.
struct KdTerms {
  torch::Tensor cls, box;
};

KdTerms DenseKd(const torch::Tensor& cls_logits, const torch::Tensor& box_dist, const torch::Tensor& t_heat,
                const torch::Tensor& t_box_xyxy, const config::DistillOptions& r, int stride) {
  const auto c_t = std::get<0>(t_heat.max(1));  // [N,h,w] teacher confidence
  auto cls_w = torch::ones_like(t_heat);
  auto box_w = c_t;
  auto pred_xyxy = model::DistancesToBoxes(box_dist, stride);
  auto flat = [](const torch::Tensor& b) { return b.permute({0, 2, 3, 1}).reshape({-1, 4}); };
  if (r.adaptive) {
    const auto iou = PairwiseIou(flat(pred_xyxy).detach(), flat(t_box_xyxy)).view_as(c_t);
    KdWeights w =
        AdaptiveKdWeights(torch::sigmoid(cls_logits).detach(), t_heat, iou, r.adaptive_lambda, r.ignore_threshold);
    cls_w = w.cls;
    box_w = w.box;
  }
  const double avg = std::max(1.0, (c_t > r.pseudo_threshold).sum().item<double>());
  KdTerms k;
  k.cls = (QualityFocalLoss(cls_logits, t_heat, 1.0) * cls_w).sum() / avg;
  auto bw = box_w.flatten();
  auto sel = bw > 0.05;  // skip background where the teacher box is meaningless
  if (sel.any().item<bool>()) {
    auto l = GiouLoss(flat(pred_xyxy).index({sel}), flat(t_box_xyxy).index({sel}));
    k.box = (l * bw.index({sel})).sum() / bw.index({sel}).sum().clamp_min(1e-6);
  } else {
    k.box = box_dist.sum() * 0.0;
  }
  return k;
}

}  // namespace

Result<model::StudentOptions> StudentOptionsFor(const config::DistillOptions& r, const DistillDataset& data) {
  model::StudentOptions o;
  o.width = r.student.width;
  o.head_channels = r.student.head_channels;
  o.labels = data.labels;
  o.input_width = data.student_width;
  o.input_height = data.student_height;
  o.one_to_one = r.cakd;
  o.one_to_one_stride = r.cakd_stride;
  KD_RETURN_IF_ERROR(o.Validate());
  return o;
}

struct Distiller::Losses {
  std::map<std::string, torch::Tensor> terms;  // weighted
  torch::Tensor kd_total;                      // sum of the KD terms only (for gradient tests)
  std::vector<float> difficulty;               // per row of the batch
};

Distiller::Distiller(config::DistillOptions recipe, model::Student student, const model::CenterNetTeacher& teacher,
                     torch::Device device)
    : recipe_(std::move(recipe)), student_(std::move(student)), teacher_(teacher), device_(device) {
  torch::manual_seed(recipe_.seed);
  student_->to(device_);
  std::vector<torch::Tensor> params = student_->parameters();
  if (recipe_.crosskd) {
    adapter_ =
        nn::Conv2d(nn::Conv2dOptions(student_->options().head_channels, model::CenterNetTeacher::kFeatureChannels, 1));
    adapter_->to(device_);
    for (auto& p : adapter_->parameters()) params.push_back(p);
  }
  optimizer_ = std::make_unique<torch::optim::AdamW>(
      params, torch::optim::AdamWOptions(recipe_.lr).weight_decay(recipe_.weight_decay));
  for (int l : student_->options().labels) label_index_.push_back(l);
}

Distiller::Losses Distiller::ComputeLosses(const DistillDataset& data, const std::vector<size_t>& rows) {
  const auto& r = recipe_;
  constexpr int kStride = model::StudentImpl::kStride;
  std::vector<int64_t> idx(rows.begin(), rows.end());
  auto index = torch::tensor(idx);
  auto images = data.images.index_select(0, index).to(device_, torch::kFloat);
  auto t_heat = data.teacher_heat.index_select(0, index).to(device_, torch::kFloat);
  auto t_box = data.teacher_box.index_select(0, index).to(device_, torch::kFloat);
  auto t_xyxy = model::DistancesToBoxes(t_box, kStride);
  std::vector<std::vector<Detection>> pseudo;
  for (size_t row : rows) pseudo.push_back(data.pseudo[row]);

  student_->train();
  model::StudentOutput s = student_->forward(images);
  Losses out;
  auto flat = [](const torch::Tensor& b) { return b.permute({0, 2, 3, 1}).reshape({-1, 4}); };

  torch::Tensor kd_total;
  auto add_kd = [&](const std::string& name, const torch::Tensor& v) {
    out.terms[name] = v;
    kd_total = kd_total.defined() ? kd_total + v : v;
  };
  if (r.mimic) {
    KdTerms k = DenseKd(s.cls, s.box, t_heat, t_xyxy, r, kStride);
    add_kd("kd_cls", r.w_kd_cls * k.cls);
    add_kd("kd_box", r.w_kd_box * k.box);
  }
  torch::Tensor cross_cls, cross_box;
  if (r.crosskd) {
    // Teacher feature statistics for this batch from the cached per-frame moments.
    auto mean = data.feat_mean.index_select(0, index).to(device_).mean(0);
    auto sq = data.feat_sqmean.index_select(0, index).to(device_).mean(0);
    auto std = (sq - mean.square()).clamp_min(1e-12).sqrt();
    const torch::Tensor& tap = r.crosskd_tap == "neck" ? s.neck : s.tap;        // [N,C,h,w], pre-ReLU
    auto aligned = torch::relu(AlignScale(adapter_->forward(tap), mean, std));  // [N,128,h,w]
    const int64_t h = aligned.size(2), w = aligned.size(3);
    // crosskd_teacher_scale: the teacher head sees objects at the size it was trained on. The
    // student's features are resampled to the teacher's stride-4 grid (512x384 -> 128x96 against
    // the student's 96x72), and the head's maps come back to the student grid, its box distances
    // (input pixels) scaled from teacher to student pixels.
    const int64_t th = data.teacher_height / kStride, tw = data.teacher_width / kStride;
    const bool resample = r.crosskd_teacher_scale && th > 0 && tw > 0 && (th != h || tw != w);
    namespace F = torch::nn::functional;
    const auto bilinear = [](const torch::Tensor& x, int64_t oh, int64_t ow) {
      return F::interpolate(
          x,
          F::InterpolateFuncOptions().size(std::vector<int64_t>{oh, ow}).mode(torch::kBilinear).align_corners(false));
    };
    auto head = teacher_.Head(resample ? bilinear(aligned, th, tw) : aligned, label_index_);
    KD_CHECK_MSG(head.ok(), head.status().ToString());
    cross_cls = head->cls_logits;  // the student's classes only
    cross_box = head->box;
    if (resample) {
      cross_cls = bilinear(cross_cls, h, w);
      cross_box = bilinear(cross_box, h, w) * (static_cast<double>(w) / static_cast<double>(tw));
    }
    KdTerms k = DenseKd(cross_cls, cross_box, t_heat, t_xyxy, r, kStride);
    add_kd("kd_cls", r.w_kd_cls * k.cls);
    add_kd("kd_box", r.w_kd_box * k.box);
  }
  // CAKD: the one-to-one match (and, consistent, the one-to-many positives) by one task-aligned
  // metric on the cross-head predictions.
  std::optional<DualTargets> dual;
  if (r.cakd && s.cls_o2o.defined()) {
    KD_CHECK_MSG(cross_cls.defined(),
                 "cakd assigns on cross-head predictions: DistillOptions::Validate requires crosskd");
    TaskAlignedOptions ta;
    ta.pseudo_threshold = static_cast<float>(r.pseudo_threshold);
    ta.ignore_threshold = static_cast<float>(r.ignore_threshold);
    ta.alpha = r.cakd_alpha;
    ta.beta = r.cakd_beta;
    ta.consistent = r.cakd_consistent;
    ta.topk = r.cakd_topk;
    ta.iou_targets = r.cakd_iou_targets;
    const auto cross_prob = torch::sigmoid(cross_cls);
    const auto cross_xyxy = model::DistancesToBoxes(cross_box, kStride);
    dual = AssignTaskAligned(pseudo, cross_prob, cross_xyxy, t_heat, kStride, ta);
    // At stride 8 the one-to-one branch is matched on the cross head's predictions pooled to its
    // grid: per 2x2 block the best class probability, the mean box (the block's four stride-4
    // boxes around its corner anchor) and the teacher's highest probability (the ignored band).
    // The one-to-many branch keeps its stride-4 assignment by the same metric.
    const int o2o_stride = s.cls_o2o.size(2) == cross_cls.size(2) ? kStride : 2 * kStride;
    OneToOneTargets t = dual->one_to_one;
    if (o2o_stride != kStride) {
      namespace F = torch::nn::functional;
      const auto max2 = [](const torch::Tensor& x) { return F::max_pool2d(x, F::MaxPool2dFuncOptions(2)); };
      t = AssignTaskAligned(pseudo, max2(cross_prob), F::avg_pool2d(cross_xyxy, F::AvgPool2dFuncOptions(2)),
                            max2(t_heat), o2o_stride, ta)
              .one_to_one;
    }
    const double norm = std::max(1, t.num_objects);
    out.terms["o2o_cls"] = r.w_o2o * QualityFocalLoss(s.cls_o2o, t.cls).sum() / norm;
    auto bw = t.box_weight.flatten();
    auto sel = bw > 0;
    if (sel.any().item<bool>()) {
      auto pred = flat(model::DistancesToBoxes(s.box_o2o, o2o_stride)).index({sel});
      out.terms["o2o_box"] = r.w_o2o * r.w_det_box * GiouLoss(pred, flat(t.box).index({sel})).mean();
    }
  }
  if (r.pseudo_labels) {
    AssignOptions ao;
    ao.pseudo_threshold = static_cast<float>(r.pseudo_threshold);
    ao.ignore_threshold = static_cast<float>(r.ignore_threshold);
    ao.from_teacher = r.lad;
    // Under consistent CAKD the one-to-many branch is the auxiliary of the same assignment.
    DetTargets t = dual && r.cakd_consistent ? dual->one_to_many : AssignOneToMany(pseudo, t_heat, t_box, kStride, ao);
    const double norm = std::max(1, t.num_objects);
    out.terms["det_cls"] = r.w_det_cls * (QualityFocalLoss(s.cls, t.cls) * t.cls_weight).sum() / norm;
    auto bw = t.box_weight.flatten();
    auto sel = bw > 0;
    if (sel.any().item<bool>()) {
      auto pred = flat(model::DistancesToBoxes(s.box, kStride)).index({sel});
      auto l = GiouLoss(pred, flat(t.box).index({sel}));
      out.terms["det_box"] = r.w_det_box * (l * bw.index({sel})).sum() / bw.index({sel}).sum().clamp_min(1e-6);
    }
  }
  out.kd_total = kd_total;
  // Per-frame difficulty: how badly the student matches the teacher where the teacher is sure.
  {
    torch::NoGradGuard ng;
    auto c_t = std::get<0>(t_heat.max(1));
    auto conf = (c_t > r.pseudo_threshold).to(torch::kFloat);
    auto gap = (torch::sigmoid(s.cls) - t_heat).abs().amax(1);
    auto d = ((gap * conf).sum({1, 2}) / conf.sum({1, 2}).clamp_min(1.0)).to(torch::kCPU);
    for (int64_t i = 0; i < d.size(0); ++i) out.difficulty.push_back(d[i].item<float>());
  }
  return out;
}

StepStats Distiller::Step(const DistillDataset& data, const std::vector<size_t>& rows) {
  if (difficulty_.size() != data.size()) difficulty_.assign(data.size(), 1.f);
  // Warm-up, then cosine decay to 5% of the peak learning rate (or a constant rate when continual).
  const double it = step_, total = std::max(1, recipe_.iterations);
  double lr = recipe_.lr;
  if (it < recipe_.warmup) {
    lr *= (it + 1) / recipe_.warmup;
  } else if (continual_) {
    lr *= continual_lr_scale_;  // an open-ended stream has no end to decay towards
  } else {
    const double p = std::min(1.0, (it - recipe_.warmup) / std::max(1.0, total - recipe_.warmup));
    lr *= 0.05 + 0.95 * 0.5 * (1 + std::cos(M_PI * p));
  }
  for (auto& g : optimizer_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
  ++step_;

  Losses l = ComputeLosses(data, rows);
  StepStats st;
  torch::Tensor total_loss;
  for (auto& [name, v] : l.terms) {
    st.losses[name] = v.item<double>();
    total_loss = total_loss.defined() ? total_loss + v : v;
  }
  for (size_t i = 0; i < rows.size(); ++i) difficulty_[rows[i]] = 0.7f * difficulty_[rows[i]] + 0.3f * l.difficulty[i];
  if (!total_loss.defined()) return st;
  st.losses["total"] = total_loss.item<double>();
  if (!std::isfinite(st.losses["total"])) {  // NaN/inf guard: drop the step, keep the weights
    st.skipped = true;
    optimizer_->zero_grad();
    return st;
  }
  optimizer_->zero_grad();
  total_loss.backward();
  std::vector<torch::Tensor> params = student_->parameters();
  if (adapter_) {
    for (auto& p : adapter_->parameters()) params.push_back(p);
  }
  st.grad_norm = torch::nn::utils::clip_grad_norm_(params, recipe_.grad_clip);
  if (!std::isfinite(st.grad_norm)) {
    st.skipped = true;
    optimizer_->zero_grad();
    return st;
  }
  const bool probing = !anchor_.empty() && update_mask_.empty();
  if (!update_mask_.empty()) {
    for (size_t i = 0; i < anchor_.size(); ++i) {
      if (params[i].grad().defined()) params[i].mutable_grad().mul_(update_mask_[i]);
    }
  }
  optimizer_->step();
  // The probe is over: keep the coordinates that moved farthest from the anchor, undo the others,
  // and average from the kept weights on.
  const bool chosen_now = probing && ++probe_done_ >= probe_steps_;
  if (chosen_now) ChooseUpdateMasks();
  if (!update_mask_.empty()) RestoreFrozen(params);
  if (average_ && chosen_now) {
    average_ = std::make_unique<WeightAverage>(*student_, recipe_.continual_ema_decay);
  } else if (average_) {
    average_->Update(*student_);
  }
  return st;
}

void Distiller::RestoreFrozen(const std::vector<torch::Tensor>& params) {
  // AdamW's weight decay and its momentum move every coordinate: put the frozen ones back.
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < anchor_.size(); ++i) params[i].copy_(torch::where(update_mask_[i], params[i], anchor_[i]));
}

void Distiller::AnchorSparse(double fraction, int probe_steps) {
  KD_CHECK(fraction > 0 && (fraction >= 1 || probe_steps >= 1));
  anchor_.clear();
  update_mask_.clear();
  sparse_fraction_ = fraction;
  probe_steps_ = probe_steps;
  probe_done_ = 0;
  if (fraction >= 1) return;
  torch::NoGradGuard no_grad;
  for (const auto& p : student_->parameters()) anchor_.push_back(p.detach().clone());
  if (average_) average_ = std::make_unique<WeightAverage>(*student_, recipe_.continual_ema_decay);
}

void Distiller::ChooseUpdateMasks() {
  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> params = student_->parameters();
  for (size_t i = 0; i < anchor_.size(); ++i) {
    const torch::Tensor& p = params[i];
    const int64_t numel = p.numel();
    const int64_t k = std::min<int64_t>(update::DeltaTopK(sparse_fraction_, numel), numel);
    torch::Tensor mask = torch::zeros({numel}, torch::TensorOptions().dtype(torch::kBool).device(p.device()));
    const torch::Tensor score = (p - anchor_[i]).abs();
    if (k > 0) {
      mask.index_fill_(
          0, std::get<1>(torch::topk(score.reshape({-1}), k, /*dim=*/0, /*largest=*/true, /*sorted=*/false)), true);
    }
    update_mask_.push_back(mask.view(p.sizes()));
  }
}

std::map<std::string, torch::Tensor> Distiller::UpdateMasks() const {
  std::map<std::string, torch::Tensor> out;
  if (update_mask_.empty()) return out;
  size_t i = 0;
  for (const auto& p : student_->named_parameters()) out[p.key()] = update_mask_.at(i++).cpu();
  return out;
}

void Distiller::SetContinual(double lr_scale) {
  continual_ = true;
  continual_lr_scale_ = lr_scale;
  if (recipe_.continual_ema_decay > 0 && !average_) {
    average_ = std::make_unique<WeightAverage>(*student_, recipe_.continual_ema_decay);
  }
}

update::TensorMap Distiller::TrainedState() const { return average_ ? average_->State() : update::StateOf(*student_); }

std::map<std::string, torch::Tensor> Distiller::KdGradients(const DistillDataset& data,
                                                            const std::vector<size_t>& rows) {
  optimizer_->zero_grad();
  Losses l = ComputeLosses(data, rows);
  std::map<std::string, torch::Tensor> grads;
  if (!l.kd_total.defined()) return grads;
  for (auto& p : student_->named_parameters()) p.value().mutable_grad() = torch::Tensor();
  l.kd_total.backward();
  for (auto& p : student_->named_parameters()) {
    grads[p.key()] = p.value().grad().defined() ? p.value().grad().clone() : torch::zeros_like(p.value());
  }
  optimizer_->zero_grad();
  return grads;
}

Result<TrainReport> Distiller::Train(const DistillDataset& data, const std::vector<size_t>& rows,
                                     const std::function<void(const TrainProgress&)>& progress) {
  if (rows.empty()) return Status::InvalidArgument("no training frames");
  TrainReport report;
  std::mt19937_64 rng(recipe_.seed);
  std::vector<size_t> order = rows;
  size_t cursor = order.size();
  Stopwatch sw;
  std::map<std::string, double> tail_sum;
  int tail_n = 0;
  for (int i = 0; i < recipe_.iterations; ++i) {
    std::vector<size_t> batch;
    while (static_cast<int>(batch.size()) < recipe_.batch_size) {
      if (cursor == order.size()) {
        std::shuffle(order.begin(), order.end(), rng);
        cursor = 0;
      }
      batch.push_back(order[cursor++]);
    }
    StepStats st = Step(data, batch);
    if (st.skipped) ++report.skipped_steps;
    if (i >= recipe_.iterations - 50) {
      for (auto& [k, v] : st.losses) tail_sum[k] += v;
      ++tail_n;
    }
    if (progress) {
      TrainProgress p;
      p.iteration = i + 1;
      p.iterations = recipe_.iterations;
      p.stats = st;
      const double secs = sw.ElapsedSeconds();
      p.frames_per_second = (i + 1) * recipe_.batch_size / std::max(secs, 1e-9);
      p.eta_seconds = secs / (i + 1) * (recipe_.iterations - i - 1);
      progress(p);
    }
  }
  if (average_) average_->CopyTo(*student_);  // continual mode: the result is the average
  report.iterations = recipe_.iterations;
  report.seconds = sw.ElapsedSeconds();
  for (auto& [k, v] : tail_sum) report.final_losses[k] = v / std::max(1, tail_n);
  report.difficulty = difficulty_;
  return report;
}

Result<eval::CocoMetrics> EvaluateStudent(model::StudentImpl& student, const DistillDataset& data,
                                          const std::vector<size_t>& rows, float gt_min_score,
                                          std::vector<FrameDetections>* detections,
                                          const model::DecodeOptions& decode) {
  std::vector<FrameDetections> dets;
  constexpr size_t kBatch = 16;
  for (size_t i = 0; i < rows.size(); i += kBatch) {
    std::vector<int64_t> idx;
    for (size_t j = i; j < std::min(rows.size(), i + kBatch); ++j) idx.push_back(static_cast<int64_t>(rows[j]));
    auto images = data.images.index_select(0, torch::tensor(idx));
    auto out = model::DetectBatch(student, images, data.orig_width, data.orig_height, decode);
    for (size_t j = 0; j < out.size(); ++j) dets.push_back({data.frame_indices[static_cast<size_t>(idx[j])], out[j]});
  }
  auto gt = TeacherGroundTruth(data, rows, gt_min_score);
  if (detections) *detections = dets;
  return eval::EvaluateCoco(gt, dets, data.labels);
}

}  // namespace kd::learner
