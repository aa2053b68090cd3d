#include "media/video_source.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string_view>
#include <system_error>
#include <utility>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

#include "base/log.h"
#include "media/internal/opencv_frame.h"

namespace kd::media {
namespace {

namespace fs = std::filesystem;
using internal::FrameFromBgr;
using internal::StatusFromException;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool StartsWith(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

bool IsStreamUrl(const std::string& uri) {
  const std::string l = Lower(uri.substr(0, 8));
  return StartsWith(l, "rtsp://") || StartsWith(l, "rtsps://") || StartsWith(l, "http://") || StartsWith(l, "https://");
}

// "rtsp://user:pass@host/x" -> "rtsp://***@host/x", so credentials stay out of logs and messages.
std::string RedactUrl(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return url;
  const size_t host_begin = scheme_end + 3;
  const size_t path_begin = url.find('/', host_begin);
  const size_t at = url.rfind('@', path_begin == std::string::npos ? url.size() : path_begin);
  if (at == std::string::npos || at < host_begin) return url;
  return url.substr(0, host_begin) + "***" + url.substr(at);
}

// Parses a non-negative device number; false on anything else.
bool ParseDeviceIndex(std::string_view s, int* out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && *out >= 0;
}

int64_t FileTimestamp(int64_t index, double fps) {
  if (!(fps > 0)) return 0;
  return std::llround(static_cast<double>(index) * 1e6 / fps);
}

// A property that OpenCV reports as a count; -1 when it is unknown (0, negative, NaN).
int64_t CountProperty(double v) { return std::isfinite(v) && v >= 1 ? std::llround(v) : -1; }
double FpsProperty(double v) { return std::isfinite(v) && v > 0 ? v : 0; }

// Runs f() (returning a Status or Result), turning an exception from OpenCV or the standard
// library into a Status, so that none escapes this module.
template <typename F>
auto Guarded(const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::exception& e) {
    return StatusFromException(e, what);
  }
}

Status CheckRange(const SourceOptions& options) {
  if (options.begin < 0) return Status::InvalidArgument("range begin " + std::to_string(options.begin) + " < 0");
  if (options.end < -1 || (options.end >= 0 && options.end < options.begin)) {
    return Status::InvalidArgument("bad frame range [" + std::to_string(options.begin) + ", " +
                                   std::to_string(options.end) + ")");
  }
  return Status::Ok();
}

// The one rule for ranges: an explicit A:B must lie inside the source ("A:" or no range read to
// whatever end there is).
Status EndBeyondEnd(const std::string& name, int64_t begin, int64_t end, int64_t frame_count) {
  return Status::InvalidArgument("range " + std::to_string(begin) + ":" + std::to_string(end) + " ends beyond " + name +
                                 " (" + std::to_string(frame_count) + " frames; use " + std::to_string(begin) +
                                 ": to read to the end)");
}

Status BeyondEnd(const std::string& name, int64_t begin, int64_t frame_count) {
  return Status::InvalidArgument("range begin " + std::to_string(begin) + " is beyond the last frame of " + name +
                                 " (" + std::to_string(frame_count) + " frames)");
}

// ---------------------------------------------------------------------------------------------
// Video files through the FFmpeg backend.
class VideoFileSource final : public FrameSource {
 public:
  VideoFileSource(std::string path, const SourceOptions& options) : path_(std::move(path)), options_(options) {
    info_.kind = SourceKind::kVideoFile;
    info_.name = path_;
  }

