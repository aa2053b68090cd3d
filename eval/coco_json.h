// COCO JSON files, readable by pycocotools: detections in the results format and ground truth in the instances
// format, with image_id = frame_index and category_id = the official COCO id of the contiguous label.
// Free functions that own nothing beyond the call; safe to call concurrently on different paths. Writes are
// atomic (path + ".tmp", then rename); failures come back as Status, never as exceptions.
#ifndef KD_EVAL_COCO_JSON_H_
#define KD_EVAL_COCO_JSON_H_

#include <string>
#include <vector>

#include "base/detection.h"
#include "base/status.h"
#include "eval/coco_eval.h"

namespace kd::eval {

// Writes [{image_id, category_id, bbox: [x, y, w, h], score}, ...] for every detection, frames in the given order.
// InvalidArgument: a label outside the COCO-80 set or a non-finite box or score. IOError: the file system refused.
Status WriteCocoResults(const std::string& path, const std::vector<FrameDetections>& frames);

// Writes {images, annotations, categories}: one image per frame (also frames without boxes), named
// "frame_<index>.jpg", of image_width x image_height; one annotation (ids 1, 2, ...; iscrowd 0; area = w * h) per
// box whose label is in labels_to_include; one category per label in labels_to_include. Scores are not written.
// InvalidArgument: empty or out-of-range labels_to_include, a non-positive image size, a duplicate frame_index,
// a non-finite box.
Status WriteCocoGroundTruth(const std::string& path, const std::vector<FrameDetections>& frames, int image_width,
                            int image_height, const std::vector<int>& labels_to_include);

// Reads a results file: one FrameDetections per image_id that has detections, ascending, detections in file order.
// NotFound: no such file. Corruption: malformed JSON, a missing or mistyped field, a negative box size, or a
// category id that is not one of the COCO-80 ids.
Result<std::vector<FrameDetections>> ReadCocoResults(const std::string& path);

// Reads an instances file: one FrameDetections per entry of "images" (also those without annotations), ascending
// image id, with its non-crowd annotations in file order (score 1). Crowd annotations (iscrowd 1) are left out:
// ReadCocoGroundTruthWithCrowd keeps them for EvaluateCocoWithCrowd. Errors as ReadCocoResults, plus Corruption
// for a duplicate image id or an annotation on an image that is not listed.
Result<std::vector<FrameDetections>> ReadCocoGroundTruth(const std::string& path);
Result<std::vector<GroundTruthFrame>> ReadCocoGroundTruthWithCrowd(const std::string& path);

}  // namespace kd::eval

#endif  // KD_EVAL_COCO_JSON_H_
