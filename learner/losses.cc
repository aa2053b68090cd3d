#include "learner/losses.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include <torch/torch.h>

#include "base/check.h"

namespace kd::learner {

torch::Tensor QualityFocalLoss(const torch::Tensor& logits, const torch::Tensor& target, double beta) {
  auto bce = torch::binary_cross_entropy_with_logits(logits, target, {}, {}, at::Reduction::None);
  return bce * (torch::sigmoid(logits) - target).abs().pow(beta);
}

torch::Tensor PairwiseIou(const torch::Tensor& a, const torch::Tensor& b) {
  auto ix = (torch::min(a.select(1, 2), b.select(1, 2)) - torch::max(a.select(1, 0), b.select(1, 0))).clamp_min(0);
  auto iy = (torch::min(a.select(1, 3), b.select(1, 3)) - torch::max(a.select(1, 1), b.select(1, 1))).clamp_min(0);
  auto inter = ix * iy;
  auto area = [](const torch::Tensor& t) {
    return (t.select(1, 2) - t.select(1, 0)).clamp_min(0) * (t.select(1, 3) - t.select(1, 1)).clamp_min(0);
  };
  return inter / (area(a) + area(b) - inter).clamp_min(1e-6);
}

torch::Tensor GiouLoss(const torch::Tensor& pred_in, const torch::Tensor& target) {
  // Repair degenerate predictions so the enclosing box and union stay positive.
  auto x1 = torch::min(pred_in.select(1, 0), pred_in.select(1, 2));
  auto x2 = torch::max(pred_in.select(1, 0), pred_in.select(1, 2));
  auto y1 = torch::min(pred_in.select(1, 1), pred_in.select(1, 3));
  auto y2 = torch::max(pred_in.select(1, 1), pred_in.select(1, 3));
  auto pred = torch::stack({x1, y1, x2, y2}, 1);
  auto iou_inter_x = (torch::min(x2, target.select(1, 2)) - torch::max(x1, target.select(1, 0))).clamp_min(0);
  auto iou_inter_y = (torch::min(y2, target.select(1, 3)) - torch::max(y1, target.select(1, 1))).clamp_min(0);
  auto inter = iou_inter_x * iou_inter_y;
  auto area_p = (x2 - x1) * (y2 - y1);
  auto area_t = (target.select(1, 2) - target.select(1, 0)).clamp_min(0) *
                (target.select(1, 3) - target.select(1, 1)).clamp_min(0);
  auto uni = (area_p + area_t - inter).clamp_min(1e-6);
  auto ex = torch::max(x2, target.select(1, 2)) - torch::min(x1, target.select(1, 0));
  auto ey = torch::max(y2, target.select(1, 3)) - torch::min(y1, target.select(1, 1));
  auto enclose = (ex * ey).clamp_min(1e-6);
  auto giou = inter / uni - (enclose - uni) / enclose;
  return 1 - giou;
}

torch::Tensor AlignScale(const torch::Tensor& s, const torch::Tensor& teacher_mean, const torch::Tensor& teacher_std) {
  // CrossKD's align_scale is (s - mean) / (std + 1e-6) * t_std + t_mean with the unbiased std over
  // (N,h,w). Written that way, the reductions and the broadcast division over an [8,128,72,96]
  // map (and their backward) took about 140 of a 225-ms training step on 2 CPU threads (autograd
  // profiler, LibTorch 1.13). Batch norm in training mode computes the same standardisation in
  // one fused kernel with an exact backward; it divides by the biased std, so the scale carries
  // sqrt((M-1)/M) to keep the unbiased std, and its eps sits under the root (1e-12: the same as
  // 1e-6 added to the std for any std that matters).
  const int64_t m = s.numel() / std::max<int64_t>(1, s.size(1));
  KD_CHECK_MSG(m > 1, "AlignScale needs more than one value per channel");
  const double unbias = std::sqrt(static_cast<double>(m - 1) / static_cast<double>(m));
  return torch::batch_norm(s, teacher_std * unbias, teacher_mean, /*running_mean=*/{}, /*running_var=*/{},
                           /*training=*/true, /*momentum=*/0.0, /*eps=*/1e-12, /*cudnn_enabled=*/true);
}

KdWeights AdaptiveKdWeights(const torch::Tensor& student_prob, const torch::Tensor& teacher_prob,
                            const torch::Tensor& box_iou, double lambda, double ignore_threshold, double unsure_high) {
  torch::NoGradGuard no_grad;
  const auto c_t = std::get<0>(teacher_prob.max(1));  // [N,h,w]
  const auto unsure = ((c_t > ignore_threshold) & (c_t < unsure_high)).to(torch::kFloat);
  const auto damp = 1.0 - 0.5 * unsure;
  KdWeights w;
  w.cls = (1.0 + lambda * (student_prob - teacher_prob).abs()) * damp.unsqueeze(1);
  w.box = c_t * (1.0 + lambda * (1.0 - box_iou)) * damp;
  return w;
}

DetTargets AssignOneToMany(const std::vector<std::vector<Detection>>& pseudo, const torch::Tensor& teacher_heat,
                           const torch::Tensor& teacher_box, int stride, const AssignOptions& options) {
  const int64_t n = teacher_heat.size(0), k = teacher_heat.size(1), h = teacher_heat.size(2), w = teacher_heat.size(3);
  KD_CHECK(static_cast<int64_t>(pseudo.size()) == n);
  auto cls = torch::zeros({n, k, h, w});
  auto box = torch::zeros({n, 4, h, w});
  auto box_weight = torch::zeros({n, h, w});
  auto th = teacher_heat.to(torch::kCPU, torch::kFloat).contiguous();
  auto tb = teacher_box.to(torch::kCPU, torch::kFloat).contiguous();
  auto c = cls.accessor<float, 4>();
  auto b = box.accessor<float, 4>();
  auto bw = box_weight.accessor<float, 3>();
  auto thh = th.accessor<float, 4>();
  auto tbb = tb.accessor<float, 4>();
  int objects = 0;
  const float s = static_cast<float>(stride);
  for (int64_t i = 0; i < n; ++i) {
    for (const Detection& d : pseudo[static_cast<size_t>(i)]) {
      if (d.score < options.pseudo_threshold) continue;
      ++objects;
      const int64_t lab = d.label;
      const float bwid = d.box.width(), bhgt = d.box.height();
      const float gx = (d.box.x1 + d.box.x2) * 0.5f / s, gy = (d.box.y1 + d.box.y2) * 0.5f / s;
      const int64_t x0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(d.box.x1 / s)), 0, w - 1);
      const int64_t x1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(d.box.x2 / s)), 0, w - 1);
      const int64_t y0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(d.box.y1 / s)), 0, h - 1);
      const int64_t y1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(d.box.y2 / s)), 0, h - 1);
      auto assign = [&](int64_t y, int64_t x, float q) {
        if (q > c[i][lab][y][x]) c[i][lab][y][x] = q;
        if (q > bw[i][y][x]) {
          bw[i][y][x] = q;
          b[i][0][y][x] = d.box.x1;
          b[i][1][y][x] = d.box.y1;
          b[i][2][y][x] = d.box.x2;
          b[i][3][y][x] = d.box.y2;
        }
      };
      if (!options.from_teacher) {
        // CenterNet-style Gaussian around the box centre; sigma ~ box size / 6 in cells.
        const float sx = std::max(0.8f, bwid / s / 6.f), sy = std::max(0.8f, bhgt / s / 6.f);
        for (int64_t y = y0; y <= y1; ++y) {
          for (int64_t x = x0; x <= x1; ++x) {
            const float dx = (static_cast<float>(x) - gx) / sx, dy = (static_cast<float>(y) - gy) / sy;
            const float q = std::exp(-0.5f * (dx * dx + dy * dy));
            if (q > 0.05f) assign(y, x, q);
          }
        }
      } else {
        // LAD: rank locations inside the box by the teacher's own quality s_T^0.5 * IoU_T^2 and
        // take the top-k; targets are the qualities normalised to a maximum of 1.
        std::vector<std::tuple<float, int64_t, int64_t>> cand;
        for (int64_t y = y0; y <= y1; ++y) {
          for (int64_t x = x0; x <= x1; ++x) {
            const float px = static_cast<float>(x) * s, py = static_cast<float>(y) * s;
            Box tbox{px - tbb[i][0][y][x], py - tbb[i][1][y][x], px + tbb[i][2][y][x], py + tbb[i][3][y][x]};
            const float iou = BoxIou(tbox, d.box);
            const float q = std::sqrt(std::max(thh[i][lab][y][x], 0.f)) * iou * iou;
            cand.emplace_back(q, y, x);
          }
        }
        std::sort(cand.begin(), cand.end(),
                  [](const auto& a, const auto& bb) { return std::get<0>(a) > std::get<0>(bb); });
        const size_t take = std::min(cand.size(), static_cast<size_t>(options.lad_topk));
        const float qmax = take ? std::max(std::get<0>(cand[0]), 1e-6f) : 1.f;
        for (size_t t = 0; t < take; ++t) {
          assign(std::get<1>(cand[t]), std::get<2>(cand[t]), std::max(std::get<0>(cand[t]) / qmax, 0.05f));
        }
      }
    }
  }
  // Ignore teacher-uncertain regions: teacher probability in [ignore, pseudo) away from objects.
  auto uncertain = (th >= options.ignore_threshold) & (th < options.pseudo_threshold) & (cls < 0.05);
  DetTargets t;
  t.cls = cls.to(teacher_heat.device());
  t.cls_weight = (~uncertain).to(torch::kFloat).to(teacher_heat.device());
  t.box = box.to(teacher_heat.device());
  t.box_weight = box_weight.to(teacher_heat.device());
  t.num_objects = objects;
  return t;
}