  Status Open() {
    KD_RETURN_IF_ERROR(OpenCapture());
    info_.width = static_cast<int>(cap_.get(cv::CAP_PROP_FRAME_WIDTH));
    info_.height = static_cast<int>(cap_.get(cv::CAP_PROP_FRAME_HEIGHT));
    info_.fps = FpsProperty(cap_.get(cv::CAP_PROP_FPS));
    info_.frame_count = CountProperty(cap_.get(cv::CAP_PROP_FRAME_COUNT));
    const int64_t begin = options_.begin;
    if (info_.frame_count >= 0 && begin >= info_.frame_count) return BeyondEnd(path_, begin, info_.frame_count);
    if (info_.frame_count >= 0 && options_.end > info_.frame_count) {
      return EndBeyondEnd(path_, begin, options_.end, info_.frame_count);
    }

    // Seek, then decode the first frame of the range now, so that a file that opens but does not
    // decode, or a begin past a mis-reported frame count, fails here and not on the first Next().
    bool seeked_by_property = false;
    KD_RETURN_IF_ERROR(SeekTo(begin, &seeked_by_property));
    next_index_ = begin;
    if (options_.end >= 0 && begin >= options_.end) return Status::Ok();  // empty range
    cv::Mat bgr;
    if (!cap_.read(bgr) && seeked_by_property) {
      KD_LOG(kWarn) << path_ << ": no frame after seeking to " << begin << "; decoding from the start instead";
      KD_RETURN_IF_ERROR(OpenCapture());
      KD_RETURN_IF_ERROR(DiscardFrames(begin));
      cap_.read(bgr);
    }
    if (bgr.empty()) {
      if (begin == 0) return Status::InvalidArgument("no decodable video frames in " + path_);
      return Status::InvalidArgument("range begin " + std::to_string(begin) + " is beyond the last frame of " + path_);
    }
    KD_ASSIGN_OR_RETURN(Frame first, FrameFromBgr(bgr, begin, FileTimestamp(begin, info_.fps)));
    info_.width = first.width;
    info_.height = first.height;
    pending_ = std::move(first);
    return Status::Ok();
  }

  Result<std::optional<Frame>> Next() override {
    return Guarded("reading " + info_.name, [this] { return NextImpl(); });
  }
  SourceInfo info() const override { return info_; }

 private:
  Result<std::optional<Frame>> NextImpl() {
    if (options_.end >= 0 && next_index_ >= options_.end) return std::optional<Frame>();
    if (pending_) {
      std::optional<Frame> out = std::move(pending_);
      pending_.reset();
      ++next_index_;
      return out;
    }
    cv::Mat bgr;
    try {
      if (!cap_.read(bgr)) {
        if (options_.end >= 0 && next_index_ < options_.end) {
          // An explicit range promises its frames: a file that ends inside it (truncated or
          // damaged) is an error, not a quietly shorter result.
          return Status::InvalidArgument(path_ + " ended at frame " + std::to_string(next_index_) +
                                         ", inside the requested range " + std::to_string(options_.begin) + ":" +
                                         std::to_string(options_.end) + " (truncated or damaged?)");
        }
        if (info_.frame_count >= 0 && next_index_ < info_.frame_count && !warned_short_) {
          KD_LOG(kWarn) << path_ << ": stream ended at frame " << next_index_ << " of " << info_.frame_count;
          warned_short_ = true;
        }
        return std::optional<Frame>();
      }
    } catch (const std::exception& e) {
      return StatusFromException(e, "decoding " + path_);
    }
    const int64_t index = next_index_++;
    KD_ASSIGN_OR_RETURN(Frame frame, FrameFromBgr(bgr, index, FileTimestamp(index, info_.fps)));
    return std::optional<Frame>(std::move(frame));
  }

  Status OpenCapture() {
    try {
      cap_.release();
      if (cap_.open(path_, cv::CAP_FFMPEG) && cap_.isOpened()) return Status::Ok();
      if (!cv::videoio_registry::hasBackend(cv::CAP_FFMPEG)) {
        return Status::Unimplemented("cannot open " + path_ + ": this OpenCV has no FFmpeg backend");
      }
    } catch (const std::exception& e) {
      return Status::InvalidArgument("cannot decode " + path_ + ": " + e.what());
    }
    return Status::InvalidArgument("cannot decode " + path_ + ": not a video the FFmpeg backend can open");
  }

