#include "eval/coco_eval.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <unordered_map>
#include <utility>

namespace kd::eval {
namespace {

constexpr int kNumIou = static_cast<int>(kCocoIouThresholds.size());
constexpr int kNumRecall = kCocoNumRecallThresholds;
// Area range "all" of COCOeval: [0 ** 2, 1e5 ** 2].
constexpr double kAreaMin = 0.0;
constexpr double kAreaMax = 1e10;
// np.spacing(1): keeps precision finite when there are no detections yet.
constexpr double kSpacing1 = 2.220446049250313e-16;
// COCOeval caps the IoU a match must reach at 1 - 1e-10 (so that IoU 1 matches at threshold 1).
constexpr double kMaxMatchIou = 1 - 1e-10;

// A box as COCO stores it, in double: x, y, width, height. x + w == x2 exactly (float differences are exact
// in double), so the IoU below equals pycocotools' on the same boxes.
struct XywhBox {
  double x = 0, y = 0, w = 0, h = 0;
};

XywhBox ToXywh(const Box& b) {
  XywhBox r;
  r.x = b.x1;
  r.y = b.y1;
  r.w = std::max(0.0, static_cast<double>(b.x2) - r.x);
  r.h = std::max(0.0, static_cast<double>(b.y2) - r.y);
  return r;
}

// pycocotools common/maskApi.c bbIou, line for line. For a crowd GT the union is the detection's area.
double CocoBoxIou(const XywhBox& d, const XywhBox& g, bool crowd) {
  const double w = std::fmin(d.w + d.x, g.w + g.x) - std::fmax(d.x, g.x);
  if (w <= 0) return 0;
  const double h = std::fmin(d.h + d.y, g.h + g.y) - std::fmax(d.y, g.y);
  if (h <= 0) return 0;
  const double i = w * h;
  const double da = d.w * d.h;
  const double ga = g.w * g.h;
  const double u = crowd ? da : da + ga - i;
  return i / u;
}

bool OutsideAreaRange(const XywhBox& b) {
  const double area = b.w * b.h;
  return area < kAreaMin || area > kAreaMax;
}

bool IsFinite(const Box& b) {
  return std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) && std::isfinite(b.y2);
}

// COCOeval.evaluateImg for one image and class: the kept detections (score order, at most kCocoMaxDets) and,
// per IoU threshold, whether each was matched and whether it is ignored.
struct ImageEval {
  std::vector<float> scores;
  std::vector<uint8_t> matched;  // [t * D + d]
  std::vector<uint8_t> ignored;  // [t * D + d]
  int num_counted_gt = 0;        // GT that are not ignored (not crowd, inside the area range)
};

ImageEval EvaluateImage(const std::vector<const GroundTruthBox*>& gt_in, std::vector<const Detection*> dts) {
  // GT: ignored ones last (stable), as COCOeval sorts them.
  std::vector<const GroundTruthBox*> gts = gt_in;
  std::vector<XywhBox> gt_boxes;
  std::vector<uint8_t> gt_ignore;
  std::stable_sort(gts.begin(), gts.end(), [](const GroundTruthBox* a, const GroundTruthBox* b) {
    const bool ia = a->iscrowd || OutsideAreaRange(ToXywh(a->box));
    const bool ib = b->iscrowd || OutsideAreaRange(ToXywh(b->box));
    return ia < ib;
  });
  ImageEval e;
  for (const GroundTruthBox* g : gts) {
    gt_boxes.push_back(ToXywh(g->box));
    const bool ignore = g->iscrowd || OutsideAreaRange(gt_boxes.back());
    gt_ignore.push_back(ignore ? 1 : 0);
    if (!ignore) ++e.num_counted_gt;
  }
  // Detections: highest score first (stable), then the cap.
  std::stable_sort(dts.begin(), dts.end(), [](const Detection* a, const Detection* b) { return a->score > b->score; });
  if (dts.size() > static_cast<size_t>(kCocoMaxDets)) dts.resize(static_cast<size_t>(kCocoMaxDets));

  const size_t num_g = gts.size();
  const size_t num_d = dts.size();
  std::vector<XywhBox> dt_boxes;
  dt_boxes.reserve(num_d);
  for (const Detection* d : dts) {
    dt_boxes.push_back(ToXywh(d->box));
    e.scores.push_back(d->score);
  }
  std::vector<double> ious(num_d * num_g);
  for (size_t d = 0; d < num_d; ++d) {
    for (size_t g = 0; g < num_g; ++g) ious[d * num_g + g] = CocoBoxIou(dt_boxes[d], gt_boxes[g], gts[g]->iscrowd);
  }

  e.matched.assign(kNumIou * num_d, 0);
  e.ignored.assign(kNumIou * num_d, 0);
  std::vector<uint8_t> gt_matched(num_g);
  for (int t = 0; t < kNumIou; ++t) {
    std::fill(gt_matched.begin(), gt_matched.end(), 0);
    for (size_t d = 0; d < num_d; ++d) {
      double best = std::min(kCocoIouThresholds[static_cast<size_t>(t)], kMaxMatchIou);
      int m = -1;
      for (size_t g = 0; g < num_g; ++g) {
        // A GT already taken is skipped, unless it is a crowd region.
        if (gt_matched[g] && !gts[g]->iscrowd) continue;
        // Matched to a regular GT and only ignored ones are left: stop.
        if (m > -1 && !gt_ignore[static_cast<size_t>(m)] && gt_ignore[g]) break;
        // ">=": on equal IoU the later GT wins, as in COCOeval.
        const double iou = ious[d * num_g + g];
        if (iou < best) continue;
        best = iou;
        m = static_cast<int>(g);
      }
      if (m == -1) continue;
      e.ignored[static_cast<size_t>(t) * num_d + d] = gt_ignore[static_cast<size_t>(m)];
      e.matched[static_cast<size_t>(t) * num_d + d] = 1;
      gt_matched[static_cast<size_t>(m)] = 1;
    }
  }
  // Unmatched detections outside the area range are ignored.
  for (size_t d = 0; d < num_d; ++d) {
    if (!OutsideAreaRange(dt_boxes[d])) continue;
    for (int t = 0; t < kNumIou; ++t) {
      const size_t i = static_cast<size_t>(t) * num_d + d;
      if (!e.matched[i]) e.ignored[i] = 1;
    }
  }
  return e;
}

// COCOeval.accumulate for one class: precision[t][r] (101-point interpolated) and recall[t].
struct ClassCurves {
  std::array<std::array<double, kNumRecall>, kNumIou> precision{};
  std::array<double, kNumIou> recall{};
};

ClassCurves AccumulateClass(const std::vector<ImageEval>& evals, int num_counted_gt) {
  // All kept detections of the class, in image order, then sorted by score (stable, like mergesort).
  struct Entry {
    float score;
    size_t image;
    size_t det;
  };
  std::vector<Entry> entries;
  for (size_t i = 0; i < evals.size(); ++i) {
    for (size_t d = 0; d < evals[i].scores.size(); ++d) entries.push_back({evals[i].scores[d], i, d});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.score > b.score; });

