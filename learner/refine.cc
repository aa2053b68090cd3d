#include "learner/refine.h"

#include <algorithm>
#include <numeric>

#include "base/check.h"

namespace kd::learner {

namespace {

struct Cluster {
  int label = 0;
  double x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // score-weighted sums of the members' corners
  double weight = 0;                      // sum of member scores
  double score_sum = 0;
  int members = 0;
  Box fused;
  void Join(const Detection& d) {
    const double w = std::max(d.score, 1e-6f);
    x1 += w * d.box.x1, y1 += w * d.box.y1, x2 += w * d.box.x2, y2 += w * d.box.y2;
    weight += w;
    score_sum += d.score;
    ++members;
    fused = {static_cast<float>(x1 / weight), static_cast<float>(y1 / weight), static_cast<float>(x2 / weight),
             static_cast<float>(y2 / weight)};
  }
};

bool ByScore(const Detection& a, const Detection& b) { return a.score > b.score; }

}  // namespace

std::vector<Detection> FuseBoxes(const std::vector<std::vector<Detection>>& passes, float iou) {
  if (passes.size() == 1) {
    std::vector<Detection> out = passes[0];
    std::stable_sort(out.begin(), out.end(), ByScore);
    return out;
  }
  std::vector<Detection> all;
  for (const auto& p : passes) all.insert(all.end(), p.begin(), p.end());
  std::stable_sort(all.begin(), all.end(), ByScore);
  std::vector<Cluster> clusters;
  for (const Detection& d : all) {
    Cluster* best = nullptr;
    float best_iou = iou;
    for (Cluster& c : clusters) {
      if (c.label != d.label) continue;
      const float o = BoxIou(c.fused, d.box);
      if (o > best_iou) best_iou = o, best = &c;
    }
    if (!best) {
      clusters.emplace_back();
      best = &clusters.back();
      best->label = d.label;
    }
    best->Join(d);
  }
  const double n_passes = static_cast<double>(passes.size());
  std::vector<Detection> out;
  out.reserve(clusters.size());
  for (const Cluster& c : clusters) {
    const double seen = std::min(static_cast<double>(c.members), n_passes) / n_passes;
    out.push_back({c.fused, static_cast<float>(c.score_sum / c.members * seen), c.label});
  }
  std::stable_sort(out.begin(), out.end(), ByScore);
  return out;
}

namespace {

// One run of consecutive frames: frames[run[0]], frames[run[1]], ... have indices i, i+1, ...
void SmoothRun(std::vector<FrameDetections>& frames, const std::vector<size_t>& run,
               const config::LabelRefineOptions& o) {
  const int n = static_cast<int>(run.size());
  const auto min_score = static_cast<float>(o.track_min_score);
  // track[t][k]: the track of detection k of the run's t-th frame; -1 = not linkable.
  std::vector<std::vector<int>> track(static_cast<size_t>(n));
  struct Member {
    int t;
    size_t k;
  };
  std::vector<std::vector<Member>> tracks;  // members in frame order, contiguous in t
  for (int t = 0; t < n; ++t) {
    const auto& dets = frames[run[static_cast<size_t>(t)]].detections;
    auto& ids = track[static_cast<size_t>(t)];
    ids.assign(dets.size(), -1);
    if (t > 0) {
      // Greedy by IoU between the previous frame's linkable boxes and this frame's.
      const auto& prev = frames[run[static_cast<size_t>(t - 1)]].detections;
      const auto& prev_ids = track[static_cast<size_t>(t - 1)];
      struct Pair {
        float iou;
        size_t p, k;
      };
      std::vector<Pair> pairs;
      for (size_t p = 0; p < prev.size(); ++p) {
        if (prev_ids[p] < 0) continue;
        for (size_t k = 0; k < dets.size(); ++k) {
          if (dets[k].score < min_score || dets[k].label != prev[p].label) continue;
          const float v = BoxIou(prev[p].box, dets[k].box);
          if (v >= o.track_iou) pairs.push_back({v, p, k});
        }
      }
      std::stable_sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.iou > b.iou; });
      std::vector<bool> prev_used(prev.size(), false);
      for (const Pair& pr : pairs) {
        if (prev_used[pr.p] || ids[pr.k] >= 0) continue;
        prev_used[pr.p] = true;
        ids[pr.k] = prev_ids[pr.p];
        tracks[static_cast<size_t>(ids[pr.k])].push_back({t, pr.k});
      }
    }
    for (size_t k = 0; k < dets.size(); ++k) {
      if (ids[k] >= 0 || dets[k].score < min_score) continue;
      ids[k] = static_cast<int>(tracks.size());
      tracks.push_back({{t, k}});
    }
  }
  // New values from the old ones (every read below is of the unsmoothed detections).
  std::vector<std::vector<Detection>> out(static_cast<size_t>(n));
  const int min_len = std::min(o.min_track_length, n);
  const int r = o.smooth_radius;
  for (const auto& members : tracks) {
    const int len = static_cast<int>(members.size());
    if (len < min_len) continue;
    const int start = members.front().t;
    auto det_at = [&](int t) -> const Detection& {
      const Member& m = members[static_cast<size_t>(t - start)];
      return frames[run[static_cast<size_t>(m.t)]].detections[m.k];
    };
    for (int t = start; t < start + len; ++t) {
      const int j = std::min({r, t - start, start + len - 1 - t});
      double x1 = 0, y1 = 0, x2 = 0, y2 = 0;
      for (int u = t - j; u <= t + j; ++u) {
        const Box& b = det_at(u).box;
        x1 += b.x1, y1 += b.y1, x2 += b.x2, y2 += b.y2;
      }
      const double cnt = 2.0 * j + 1;
      const int w_lo = std::max(0, t - r), w_hi = std::min(n - 1, t + r);
      double score = 0;
      for (int u = std::max(w_lo, start); u <= std::min(w_hi, start + len - 1); ++u) score += det_at(u).score;
      score /= static_cast<double>(w_hi - w_lo + 1);
      Detection d = det_at(t);
      d.box = {static_cast<float>(x1 / cnt), static_cast<float>(y1 / cnt), static_cast<float>(x2 / cnt),
               static_cast<float>(y2 / cnt)};
      d.score = static_cast<float>(score);
      out[static_cast<size_t>(t)].push_back(d);
    }
  }
  for (int t = 0; t < n; ++t) {
    auto& dets = frames[run[static_cast<size_t>(t)]].detections;
    auto& o_t = out[static_cast<size_t>(t)];
    for (const Detection& d : dets) {
      if (d.score < min_score) o_t.push_back(d);  // never linked: as it was
    }
    std::stable_sort(o_t.begin(), o_t.end(), ByScore);
    dets = std::move(o_t);
  }
}

}  // namespace

