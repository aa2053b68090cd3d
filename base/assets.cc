#include "base/assets.h"

#include <cstdlib>
#include <filesystem>

namespace kd {

std::string AssetsDir() {
  if (const char* d = std::getenv("KD_ASSETS_DIR"); d && *d) return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/kd/assets";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/root") + "/.cache/kd/assets";
}

std::string AssetPath(const std::string& name) { return AssetsDir() + "/" + name; }

bool FileExists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

}  // namespace kd
