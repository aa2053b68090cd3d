#include "media/internal/opencv_frame.h"

#include <opencv2/imgproc.hpp>

namespace kd::media::internal {

Result<Frame> FrameFromBgr(const cv::Mat& bgr, int64_t index, int64_t timestamp_us) {
  if (bgr.empty()) return Status::InvalidArgument("empty image");
  if (bgr.depth() != CV_8U) {
    return Status::InvalidArgument("unsupported pixel depth " + std::to_string(bgr.depth()) + " (want 8-bit)");
  }
  int code = 0;
  switch (bgr.channels()) {
    case 1:
      code = cv::COLOR_GRAY2RGB;
      break;
    case 3:
      code = cv::COLOR_BGR2RGB;
      break;
    case 4:
      code = cv::COLOR_BGRA2RGB;
      break;
    default:
      return Status::InvalidArgument("unsupported channel count " + std::to_string(bgr.channels()));
  }
  Frame frame;
  frame.index = index;
  frame.timestamp_us = timestamp_us;
  frame.width = bgr.cols;
  frame.height = bgr.rows;
  frame.rgb.resize(static_cast<size_t>(bgr.cols) * static_cast<size_t>(bgr.rows) * 3);
  try {
    // cvtColor writes straight into the frame's buffer: dst already has the right size and type.
    cv::Mat dst(bgr.rows, bgr.cols, CV_8UC3, frame.rgb.data());
    cv::cvtColor(bgr, dst, code);
    KD_CHECK(dst.data == frame.rgb.data());
  } catch (const std::exception& e) {
    return StatusFromException(e, "colour conversion");
  }
  return frame;
}

cv::Mat RgbView(const Frame& frame) {
  KD_CHECK_MSG(frame.valid(), "invalid frame " + std::to_string(frame.width) + "x" + std::to_string(frame.height) +
                                  " with " + std::to_string(frame.rgb.size()) + " bytes");
  // OpenCV takes a non-const pointer; callers only read through this view.
  return cv::Mat(frame.height, frame.width, CV_8UC3, const_cast<uint8_t*>(frame.rgb.data()));
}

cv::Mat ToBgr(const Frame& frame) {
  cv::Mat bgr;
  cv::cvtColor(RgbView(frame), bgr, cv::COLOR_RGB2BGR);
  return bgr;
}

Status CheckFrame(const Frame& frame, std::string_view what) {
  if (frame.valid()) return Status::Ok();
  return Status::InvalidArgument(std::string(what) + ": invalid frame " + std::to_string(frame.width) + "x" +
                                 std::to_string(frame.height) + " with " + std::to_string(frame.rgb.size()) +
                                 " bytes (want width * height * 3)");
}

Status StatusFromException(const std::exception& e, std::string_view what) {
  return Status::Internal(std::string(what) + ": OpenCV: " + e.what());
}

}  // namespace kd::media::internal
