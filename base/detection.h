// Vocabulary types shared by every module: boxes, detections and the COCO-80 label set.
// Plain values; no third-party types. Boxes are in pixels of the image they refer to
// (x1,y1) top-left inclusive, (x2,y2) bottom-right, x2 >= x1, y2 >= y1.
#ifndef KD_BASE_DETECTION_H_
#define KD_BASE_DETECTION_H_

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

namespace kd {

struct Box {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  float width() const { return x2 > x1 ? x2 - x1 : 0.f; }
  float height() const { return y2 > y1 ? y2 - y1 : 0.f; }
  float area() const { return width() * height(); }
};

// Intersection over union; 0 when both boxes are empty.
float BoxIou(const Box& a, const Box& b);

struct Detection {
  Box box;
  float score = 0;  // in [0,1]
  int label = 0;    // COCO-80 contiguous index: 0 = person, 2 = car, 7 = truck, ...
};

// One frame's detections, with the frame it belongs to (0-based index in its source).
struct FrameDetections {
  int64_t frame_index = 0;
  std::vector<Detection> detections;
};

inline constexpr int kCocoNumClasses = 80;
// Names of the 80 COCO classes in contiguous order (index = label).
std::string_view CocoClassName(int label);
// The official COCO category id (1..90, non-contiguous) of a contiguous label.
int CocoCategoryId(int label);
// Contiguous label for a name ("person" -> 0); -1 when unknown.
int CocoLabelFromName(std::string_view name);

// Greedy per-class non-maximum suppression: keeps the highest-scoring box of any pair of the same
// label with IoU > iou_threshold. Returns kept detections sorted by descending score.
std::vector<Detection> NonMaxSuppression(std::vector<Detection> dets, float iou_threshold);

}  // namespace kd

#endif  // KD_BASE_DETECTION_H_
