// FrameSource: pull-based readers of RGB Frames from video files, image folders, network streams
// (rtsp/http) and V4L2 cameras, opened through one factory, OpenSource(uri, options).
// A source owns its decoder; it is not thread-safe (one consumer at a time) but may be moved to
// and used from another thread. OpenCV stays private: no OpenCV type appears in this interface.
#ifndef KD_MEDIA_VIDEO_SOURCE_H_
#define KD_MEDIA_VIDEO_SOURCE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "media/frame.h"

namespace kd::media {

enum class SourceKind {
  kVideoFile,    // a file decoded by OpenCV's FFmpeg backend (avi, mp4, mkv, ...)
  kImageFolder,  // a folder of .jpg/.jpeg/.png/.bmp images, in file-name order
  kStream,       // rtsp://, rtsps://, http://, https:// (live)
  kCamera,       // V4L2 camera: "v4l2:N" or "/dev/videoN" (live)
};
// "video_file", "image_folder", "stream", "camera".
const char* SourceKindName(SourceKind kind);

struct SourceInfo {
  int width = 0;  // of the first frame delivered (an image folder may mix sizes)
  int height = 0;
  double fps = 0;            // 0 when unknown
  int64_t frame_count = -1;  // frames in the whole file or folder (ignoring the range); -1 if unknown
  SourceKind kind = SourceKind::kVideoFile;
  std::string name;  // the path, or the URL with any user:password removed
};

struct SourceOptions {
  // Half-open range [begin, end) of 0-based frame indices; end = -1 reads to the end. Files and
  // folders: absolute indices. One rule: an explicit range must lie inside the source, so a begin
  // at or past frame_count or an end past it is InvalidArgument at open, and a file that stops
  // decoding inside an explicit range (truncated, damaged) makes Next() return InvalidArgument
  // instead of ending early; with end = -1 the source ends where decoding ends (a warning). Live
  // sources: indices count frames since open; the first `begin` frames are dropped.
  int64_t begin = 0;
  int64_t end = -1;
  // Video files: a begin up to this many frames is reached by decoding and discarding frames from
  // the start, which is always exact. A larger begin seeks with CAP_PROP_POS_FRAMES and verifies the
  // reported position; if it disagrees, it falls back to decoding from the start.
  int64_t max_discard_frames = 200;
  // Frame rate assigned to image folders (their timestamps are index * 1e6 / folder_fps).
  double folder_fps = 10.0;
  // Network streams (FFmpeg backend): limits for opening and for each read, in milliseconds.
  int open_timeout_ms = 10000;
  int read_timeout_ms = 10000;
  // Cameras: requested capture size and rate; 0 keeps the driver's default.
  int camera_width = 0;
  int camera_height = 0;
  double camera_fps = 0;
  // Clock for live sources' wall-clock timestamps; nullptr = SystemClock::Get(). Not owned; it
  // must outlive the source.
  const Clock* clock = nullptr;
};

class FrameSource {
 public:
  virtual ~FrameSource() = default;
  // The next frame of the range; nullopt at the end of the stream or of the range.
  // File/folder errors: Corruption or IOError for an image or frame that cannot be read (a folder
  // skips it on the following call). Live sources: Unavailable when a read fails (the peer stopped
  // or disconnected; reopen to retry); they only end with nullopt after `end`.
  virtual Result<std::optional<Frame>> Next() = 0;
  virtual SourceInfo info() const = 0;
};

// Opens `uri`: "rtsp://..." / "http(s)://..." streams, "v4l2:N" or "/dev/videoN" cameras, a folder
// of images, or a video file. Errors: a missing path -> NotFound (with the path); an unreadable
// file -> IOError; a file that is not a decodable video, an empty folder, or a bad range ->
// InvalidArgument; a stream or camera that does not open -> Unavailable.
Result<std::unique_ptr<FrameSource>> OpenSource(const std::string& uri, const SourceOptions& options = {});

// Reads every frame of [begin, end) from `uri` (end = -1: to the end). Live sources need an
// explicit end (else InvalidArgument). Holds all frames in memory: meant for short ranges.
Result<std::vector<Frame>> ReadFrames(const std::string& uri, int64_t begin = 0, int64_t end = -1);

}  // namespace kd::media

#endif  // KD_MEDIA_VIDEO_SOURCE_H_
