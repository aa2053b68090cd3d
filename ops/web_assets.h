// WebAsset: a file of the web pages, compiled into the binary at build time (cmake/KdEmbed.cmake
// generates the table from ops/web/ and the vendored uPlot), so a daemon serves its dashboard with
// no install-time files and no network.
#ifndef KD_OPS_WEB_ASSETS_H_
#define KD_OPS_WEB_ASSETS_H_

#include <span>
#include <string_view>

namespace kd::ops {

struct WebAsset {
  std::string_view path;          // "/index.html", "/uPlot.iife.min.js"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view bytes;
  std::string_view etag;  // quoted SHA-256 prefix of the bytes
};

// The learner's dashboard ("/index.html" first) and the edge's page ("/index.html" is the edge's).
std::span<const WebAsset> LearnerWebAssets();
std::span<const WebAsset> EdgeWebAssets();

}  // namespace kd::ops

#endif  // KD_OPS_WEB_ASSETS_H_