  std::array<double, kNumRecall> recall_thresholds{};
  for (int r = 0; r < kNumRecall; ++r) recall_thresholds[static_cast<size_t>(r)] = static_cast<double>(r) * 0.01;
  recall_thresholds[kNumRecall - 1] = 1.0;

  ClassCurves c;
  const size_t nd = entries.size();
  const double npig = num_counted_gt;
  std::vector<double> rc(nd);
  std::vector<double> pr(nd);
  for (int t = 0; t < kNumIou; ++t) {
    double tp = 0;
    double fp = 0;
    for (size_t n = 0; n < nd; ++n) {
      const ImageEval& e = evals[entries[n].image];
      const size_t i = static_cast<size_t>(t) * e.scores.size() + entries[n].det;
      if (!e.ignored[i]) {
        if (e.matched[i]) {
          tp += 1;
        } else {
          fp += 1;
        }
      }
      rc[n] = tp / npig;
      pr[n] = tp / (fp + tp + kSpacing1);
    }
    c.recall[static_cast<size_t>(t)] = nd > 0 ? rc[nd - 1] : 0.0;
    // Precision made monotone decreasing from the right.
    for (size_t n = nd; n-- > 1;) {
      if (pr[n] > pr[n - 1]) pr[n - 1] = pr[n];
    }
    // numpy.searchsorted(rc, recall_thresholds, side='left'); past the end -> 0.
    for (int r = 0; r < kNumRecall; ++r) {
      const auto it = std::lower_bound(rc.begin(), rc.end(), recall_thresholds[static_cast<size_t>(r)]);
      const size_t pi = static_cast<size_t>(it - rc.begin());
      c.precision[static_cast<size_t>(t)][static_cast<size_t>(r)] = pi < nd ? pr[pi] : 0.0;
    }
  }
  return c;
}

