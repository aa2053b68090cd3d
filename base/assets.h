// Where the fetched real assets live (scripts/fetch_assets.sh puts them there).
// Order: $KD_ASSETS_DIR, $XDG_CACHE_HOME/kd/assets, $HOME/.cache/kd/assets. Thread-safe (reads env).
#ifndef KD_BASE_ASSETS_H_
#define KD_BASE_ASSETS_H_

#include <string>

namespace kd {

std::string AssetsDir();
// AssetsDir() + "/" + name.
std::string AssetPath(const std::string& name);
bool FileExists(const std::string& path);

}  // namespace kd

#endif  // KD_BASE_ASSETS_H_
