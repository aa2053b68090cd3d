#include "model/decode.h"

#include <algorithm>

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
  // Candidates: elements at or above the threshold (usually a few hundred of the K*h*w). The 3x3
  // peak test (CenterNet's max-pool equality: no neighbour is larger) runs on those only, which
  // is ~10x cheaper than pooling the whole map on a CPU.
  auto flat = heat.flatten();
  auto above = (flat >= options.score_threshold).nonzero().squeeze(1).contiguous();
  auto hm = heat.accessor<float, 3>();
  auto ab = above.accessor<int64_t, 1>();
  std::vector<std::pair<float, int64_t>> cand;
  cand.reserve(static_cast<size_t>(above.size(0)));
  for (int64_t i = 0; i < above.size(0); ++i) {
    const int64_t c = ab[i] / (h * w), cell = ab[i] % (h * w), y = cell / w, x = cell % w;
    const float v = hm[c][y][x];
    bool peak = true;
    if (options.peak_extraction) {
      for (int64_t yy = std::max<int64_t>(y - 1, 0); peak && yy <= std::min(y + 1, h - 1); ++yy) {
        for (int64_t xx = std::max<int64_t>(x - 1, 0); xx <= std::min(x + 1, w - 1); ++xx) {
          if (hm[c][yy][xx] > v) {
            peak = false;
            break;
          }
        }
      }
    }
    if (peak) cand.emplace_back(v, ab[i]);
  }
  // Best first; keep more than we return: NMS may remove some.
  const size_t keep = std::min(cand.size(), static_cast<size_t>(std::max(options.max_detections * 4, 100)));
  std::partial_sort(cand.begin(), cand.begin() + static_cast<std::ptrdiff_t>(keep), cand.end(),
                    [](const auto& a, const auto& b2) { return a.first > b2.first; });
  cand.resize(keep);
  auto b = box.accessor<float, 3>();
  std::vector<Detection> dets;
  dets.reserve(cand.size());
  for (const auto& [score, index] : cand) {
    const int64_t c = index / (h * w), cell = index % (h * w), y = cell / w, x = cell % w;
    KD_CHECK(c < k);
    const float cx = static_cast<float>(x * stride), cy = static_cast<float>(y * stride);
    Detection d;
    d.box = {(cx - b[0][y][x]) * scale_x, (cy - b[1][y][x]) * scale_y, (cx + b[2][y][x]) * scale_x,
             (cy + b[3][y][x]) * scale_y};
    d.score = score;
    d.label = labels[static_cast<size_t>(c)];
    dets.push_back(d);
  }
  if (options.nms_iou > 0) dets = NonMaxSuppression(std::move(dets), options.nms_iou);
  if (static_cast<int>(dets.size()) > options.max_detections) dets.resize(static_cast<size_t>(options.max_detections));
  return dets;
}

}  // namespace kd::model
