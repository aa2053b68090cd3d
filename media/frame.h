// Frame: one decoded picture as a plain value, the currency between media, model and edge.
// Pixels are interleaved 8-bit RGB (R first, not OpenCV's BGR), row-major H x W x 3, no padding.
// A Frame owns its pixels (a std::vector); it is copyable and thread-compatible.
#ifndef KD_MEDIA_FRAME_H_
#define KD_MEDIA_FRAME_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kd::media {

struct Frame {
  // 0-based position of the frame in its source. For files and image folders this is the absolute
  // index in the whole file or folder (a range starting at 5 yields 5, 6, ...); for live sources it
  // counts frames since the source was opened.
  int64_t index = 0;
  // Presentation time in microseconds. Files and folders: index * 1e6 / fps (0 when fps is
  // unknown). Live sources: wall-clock time (Unix epoch) when the frame was read.
  int64_t timestamp_us = 0;
  int width = 0;
  int height = 0;
  // width * height * 3 bytes; pixel (x, y) channel c is rgb[(y * width + x) * 3 + c], c: 0=R 1=G 2=B.
  std::vector<uint8_t> rgb;

  bool empty() const { return width <= 0 || height <= 0 || rgb.empty(); }
  // True when the dimensions are positive and rgb holds exactly width * height * 3 bytes.
  bool valid() const {
    return width > 0 && height > 0 && rgb.size() == static_cast<size_t>(width) * static_cast<size_t>(height) * 3;
  }
};

}  // namespace kd::media

#endif  // KD_MEDIA_FRAME_H_
