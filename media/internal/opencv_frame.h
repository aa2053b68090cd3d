// Private to kd_media (not a public header): conversions between kd::media::Frame and cv::Mat,
// and the one place OpenCV exceptions turn into Status values. Only media/*.cc include this.
// All functions are stateless and thread-safe.
#ifndef KD_MEDIA_INTERNAL_OPENCV_FRAME_H_
#define KD_MEDIA_INTERNAL_OPENCV_FRAME_H_

#include <exception>
#include <string>
#include <string_view>

#include <opencv2/core.hpp>

#include "base/status.h"
#include "media/frame.h"

namespace kd::media::internal {

// Converts an 8-bit BGR (3 channels), BGRA (4) or gray (1) image, as OpenCV decodes them, into an
// RGB Frame with the given index and timestamp. Other depths or channel counts -> InvalidArgument.
Result<Frame> FrameFromBgr(const cv::Mat& bgr, int64_t index, int64_t timestamp_us);

// A Mat header over the frame's RGB bytes (no copy); the frame must be valid() and outlive it.
cv::Mat RgbView(const Frame& frame);
// A BGR copy of the frame (for OpenCV's encoders and writers).
cv::Mat ToBgr(const Frame& frame);

// InvalidArgument unless frame.valid(); `what` names the caller in the message.
Status CheckFrame(const Frame& frame, std::string_view what);

// Status for an exception caught around an OpenCV call: "<what>: <exception text>".
Status StatusFromException(const std::exception& e, std::string_view what);

}  // namespace kd::media::internal

#endif  // KD_MEDIA_INTERNAL_OPENCV_FRAME_H_
