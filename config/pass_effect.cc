// ParsePassEffect (declared in daemon_options.h): the source.pass_effects syntax, shared by the
// config check and the edge's capture stage.
#include <charconv>
#include <string>
#include <string_view>

#include "config/daemon_options.h"

namespace kd::config {

Result<PassEffect> ParsePassEffect(std::string_view spec) {
  // append() rather than "\"" + std::string(spec): GCC 12 warns (-Wrestrict) falsely on the latter here.
  const std::string quoted = std::string(1, '"').append(spec).append(1, '"');
  if (spec == "none") return PassEffect{};
  const size_t colon = spec.find(':');
  const std::string_view name = spec.substr(0, colon);
  const std::string_view arg = colon == std::string_view::npos ? std::string_view() : spec.substr(colon + 1);
  PassEffect e;
  if (name == "dark" || name == "bright") {
    double f = 0;
    auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), f);
    if (arg.empty() || ec != std::errc() || end != arg.data() + arg.size())
      return Status::InvalidArgument(quoted + ": expected " + std::string(name) + ":F with a number F");
    if (name == "dark") {
      if (!(f > 0 && f <= 1)) return Status::InvalidArgument(quoted + ": dark factor must be in (0, 1]");
      e.kind = PassEffect::Kind::kDark;
    } else {
      if (!(f >= 1 && f <= 4)) return Status::InvalidArgument(quoted + ": bright factor must be in [1, 4]");
      e.kind = PassEffect::Kind::kBright;
    }
    e.factor = f;
    return e;
  }
  if (name == "blur") {
    int k = 0;
    auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), k);
    if (arg.empty() || ec != std::errc() || end != arg.data() + arg.size())
      return Status::InvalidArgument(quoted + ": expected blur:K with an integer K");
    if (k < 3 || k > 31 || k % 2 == 0)
      return Status::InvalidArgument(quoted + ": blur kernel must be odd and in [3, 31]");
    e.kind = PassEffect::Kind::kBlur;
    e.kernel = k;
    return e;
  }
  return Status::InvalidArgument(quoted + ": unknown effect (none, dark:F, bright:F, blur:K)");
}

}  // namespace kd::config