  // Positions the capture so the next read returns frame `begin`.
  Status SeekTo(int64_t begin, bool* by_property) {
    *by_property = false;
    if (begin == 0) return Status::Ok();
    if (begin > options_.max_discard_frames) {
      try {
        const bool set_ok = cap_.set(cv::CAP_PROP_POS_FRAMES, static_cast<double>(begin));
        const double pos = cap_.get(cv::CAP_PROP_POS_FRAMES);
        if (set_ok && std::llround(pos) == begin) {
          *by_property = true;
          return Status::Ok();
        }
        KD_LOG(kWarn) << path_ << ": seeking to frame " << begin << " landed at " << pos
                      << "; decoding from the start instead";
      } catch (const std::exception& e) {
        KD_LOG(kWarn) << path_ << ": seek failed (" << e.what() << "); decoding from the start instead";
      }
      KD_RETURN_IF_ERROR(OpenCapture());
    }
    return DiscardFrames(begin);
  }

  // Decodes and drops `n` frames from the current position (grab() skips the colour conversion).
  Status DiscardFrames(int64_t n) {
    try {
      for (int64_t i = 0; i < n; ++i) {
        if (!cap_.grab()) return BeyondEnd(path_, options_.begin, i);
      }
    } catch (const std::exception& e) {
      return StatusFromException(e, "decoding " + path_);
    }
    return Status::Ok();
  }

  std::string path_;
  SourceOptions options_;
  SourceInfo info_;
  cv::VideoCapture cap_;
  int64_t next_index_ = 0;
  std::optional<Frame> pending_;  // the first frame of the range, decoded by Open()
  bool warned_short_ = false;
};

// ---------------------------------------------------------------------------------------------
// A folder of images, sorted by file name.
class ImageFolderSource final : public FrameSource {
 public:
  ImageFolderSource(std::string dir, const SourceOptions& options) : dir_(std::move(dir)), options_(options) {
    info_.kind = SourceKind::kImageFolder;
    info_.name = dir_;
    info_.fps = options.folder_fps > 0 ? options.folder_fps : 0;
  }

  Status Open() {
    std::error_code ec;
    fs::directory_iterator it(dir_, ec);
    if (ec) return Status::IOError("cannot list folder " + dir_ + ": " + ec.message());
    for (const fs::directory_entry& entry : it) {
      std::error_code type_ec;
      if (!entry.is_regular_file(type_ec)) continue;
      const std::string ext = Lower(entry.path().extension().string());
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp") files_.push_back(entry.path());
    }
    if (files_.empty()) return Status::InvalidArgument("no images (.jpg/.jpeg/.png/.bmp) in folder " + dir_);
    std::sort(files_.begin(), files_.end(),
              [](const fs::path& a, const fs::path& b) { return a.filename().string() < b.filename().string(); });
    info_.frame_count = static_cast<int64_t>(files_.size());
    if (options_.begin >= info_.frame_count) return BeyondEnd(dir_, options_.begin, info_.frame_count);
    next_index_ = options_.begin;
    if (options_.end > info_.frame_count) return EndBeyondEnd(dir_, options_.begin, options_.end, info_.frame_count);
    end_ = options_.end >= 0 ? options_.end : info_.frame_count;
    // The first image of the range gives the size and proves the folder is readable.
    KD_ASSIGN_OR_RETURN(Frame first, Load(next_index_));
    info_.width = first.width;
    info_.height = first.height;
    pending_ = std::move(first);
    return Status::Ok();
  }

  Result<std::optional<Frame>> Next() override {
    return Guarded("reading " + info_.name, [this] { return NextImpl(); });
  }
  SourceInfo info() const override { return info_; }

 private:
  Result<std::optional<Frame>> NextImpl() {
    if (next_index_ >= end_) return std::optional<Frame>();
    const int64_t index = next_index_++;
    if (pending_) {
      std::optional<Frame> out = std::move(pending_);
      pending_.reset();
      return out;
    }
    KD_ASSIGN_OR_RETURN(Frame frame, Load(index));
    return std::optional<Frame>(std::move(frame));
  }

