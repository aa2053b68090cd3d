// Image operations on RGB Frames: resizing, JPEG encode/decode, debug writes, and the photometric
// perturbations (brightness/contrast, blur) used to simulate lighting and focus drift.
// All functions are stateless and thread-safe; results are new Frames owned by the caller.
// Frame-returning functions treat an invalid input frame as a bug (KD_CHECK); codecs return Status.
#ifndef KD_MEDIA_IMAGE_OPS_H_
#define KD_MEDIA_IMAGE_OPS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "base/detection.h"
#include "base/status.h"
#include "media/frame.h"

namespace kd::media {

// Resizes to width x height (both > 0); index and timestamp are kept. Interpolation: bilinear
// (cv::INTER_LINEAR) in general, but area averaging (cv::INTER_AREA) when either side shrinks by
// more than 2x: bilinear only looks at the 2x2 nearest source pixels, so large reductions skip
// pixels and alias (moire, flicker on fine texture); INTER_AREA averages every covered pixel like
// a box filter. For upscaling and mild reductions bilinear is as good and faster.
Frame ResizeRgb(const Frame& frame, int width, int height);

// The size that fits src_w x src_h (aspect ratio kept) with its longer side ~long_side, both sides
// rounded to the nearest multiple of `multiple` (at least `multiple`). Scales up as well as down.
// Examples: (768, 576, 512, 32) -> (512, 384); (768, 576, 384, 32) -> (384, 288).
// All arguments must be > 0. Returns {width, height}.
std::pair<int, int> FitSize(int src_w, int src_h, int long_side, int multiple);

// Encodes to baseline JPEG. quality in [1, 100] (else InvalidArgument); invalid frame ->
// InvalidArgument; an encoder failure -> Internal.
Result<std::vector<uint8_t>> EncodeJpeg(const Frame& frame, int quality = 90);

// Decodes JPEG bytes into an RGB Frame (index 0, timestamp 0). Bytes that are not a complete JPEG
// (no SOI marker, truncated before EOI, undecodable) -> Corruption. Never throws.
Result<Frame> DecodeJpeg(const uint8_t* data, size_t size);
inline Result<Frame> DecodeJpeg(const std::vector<uint8_t>& bytes) { return DecodeJpeg(bytes.data(), bytes.size()); }

// Writes the frame for debugging; the format follows the extension (.png, .jpg, .bmp, ...).
// Unknown extension or invalid frame -> InvalidArgument; a failed write -> IOError.
Status WriteImage(const std::string& path, const Frame& frame);

// Per channel: out = saturate(alpha * in + beta). alpha > 1 raises contrast, beta > 0 brightens.
Frame AdjustBrightnessContrast(const Frame& frame, double alpha, double beta);

// A copy with each detection drawn as a box and a "name score" tag (COCO names; persons in one
// colour, everything else in another), for people looking at a camera's page.
Frame DrawDetections(const Frame& frame, const std::vector<Detection>& detections);

// Gaussian blur with standard deviation sigma pixels (kernel ~6 sigma wide, reflected borders).
// sigma <= 0 returns an unchanged copy.
Frame GaussianBlur(const Frame& frame, double sigma);

}  // namespace kd::media

#endif  // KD_MEDIA_IMAGE_OPS_H_