double Sum(const std::array<double, kNumRecall>& v) { return std::accumulate(v.begin(), v.end(), 0.0); }

}  // namespace

std::vector<GroundTruthFrame> ToGroundTruthFrames(const std::vector<FrameDetections>& frames) {
  std::vector<GroundTruthFrame> out;
  out.reserve(frames.size());
  for (const FrameDetections& f : frames) {
    GroundTruthFrame g;
    g.frame_index = f.frame_index;
    g.boxes.reserve(f.detections.size());
    for (const Detection& d : f.detections) g.boxes.push_back({d.box, d.label, false});
    out.push_back(std::move(g));
  }
  return out;
}

Result<CocoMetrics> EvaluateCoco(const std::vector<FrameDetections>& ground_truth,
                                 const std::vector<FrameDetections>& detections, const std::vector<int>& labels) {
  return EvaluateCocoWithCrowd(ToGroundTruthFrames(ground_truth), detections, labels);
}

Result<CocoMetrics> EvaluateCocoWithCrowd(const std::vector<GroundTruthFrame>& ground_truth,
                                          const std::vector<FrameDetections>& detections,
                                          const std::vector<int>& labels) {
  if (labels.empty()) return Status::InvalidArgument("EvaluateCoco: no labels to evaluate");
  std::vector<int> cats = labels;
  std::sort(cats.begin(), cats.end());
  cats.erase(std::unique(cats.begin(), cats.end()), cats.end());
  std::vector<int> slot_of_label(kCocoNumClasses, -1);
  for (size_t k = 0; k < cats.size(); ++k) {
    if (cats[k] < 0 || cats[k] >= kCocoNumClasses) {
      return Status::InvalidArgument("EvaluateCoco: label " + std::to_string(cats[k]) + " is not in [0, " +
                                     std::to_string(kCocoNumClasses) + ")");
    }
    slot_of_label[static_cast<size_t>(cats[k])] = static_cast<int>(k);
  }
  auto slot = [&](int label) {
    return label >= 0 && label < kCocoNumClasses ? slot_of_label[static_cast<size_t>(label)] : -1;
  };

  // Images in ascending frame_index (COCOeval sorts image ids); the order matters for score ties across images.
  std::vector<size_t> order(ground_truth.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return ground_truth[a].frame_index < ground_truth[b].frame_index; });
  std::unordered_map<int64_t, size_t> image_of_frame;
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t frame = ground_truth[order[i]].frame_index;
    if (!image_of_frame.emplace(frame, i).second) {
      return Status::InvalidArgument("EvaluateCoco: frame " + std::to_string(frame) +
                                     " appears twice in the ground truth");
    }
  }

  const size_t num_k = cats.size();
  const size_t num_i = order.size();
  std::vector<std::vector<const GroundTruthBox*>> gts(num_k * num_i);
  std::vector<std::vector<const Detection*>> dts(num_k * num_i);
  CocoMetrics metrics;
  for (int label : cats) metrics.per_class[label] = ClassMetrics{};

  for (size_t i = 0; i < num_i; ++i) {
    const GroundTruthFrame& f = ground_truth[order[i]];
    for (const GroundTruthBox& g : f.boxes) {
      const int k = slot(g.label);
      if (k < 0) continue;
      if (!IsFinite(g.box)) {
        return Status::InvalidArgument("EvaluateCoco: non-finite ground-truth box in frame " +
                                       std::to_string(f.frame_index));
      }
      gts[static_cast<size_t>(k) * num_i + i].push_back(&g);
    }
  }
  for (const FrameDetections& f : detections) {
    if (f.detections.empty()) continue;
    const auto it = image_of_frame.find(f.frame_index);
    if (it == image_of_frame.end()) {
      return Status::InvalidArgument("EvaluateCoco: detections for frame " + std::to_string(f.frame_index) +
                                     ", which is not in the ground truth");
    }
    for (const Detection& d : f.detections) {
      const int k = slot(d.label);
      if (k < 0) continue;
      if (!IsFinite(d.box) || !std::isfinite(d.score)) {
        return Status::InvalidArgument("EvaluateCoco: non-finite detection box or score in frame " +
                                       std::to_string(f.frame_index));
      }
      dts[static_cast<size_t>(k) * num_i + it->second].push_back(&d);
      ++metrics.per_class[d.label].num_dets;
      ++metrics.num_dets;
    }
  }

  double sum_ap = 0, sum_ap50 = 0, sum_ap75 = 0, sum_ar = 0;
  int num_valid = 0;
  for (size_t k = 0; k < num_k; ++k) {
    ClassMetrics& cm = metrics.per_class[cats[k]];
    std::vector<ImageEval> evals;
    int num_counted_gt = 0;
    for (size_t i = 0; i < num_i; ++i) {
      const size_t ki = k * num_i + i;
      if (gts[ki].empty() && dts[ki].empty()) continue;
      evals.push_back(EvaluateImage(gts[ki], dts[ki]));
      num_counted_gt += evals.back().num_counted_gt;
    }
    cm.num_gt = num_counted_gt;
    metrics.num_gt += num_counted_gt;
    if (num_counted_gt == 0) continue;  // -1: left out of the means

    const ClassCurves c = AccumulateClass(evals, num_counted_gt);
    double all = 0;
    for (const auto& p : c.precision) all += Sum(p);
    const double ap50 = Sum(c.precision[0]);
    const double ap75 = Sum(c.precision[5]);
    const double ar = std::accumulate(c.recall.begin(), c.recall.end(), 0.0);
    cm.ap = all / (kNumIou * kNumRecall);
    cm.ap50 = ap50 / kNumRecall;
    cm.ap75 = ap75 / kNumRecall;
    cm.ar100 = ar / kNumIou;
    sum_ap += all;
    sum_ap50 += ap50;
    sum_ap75 += ap75;
    sum_ar += ar;
    ++num_valid;
  }
  if (num_valid > 0) {
    metrics.ap = sum_ap / (static_cast<double>(num_valid) * kNumIou * kNumRecall);
    metrics.ap50 = sum_ap50 / (static_cast<double>(num_valid) * kNumRecall);
    metrics.ap75 = sum_ap75 / (static_cast<double>(num_valid) * kNumRecall);
    metrics.ar100 = sum_ar / (static_cast<double>(num_valid) * kNumIou);
  }
  return metrics;
}

