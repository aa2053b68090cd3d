#include "model/decode.h"

#include <torch/torch.h>

#include "base/check.h"

namespace kd::model {

torch::Tensor DistancesToBoxes(const torch::Tensor& distances, int stride) {
  const int64_t h = distances.size(2), w = distances.size(3);
  auto opts = distances.options().requires_grad(false);
  auto ys = (torch::arange(h, opts) * stride).view({1, 1, h, 1}).expand({distances.size(0), 1, h, w});
  auto xs = (torch::arange(w, opts) * stride).view({1, 1, 1, w}).expand({distances.size(0), 1, h, w});
  auto d = distances.split(1, 1);  // l, t, r, b
  return torch::cat({xs - d[0], ys - d[1], xs + d[2], ys + d[3]}, 1);
}

std::vector<Detection> DecodeDense(const torch::Tensor& heat_in, const torch::Tensor& box_in,
                                   const std::vector<int>& labels, int stride, float scale_x, float scale_y,
                                   const DecodeOptions& options) {
  torch::NoGradGuard no_grad;
  KD_CHECK(heat_in.dim() == 3 && box_in.dim() == 3 && box_in.size(0) == 4);
  KD_CHECK(static_cast<int64_t>(labels.size()) == heat_in.size(0));
  auto heat = heat_in.to(torch::kCPU, torch::kFloat).contiguous();
  auto box = box_in.to(torch::kCPU, torch::kFloat).contiguous();
  const int64_t k = heat.size(0), h = heat.size(1), w = heat.size(2);
  if (options.peak_extraction) {
    auto pooled = torch::max_pool2d(heat.unsqueeze(0), {3, 3}, {1, 1}, {1, 1}).squeeze(0);
    heat = heat * (pooled == heat).to(torch::kFloat);
  }
  auto flat = heat.flatten();
  // Pre-select more candidates than we keep: NMS may remove some.
  const int64_t candidates = std::min<int64_t>(flat.numel(), std::max(options.max_detections * 4, 100));
  auto [scores, idx] = flat.topk(candidates);
  auto s = scores.accessor<float, 1>();
  auto ix = idx.accessor<int64_t, 1>();
  auto b = box.accessor<float, 3>();
  std::vector<Detection> dets;
  for (int64_t i = 0; i < candidates; ++i) {
    if (s[i] < options.score_threshold) break;
    const int64_t c = ix[i] / (h * w), cell = ix[i] % (h * w), y = cell / w, x = cell % w;
    KD_CHECK(c < k);
    const float cx = static_cast<float>(x * stride), cy = static_cast<float>(y * stride);
    Detection d;
    d.box = {(cx - b[0][y][x]) * scale_x, (cy - b[1][y][x]) * scale_y, (cx + b[2][y][x]) * scale_x,
             (cy + b[3][y][x]) * scale_y};
    d.score = s[i];
    d.label = labels[static_cast<size_t>(c)];
    dets.push_back(d);
  }
  if (options.nms_iou > 0) dets = NonMaxSuppression(std::move(dets), options.nms_iou);
  if (static_cast<int>(dets.size()) > options.max_detections) dets.resize(static_cast<size_t>(options.max_detections));
  return dets;
}

}  // namespace kd::model