DualTargets AssignTaskAligned(const std::vector<std::vector<Detection>>& pseudo, const torch::Tensor& cross_prob,
                              const torch::Tensor& cross_boxes, const torch::Tensor& teacher_heat, int stride,
                              const TaskAlignedOptions& options) {
  const int64_t n = cross_prob.size(0), k = cross_prob.size(1), h = cross_prob.size(2), w = cross_prob.size(3);
  KD_CHECK(static_cast<int64_t>(pseudo.size()) == n);
  KD_CHECK(options.topk >= 1);
  auto prob = cross_prob.detach().to(torch::kCPU, torch::kFloat).contiguous();
  auto boxes = cross_boxes.detach().to(torch::kCPU, torch::kFloat).contiguous();
  auto p = prob.accessor<float, 4>();
  auto bx = boxes.accessor<float, 4>();
  auto o2o_cls = torch::zeros({n, k, h, w});
  auto o2o_box = torch::zeros({n, 4, h, w});
  auto o2o_bw = torch::zeros({n, h, w});
  auto o2m_cls = torch::zeros({n, k, h, w});
  auto o2m_box = torch::zeros({n, 4, h, w});
  auto o2m_bw = torch::zeros({n, h, w});
  auto o2m_t = torch::zeros({n, h, w});  // the metric of the object holding each location
  auto c1 = o2o_cls.accessor<float, 4>();
  auto b1 = o2o_box.accessor<float, 4>();
  auto w1 = o2o_bw.accessor<float, 3>();
  auto cm = o2m_cls.accessor<float, 4>();
  auto bm = o2m_box.accessor<float, 4>();
  auto wm = o2m_bw.accessor<float, 3>();
  auto tm = o2m_t.accessor<float, 3>();
  const float s = static_cast<float>(stride);
  int objects = 0;
  struct Cand {
    float t, iou;
    size_t obj;
    int64_t y, x;
  };
  auto set_box = [](auto& b, int64_t i, int64_t y, int64_t x, const Box& box) {
    b[i][0][y][x] = box.x1;
    b[i][1][y][x] = box.y1;
    b[i][2][y][x] = box.x2;
    b[i][3][y][x] = box.y2;
  };
  for (int64_t i = 0; i < n; ++i) {
    const auto& objs = pseudo[static_cast<size_t>(i)];
    std::vector<Cand> cand;
    std::vector<std::vector<Cand>> per_obj(objs.size());
    for (size_t o = 0; o < objs.size(); ++o) {
      const Detection& d = objs[o];
      if (d.score < options.pseudo_threshold) continue;
      ++objects;
      const float gx = (d.box.x1 + d.box.x2) * 0.5f / s, gy = (d.box.y1 + d.box.y2) * 0.5f / s;
      const int64_t x0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(gx - 2.5f)), 0, w - 1);
      const int64_t x1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(gx + 2.5f)), 0, w - 1);
      const int64_t y0 = std::clamp<int64_t>(static_cast<int64_t>(std::floor(gy - 2.5f)), 0, h - 1);
      const int64_t y1 = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(gy + 2.5f)), 0, h - 1);
      for (int64_t y = y0; y <= y1; ++y) {
        for (int64_t x = x0; x <= x1; ++x) {
          const float px = static_cast<float>(x) * s, py = static_cast<float>(y) * s;
          if (px < d.box.x1 || px > d.box.x2 || py < d.box.y1 || py > d.box.y2) continue;
          Box pb{bx[i][0][y][x], bx[i][1][y][x], bx[i][2][y][x], bx[i][3][y][x]};
          const double iou = BoxIou(pb, d.box);
          const double t = std::pow(std::max(p[i][d.label][y][x], 1e-9f), options.alpha) *
                           std::pow(std::max(iou, 1e-9), options.beta);
          const Cand c{static_cast<float>(t), static_cast<float>(iou), o, y, x};
          cand.push_back(c);
          per_obj[o].push_back(c);
        }
      }
    }
    // One-to-one: greedy in descending t, each object once, each location once.
    std::stable_sort(cand.begin(), cand.end(), [](const Cand& a, const Cand& bb) { return a.t > bb.t; });
    std::vector<char> obj_done(objs.size(), 0);
    for (const Cand& cd : cand) {
      if (obj_done[cd.obj] || w1[i][cd.y][cd.x] > 0) continue;
      obj_done[cd.obj] = 1;
      const Detection& d = objs[cd.obj];
      c1[i][d.label][cd.y][cd.x] = options.iou_targets ? cd.iou : 1.f;
      w1[i][cd.y][cd.x] = 1.f;
      set_box(b1, i, cd.y, cd.x, d.box);
    }
    if (!options.consistent) continue;
    // One-to-many: each object's top-k of the same ranking; a shared location goes to the larger t.
    for (size_t o = 0; o < objs.size(); ++o) {
      auto& pc = per_obj[o];
      if (pc.empty()) continue;
      std::stable_sort(pc.begin(), pc.end(), [](const Cand& a, const Cand& bb) { return a.t > bb.t; });
      pc.resize(std::min(pc.size(), static_cast<size_t>(options.topk)));
      float max_iou = 0.f;
      for (const Cand& cd : pc) max_iou = std::max(max_iou, cd.iou);
      const float max_t = std::max(pc.front().t, 1e-12f);
      const Detection& d = objs[o];
      for (const Cand& cd : pc) {
        if (wm[i][cd.y][cd.x] > 0 && tm[i][cd.y][cd.x] >= cd.t) continue;  // held by a better-aligned object
        const float target = options.iou_targets ? cd.t / max_t * max_iou : 1.f;
        for (int64_t kk = 0; kk < k; ++kk) cm[i][kk][cd.y][cd.x] = 0.f;  // a location has one class
        cm[i][d.label][cd.y][cd.x] = target;
        wm[i][cd.y][cd.x] = std::max(target, 0.05f);
        tm[i][cd.y][cd.x] = cd.t;
        set_box(bm, i, cd.y, cd.x, d.box);
      }
    }
  }
  const auto device = cross_prob.device();
  DualTargets out;
  out.one_to_one.cls = o2o_cls.to(device);
  out.one_to_one.box = o2o_box.to(device);
  out.one_to_one.box_weight = o2o_bw.to(device);
  out.one_to_one.num_objects = objects;
  if (options.consistent) {
    auto th = teacher_heat.detach().to(torch::kCPU, torch::kFloat);
    // Positive locations are never ignored, in any class channel.
    auto positive = (o2m_bw > 0).unsqueeze(1);
    auto uncertain = (th >= options.ignore_threshold) & (th < options.pseudo_threshold) & ~positive;
    out.one_to_many.cls = o2m_cls.to(device);
    out.one_to_many.cls_weight = (~uncertain).to(torch::kFloat).to(device);
    out.one_to_many.box = o2m_box.to(device);
    out.one_to_many.box_weight = o2m_bw.to(device);
    out.one_to_many.num_objects = objects;
  }
  return out;
}

}  // namespace kd::learner
