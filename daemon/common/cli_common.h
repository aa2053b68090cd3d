// Helpers shared by the daemons' command lines: frame ranges, thread setup, asset defaults.
// Header-only and torch-free so both composition roots can include it. Thread-safe (pure).
#ifndef KD_DAEMON_COMMON_CLI_COMMON_H_
#define KD_DAEMON_COMMON_CLI_COMMON_H_

#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <unistd.h>

#include "base/status.h"

namespace kd::daemon {

struct FrameRange {
  int64_t begin = 0;
  int64_t end = -1;  // -1: to the end of the source
};

// Parses "A:B" (half-open, 0-based), "A:" (to the end) or "" (everything).
inline Result<FrameRange> ParseFrameRange(const std::string& text) {
  FrameRange r;
  if (text.empty()) return r;
  const auto colon = text.find(':');
  if (colon == std::string::npos) return Status::InvalidArgument("frame range '" + text + "' is not of the form A:B");
  try {
    size_t used = 0;
    const std::string a = text.substr(0, colon), b = text.substr(colon + 1);
    if (!a.empty()) {
      r.begin = std::stoll(a, &used);
      if (used != a.size()) throw std::invalid_argument(a);
    }
    if (!b.empty()) {
      r.end = std::stoll(b, &used);
      if (used != b.size()) throw std::invalid_argument(b);
    }
  } catch (const std::exception&) {
    return Status::InvalidArgument("frame range '" + text + "' has a non-integer bound");
  }
  if (r.begin < 0 || (r.end >= 0 && r.end <= r.begin)) {
    return Status::InvalidArgument("frame range '" + text + "' is empty or negative (want 0 <= A < B)");
  }
  return r;
}

// Checks, before any long work, that `path` could be written: its folder exists and is writable,
// and it is not a folder itself. InvalidArgument naming `flag` otherwise.
inline Status CheckWritablePath(const std::string& flag, const std::string& path) {
  namespace fs = std::filesystem;
  if (path.empty()) return Status::InvalidArgument(flag + " is required");
  std::error_code ec;
  if (fs::is_directory(path, ec)) return Status::InvalidArgument(flag + " '" + path + "' is a folder, not a file");
  fs::path dir = fs::path(path).parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir, ec)) {
    return Status::InvalidArgument(flag + " '" + path + "': folder '" + dir.string() + "' does not exist");
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    return Status::InvalidArgument(flag + " '" + path + "': folder '" + dir.string() + "' is not writable");
  }
  return Status::Ok();
}

// Parses "WxH" into width and height.
inline Status ParseSize(const std::string& text, int* width, int* height) {
  const auto x = text.find('x');
  try {
    if (x == std::string::npos) throw std::invalid_argument(text);
    *width = std::stoi(text.substr(0, x));
    *height = std::stoi(text.substr(x + 1));
  } catch (const std::exception&) {
    return Status::InvalidArgument("size '" + text + "' is not of the form WxH");
  }
  if (*width <= 0 || *height <= 0 || *width % 32 || *height % 32) {
    return Status::InvalidArgument("size '" + text + "' must be positive multiples of 32");
  }
  return Status::Ok();
}

}  // namespace kd::daemon

#endif  // KD_DAEMON_COMMON_CLI_COMMON_H_