std::string FormatMetricsTable(const CocoMetrics& metrics) {
  auto num = [](double v) {
    char buf[16];
    if (v < 0) {
      std::snprintf(buf, sizeof(buf), "%7s", "-");
    } else {
      std::snprintf(buf, sizeof(buf), "%7.3f", v);
    }
    return std::string(buf);
  };
  auto row = [&](const std::string& label, std::string_view name, int num_gt, int num_dets, double ap, double ap50,
                 double ap75, double ar100) {
    char buf[96];
    std::snprintf(buf, sizeof(buf), "%5s  %-16.*s %6d %7d", label.c_str(), static_cast<int>(name.size()), name.data(),
                  num_gt, num_dets);
    return std::string(buf) + num(ap) + num(ap50) + num(ap75) + num(ar100) + "\n";
  };
  std::string out;
  char header[96];
  std::snprintf(header, sizeof(header), "%5s  %-16s %6s %7s%7s%7s%7s%7s\n", "label", "class", "gt", "dets", "AP",
                "AP50", "AP75", "AR100");
  out += header;
  for (const auto& [label, c] : metrics.per_class) {
    const std::string_view name = label >= 0 && label < kCocoNumClasses ? CocoClassName(label) : std::string_view("?");
    out += row(std::to_string(label), name, c.num_gt, c.num_dets, c.ap, c.ap50, c.ap75, c.ar100);
  }
  out += row("", "all", metrics.num_gt, metrics.num_dets, metrics.ap, metrics.ap50, metrics.ap75, metrics.ar100);
  return out;
}

}  // namespace kd::eval