  Result<Frame> Load(int64_t index) const {
    const std::string path = files_[static_cast<size_t>(index)].string();
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::IOError("cannot read image " + path);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return Status::IOError("cannot read image " + path);
    cv::Mat bgr;
    try {
      if (!bytes.empty()) bgr = cv::imdecode(bytes, cv::IMREAD_COLOR);
    } catch (const std::exception& e) {
      return Status::Corruption("cannot decode image " + path + ": " + e.what());
    }
    if (bgr.empty()) return Status::Corruption("cannot decode image " + path);
    Result<Frame> frame = FrameFromBgr(bgr, index, FileTimestamp(index, info_.fps));
    if (!frame.ok()) return frame.status().WithContext(path);
    return frame;
  }

  std::string dir_;
  SourceOptions options_;
  SourceInfo info_;
  std::vector<fs::path> files_;
  int64_t next_index_ = 0;
  int64_t end_ = 0;
  std::optional<Frame> pending_;
};

// ---------------------------------------------------------------------------------------------
// Live sources: network streams and V4L2 cameras. Timestamps are wall-clock at read time.
class LiveSource final : public FrameSource {
 public:
  LiveSource(SourceKind kind, std::string name, const SourceOptions& options)
      : options_(options), clock_(options.clock ? options.clock : &SystemClock::Get()) {
    info_.kind = kind;
    info_.name = std::move(name);
  }

  Status OpenStream(const std::string& url) {
    try {
      const std::vector<int> params = {cv::CAP_PROP_OPEN_TIMEOUT_MSEC, options_.open_timeout_ms,
                                       cv::CAP_PROP_READ_TIMEOUT_MSEC, options_.read_timeout_ms};
      if (!cap_.open(url, cv::CAP_FFMPEG, params) || !cap_.isOpened()) {
        return Status::Unavailable("cannot open stream " + info_.name);
      }
    } catch (const std::exception& e) {
      return Status::Unavailable("cannot open stream " + info_.name + ": " + e.what());
    }
    ReadInfo();
    return Status::Ok();
  }

  Status OpenCamera(int device) {
    try {
      if (!cap_.open(device, cv::CAP_V4L2) || !cap_.isOpened()) {
        return Status::Unavailable("cannot open V4L2 camera " + info_.name);
      }
      if (options_.camera_width > 0) cap_.set(cv::CAP_PROP_FRAME_WIDTH, options_.camera_width);
      if (options_.camera_height > 0) cap_.set(cv::CAP_PROP_FRAME_HEIGHT, options_.camera_height);
      if (options_.camera_fps > 0) cap_.set(cv::CAP_PROP_FPS, options_.camera_fps);
    } catch (const std::exception& e) {
      return Status::Unavailable("cannot open V4L2 camera " + info_.name + ": " + e.what());
    }
    ReadInfo();
    return Status::Ok();
  }

  Result<std::optional<Frame>> Next() override {
    return Guarded("reading " + info_.name, [this] { return NextImpl(); });
  }
  SourceInfo info() const override { return info_; }

 private:
  Result<std::optional<Frame>> NextImpl() {
    cv::Mat bgr;
    while (true) {
      if (options_.end >= 0 && next_index_ >= options_.end) return std::optional<Frame>();
      try {
        if (!cap_.read(bgr) || bgr.empty()) {
          return Status::Unavailable("no frame from " + info_.name + " after " + std::to_string(next_index_) +
                                     " frames (stopped or disconnected)");
        }
      } catch (const std::exception& e) {
        return Status::Unavailable("reading " + info_.name + ": " + e.what());
      }
      const int64_t index = next_index_++;
      if (index < options_.begin) continue;
      KD_ASSIGN_OR_RETURN(Frame frame, FrameFromBgr(bgr, index, clock_->WallMicros()));
      return std::optional<Frame>(std::move(frame));
    }
  }

  void ReadInfo() {
    info_.width = static_cast<int>(cap_.get(cv::CAP_PROP_FRAME_WIDTH));
    info_.height = static_cast<int>(cap_.get(cv::CAP_PROP_FRAME_HEIGHT));
    info_.fps = FpsProperty(cap_.get(cv::CAP_PROP_FPS));
    info_.frame_count = -1;
  }