void SmoothAlongTracks(std::vector<FrameDetections>* frames, const config::LabelRefineOptions& options) {
  KD_CHECK(frames != nullptr);
  std::vector<size_t> order(frames->size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return (*frames)[a].frame_index < (*frames)[b].frame_index; });
  std::vector<size_t> run;
  for (size_t i = 0; i <= order.size(); ++i) {
    const bool next =
        i < order.size() && !run.empty() && (*frames)[order[i]].frame_index == (*frames)[run.back()].frame_index + 1;
    if (!run.empty() && !next) {
      SmoothRun(*frames, run, options);
      run.clear();
    }
    if (i < order.size()) run.push_back(order[i]);
  }
}

void SmoothDatasetLabels(DistillDataset* data, const config::LabelRefineOptions& options,
                         const std::vector<int64_t>* timeline) {
  KD_CHECK(data != nullptr);
  const std::vector<int64_t>& when = timeline ? *timeline : data->frame_indices;
  KD_CHECK(when.size() == data->size() && data->teacher_dets.size() == data->size());
  std::vector<FrameDetections> frames(data->size());
  for (size_t i = 0; i < frames.size(); ++i) frames[i] = {when[i], std::move(data->teacher_dets[i].detections)};
  SmoothAlongTracks(&frames, options);
  for (size_t i = 0; i < frames.size(); ++i) {
    data->teacher_dets[i].detections = std::move(frames[i].detections);
    PseudoFromTeacherDets(data, i);
  }
}

}  // namespace kd::learner
