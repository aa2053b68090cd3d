// Label refinement: better pseudo-labels from the same teacher, before a student learns from them.
// The teacher's boxes are loose: each edge is off by noise of about 5 % of the box height, with no
// systematic bias, so averaging independent looks at one object tightens them
// (docs/METHODS.md, "Refined pseudo-labels"). Two looks are used:
//   1. across input scales: the teacher's detections of one frame at several input sizes, fused
//      by weighted box fusion (WBF: a cluster's box is the score-weighted mean of its members;
//      NMS would keep one noisy member instead);
//   2. across time: detections linked into tracks by IoU between consecutive frames of one camera,
//      each box replaced by the mean of its track over a symmetric window of neighbours, each score
//      by the track's mean score over the window (so short or weak tracks fade and are dropped).
// Only the detection targets are refined; the teacher's raw dense maps stay the KD soft targets.
// Pure functions on plain values; thread-safe.
#ifndef KD_LEARNER_REFINE_H_
#define KD_LEARNER_REFINE_H_

#include <vector>

#include "base/detection.h"
#include "config/distill_options.h"
#include "learner/dataset.h"

namespace kd::learner {

// Weighted box fusion of several detection passes over one frame (each pass already NMS'd), per
// label. Detections are taken in descending score; one joins the first cluster of its label whose
// fused box overlaps it at IoU > `iou`, else starts a cluster. A cluster's box is the
// score-weighted mean of its members; its score the mean member score times
// min(members, passes) / passes (an object seen at one scale of four keeps a quarter).
// Returns the clusters by descending score. With one pass it returns that pass unchanged.
std::vector<Detection> FuseBoxes(const std::vector<std::vector<Detection>>& passes, float iou);

// Temporal smoothing of one camera's detections in place. `frames` may hold several runs of
// consecutive frame indices in any order; smoothing never crosses a gap (a missing index), so
// isolated frames come back unchanged. Within a run, detections with score >= track_min_score are
// linked greedily (descending IoU, at least track_iou, same label) to the previous frame's, forming
// tracks. For a detection at frame f on track T, with R = smooth_radius and W = the frames
// [f-R, f+R] of its run:
//   box   = the mean of T's boxes over [f-j, f+j], j the largest <= R with T on every frame of it;
//   score = the sum of T's scores over W / |W| (a frame of W without T adds 0);
// a track with fewer than min(min_track_length, run length) frames is dropped. Detections below
// track_min_score are kept unchanged.
void SmoothAlongTracks(std::vector<FrameDetections>* frames, const config::LabelRefineOptions& options);

// SmoothAlongTracks over a dataset's teacher_dets, then its pseudo-labels rewritten from them.
// timeline[row] places each row in time (rows with consecutive values are neighbouring frames of
// one camera); nullptr = data->frame_indices (one camera's video).
void SmoothDatasetLabels(DistillDataset* data, const config::LabelRefineOptions& options,
                         const std::vector<int64_t>* timeline = nullptr);

}  // namespace kd::learner

#endif  // KD_LEARNER_REFINE_H_
