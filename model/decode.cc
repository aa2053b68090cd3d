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
    // 3x3 local maximum as the max of nine shifted views: measured ~15x faster than this
    // LibTorch's max_pool2d on a [6,72,96] map (0.8 ms), which dominated the edge's decode.
    auto padded = torch::constant_pad_nd(heat, {1, 1, 1, 1}, -1.0);
    auto pooled = heat.clone();
    for (int64_t dy = 0; dy < 3; ++dy) {
      for (int64_t dx = 0; dx < 3; ++dx) {
        pooled = torch::max(pooled, padded.slice(1, dy, dy + h).slice(2, dx, dx + w));
      }
    }
    heat = heat * (pooled == heat).to(torch::kFloat);
  }
  // Candidates: elements above the threshold (usually a few hundred of the K*h*w), best first;
  // cheaper than a top-k over the whole map. Keep more than we return: NMS may remove some.
  auto flat = heat.flatten();
  auto above = (flat >= options.score_threshold).nonzero().squeeze(1);
  auto cand_scores = flat.index_select(0, above);
  const int64_t candidates = std::min<int64_t>(cand_scores.numel(), std::max(options.max_detections * 4, 100));
  auto [scores, order] = cand_scores.topk(candidates);
  auto idx = above.index_select(0, order);
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
