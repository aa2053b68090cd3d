// libFuzzer target: the daemons' TOML configuration (config/daemon_options.h), parsed from memory
// with ParseEdgeOptions and ParseLearnerOptions. A config file is operator input, not network
// input, but a bad one must be an error value, never a crash. The input is the file's text; after
// a NUL byte, NUL-separated "section.key=value" overrides follow (--set). Options that load must
// survive ToToml -> parse unchanged, as daemon_options.h promises.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/check.h"
#include "config/daemon_options.h"

namespace {

constexpr char kPath[] = "/fuzz/conf/daemon.toml";  // names the text; never opened

template <typename Options, typename ParseFn>
void RoundTrip(ParseFn parse, std::string_view toml, const std::vector<std::string>& overrides) {
  kd::Result<Options> options = parse(toml, kPath, overrides);
  if (!options.ok()) return;
  const std::string again = kd::config::ToToml(*options);
  kd::Result<Options> reloaded = parse(again, kPath, {});
  KD_CHECK_MSG(reloaded.ok(), "ToToml output does not load back: " + reloaded.status().ToString() + "\n" + again);
  KD_CHECK_MSG(*reloaded == *options, "ToToml output loads back to other options:\n" + again);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string_view toml = in.substr(0, nul);
  std::vector<std::string> overrides;
  for (size_t at = nul; at != std::string_view::npos && at < in.size();) {
    const size_t next = in.find('\0', at + 1);
    overrides.emplace_back(in.substr(at + 1, next == std::string_view::npos ? std::string_view::npos : next - at - 1));
    at = next;
  }
  RoundTrip<kd::config::EdgeOptions>(kd::config::ParseEdgeOptions, toml, overrides);
  RoundTrip<kd::config::LearnerOptions>(kd::config::ParseLearnerOptions, toml, overrides);
  return 0;
}
