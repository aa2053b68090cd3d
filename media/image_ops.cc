#include "media/image_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "media/internal/opencv_frame.h"

namespace kd::media {
namespace {

using internal::RgbView;

// A new frame with the same index and timestamp and width x height pixels, not yet filled.
Frame NewFrameLike(const Frame& src, int width, int height) {
  Frame out;
  out.index = src.index;
  out.timestamp_us = src.timestamp_us;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<size_t>(width) * static_cast<size_t>(height) * 3);
  return out;
}

// Runs `op(src_view, dst_view)` writing into `out`'s buffer; an OpenCV exception here means a bug
// or an allocation failure (inputs are checked first), so it aborts with the message.
template <typename Op>
void RunInto(const Frame& src, Frame* out, const char* what, Op&& op) {
  try {
    cv::Mat dst = RgbView(*out);
    op(RgbView(src), dst);
    KD_CHECK_MSG(dst.data == out->rgb.data(), std::string(what) + " reallocated its output");
  } catch (const std::exception& e) {
    ::kd::internal::CheckFailed(__FILE__, __LINE__, what, internal::StatusFromException(e, what).ToString());
  }
}

int RoundToMultiple(double v, int multiple) {
  const int n = static_cast<int>(std::lround(v / multiple));
  return std::max(1, n) * multiple;
}

}  // namespace

Frame ResizeRgb(const Frame& frame, int width, int height) {
  KD_CHECK(frame.valid());
  KD_CHECK(width > 0 && height > 0);
  if (width == frame.width && height == frame.height) return frame;
  const bool big_shrink = width * 2 < frame.width || height * 2 < frame.height;
  const int interp = big_shrink ? cv::INTER_AREA : cv::INTER_LINEAR;
  Frame out = NewFrameLike(frame, width, height);
  RunInto(frame, &out, "ResizeRgb",
          [&](const cv::Mat& src, cv::Mat& dst) { cv::resize(src, dst, dst.size(), 0, 0, interp); });
  return out;
}

std::pair<int, int> FitSize(int src_w, int src_h, int long_side, int multiple) {
  KD_CHECK(src_w > 0 && src_h > 0 && long_side > 0 && multiple > 0);
  const double scale = static_cast<double>(long_side) / std::max(src_w, src_h);
  return {RoundToMultiple(src_w * scale, multiple), RoundToMultiple(src_h * scale, multiple)};
}

Result<std::vector<uint8_t>> EncodeJpeg(const Frame& frame, int quality) {
  KD_RETURN_IF_ERROR(internal::CheckFrame(frame, "EncodeJpeg"));
  if (quality < 1 || quality > 100) {
    return Status::InvalidArgument("EncodeJpeg: quality " + std::to_string(quality) + " not in [1, 100]");
  }
  std::vector<uint8_t> bytes;
  try {
    const std::vector<int> params = {cv::IMWRITE_JPEG_QUALITY, quality};
    if (!cv::imencode(".jpg", internal::ToBgr(frame), bytes, params)) {
      return Status::Internal("EncodeJpeg: the JPEG encoder failed");
    }
  } catch (const std::exception& e) {
    return internal::StatusFromException(e, "EncodeJpeg");
  }
  return bytes;
}

Result<Frame> DecodeJpeg(const uint8_t* data, size_t size) {
  // libjpeg decodes a truncated stream with only a warning (the missing rows come out grey), so
  // check the framing first: SOI (FF D8 FF) at the start and an EOI (FF D9) somewhere after it.
  if (data == nullptr || size < 4) return Status::Corruption("DecodeJpeg: " + std::to_string(size) + " bytes");
  if (data[0] != 0xFF || data[1] != 0xD8 || data[2] != 0xFF) {
    return Status::Corruption("DecodeJpeg: no JPEG SOI marker");
  }
  bool has_eoi = false;
  for (size_t i = size - 1; i >= 3; --i) {
    if (data[i] == 0xD9 && data[i - 1] == 0xFF) {
      has_eoi = true;
      break;
    }
  }
  if (!has_eoi) return Status::Corruption("DecodeJpeg: truncated JPEG (no EOI marker)");
  cv::Mat bgr;
  try {
    // The Mat header only reads the bytes; imdecode does not write to its input.
    const cv::Mat buf(1, static_cast<int>(size), CV_8UC1, const_cast<uint8_t*>(data));
    bgr = cv::imdecode(buf, cv::IMREAD_COLOR);
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("DecodeJpeg: ") + e.what());
  }
  if (bgr.empty()) return Status::Corruption("DecodeJpeg: undecodable JPEG data");
  return internal::FrameFromBgr(bgr, 0, 0);
}