  SourceOptions options_;
  const Clock* clock_;
  SourceInfo info_;
  cv::VideoCapture cap_;
  int64_t next_index_ = 0;
};

}  // namespace

const char* SourceKindName(SourceKind kind) {
  switch (kind) {
    case SourceKind::kVideoFile:
      return "video_file";
    case SourceKind::kImageFolder:
      return "image_folder";
    case SourceKind::kStream:
      return "stream";
    case SourceKind::kCamera:
      return "camera";
  }
  return "unknown";
}

Result<std::unique_ptr<FrameSource>> OpenSource(const std::string& uri, const SourceOptions& options) {
  KD_RETURN_IF_ERROR(CheckRange(options));
  if (uri.empty()) return Status::InvalidArgument("empty source uri");

  if (IsStreamUrl(uri)) {
    auto source = std::make_unique<LiveSource>(SourceKind::kStream, RedactUrl(uri), options);
    KD_RETURN_IF_ERROR(Guarded(RedactUrl(uri), [&] { return source->OpenStream(uri); }));
    return std::unique_ptr<FrameSource>(std::move(source));
  }

  int device = -1;
  const bool v4l2_scheme = StartsWith(uri, "v4l2:");
  if (v4l2_scheme || StartsWith(uri, "/dev/video")) {
    const std::string_view number = std::string_view(uri).substr(v4l2_scheme ? 5 : 10);
    if (!ParseDeviceIndex(number, &device)) {
      return Status::InvalidArgument("bad camera " + uri + " (want v4l2:N or /dev/videoN)");
    }
    const std::string dev_path = "/dev/video" + std::to_string(device);
    std::error_code ec;
    if (!fs::exists(dev_path, ec)) return Status::NotFound("no camera device " + dev_path);
    auto source = std::make_unique<LiveSource>(SourceKind::kCamera, dev_path, options);
    KD_RETURN_IF_ERROR(Guarded(dev_path, [&] { return source->OpenCamera(device); }));
    return std::unique_ptr<FrameSource>(std::move(source));
  }

  std::error_code ec;
  const fs::file_status st = fs::status(uri, ec);
  if (st.type() == fs::file_type::not_found) return Status::NotFound("no such file or folder: " + uri);
  if (ec) return Status::IOError("cannot access " + uri + ": " + ec.message());
  if (st.type() == fs::file_type::directory) {
    auto source = std::make_unique<ImageFolderSource>(uri, options);
    KD_RETURN_IF_ERROR(Guarded(uri, [&] { return source->Open(); }));
    return std::unique_ptr<FrameSource>(std::move(source));
  }
  {
    std::ifstream probe(uri, std::ios::binary);
    if (!probe) return Status::IOError("cannot read " + uri);
    if (probe.peek() == std::ifstream::traits_type::eof()) return Status::InvalidArgument("empty file " + uri);
  }
  auto source = std::make_unique<VideoFileSource>(uri, options);
  KD_RETURN_IF_ERROR(Guarded(uri, [&] { return source->Open(); }));
  return std::unique_ptr<FrameSource>(std::move(source));
}

Result<std::vector<Frame>> ReadFrames(const std::string& uri, int64_t begin, int64_t end) {
  SourceOptions options;
  options.begin = begin;
  options.end = end;
  if (end < 0 && (IsStreamUrl(uri) || StartsWith(uri, "v4l2:") || StartsWith(uri, "/dev/video"))) {
    return Status::InvalidArgument("ReadFrames on live source " + RedactUrl(uri) + " needs an explicit end");
  }
  KD_ASSIGN_OR_RETURN(std::unique_ptr<FrameSource> source, OpenSource(uri, options));
  std::vector<Frame> frames;
  const int64_t count = source->info().frame_count;
  const int64_t last = end >= 0 && (count < 0 || end < count) ? end : count;
  if (last > begin) frames.reserve(static_cast<size_t>(last - begin));
  while (true) {
    KD_ASSIGN_OR_RETURN(std::optional<Frame> frame, source->Next());
    if (!frame) break;
    frames.push_back(std::move(*frame));
  }
  return frames;
}

}  // namespace kd::media