Status WriteImage(const std::string& path, const Frame& frame) {
  KD_RETURN_IF_ERROR(internal::CheckFrame(frame, "WriteImage " + path));
  try {
    if (!cv::haveImageWriter(path)) return Status::InvalidArgument("WriteImage: no image writer for " + path);
    if (!cv::imwrite(path, internal::ToBgr(frame))) return Status::IOError("WriteImage: cannot write " + path);
  } catch (const std::exception& e) {
    return Status::IOError("WriteImage: cannot write " + path + ": " + e.what());
  }
  return Status::Ok();
}

Frame AdjustBrightnessContrast(const Frame& frame, double alpha, double beta) {
  KD_CHECK(frame.valid());
  Frame out = NewFrameLike(frame, frame.width, frame.height);
  RunInto(frame, &out, "AdjustBrightnessContrast",
          [&](const cv::Mat& src, cv::Mat& dst) { src.convertTo(dst, CV_8UC3, alpha, beta); });
  return out;
}

Frame GaussianBlur(const Frame& frame, double sigma) {
  KD_CHECK(frame.valid());
  if (!(sigma > 0)) return frame;
  Frame out = NewFrameLike(frame, frame.width, frame.height);
  RunInto(frame, &out, "GaussianBlur", [&](const cv::Mat& src, cv::Mat& dst) {
    cv::GaussianBlur(src, dst, cv::Size(0, 0), sigma, sigma, cv::BORDER_REFLECT_101);
  });
  return out;
}

Frame DrawDetections(const Frame& frame, const std::vector<Detection>& detections) {
  KD_CHECK(frame.valid());
  Frame out = frame;
  try {
    cv::Mat img = RgbView(out);
    const int thickness = std::max(1, std::min(frame.width, frame.height) / 240);
    for (const Detection& d : detections) {
      const cv::Scalar colour = d.label == 0 ? cv::Scalar(255, 200, 0) : cv::Scalar(0, 200, 255);  // RGB
      const cv::Point p1(static_cast<int>(d.box.x1), static_cast<int>(d.box.y1));
      const cv::Point p2(static_cast<int>(d.box.x2), static_cast<int>(d.box.y2));
      cv::rectangle(img, p1, p2, colour, thickness, cv::LINE_AA);
      char tag[64];
      std::snprintf(tag, sizeof tag, "%.*s %.2f", static_cast<int>(CocoClassName(d.label).size()),
                    CocoClassName(d.label).data(), static_cast<double>(d.score));
      int base = 0;
      const double scale = 0.4;
      const cv::Size ts = cv::getTextSize(tag, cv::FONT_HERSHEY_SIMPLEX, scale, 1, &base);
      const cv::Point t1(p1.x, std::max(ts.height + 2, p1.y));
      cv::rectangle(img, cv::Point(t1.x, t1.y - ts.height - 2), cv::Point(t1.x + ts.width + 2, t1.y + base - 1), colour,
                    cv::FILLED);
      cv::putText(img, tag, cv::Point(t1.x + 1, t1.y - 1), cv::FONT_HERSHEY_SIMPLEX, scale, cv::Scalar(0, 0, 0), 1,
                  cv::LINE_AA);
    }
  } catch (const std::exception& e) {
    ::kd::internal::CheckFailed(__FILE__, __LINE__, "DrawDetections",
                                internal::StatusFromException(e, "DrawDetections").ToString());
  }
  return out;
}

}  // namespace kd::media
