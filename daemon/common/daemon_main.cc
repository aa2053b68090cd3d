#include "daemon/common/daemon_main.h"

#include <cstdio>
#include <unistd.h>

#include "base/log.h"
#include "config/daemon_options.h"

namespace kd::daemon {

std::vector<std::string> ConfigOverrides(std::string_view env_prefix, const std::vector<std::string>& set_flags) {
  std::vector<std::string> all = config::EnvOverrides(env_prefix, environ);
  all.insert(all.end(), set_flags.begin(), set_flags.end());
  return all;
}

int ConfigError(const char* program, const Status& status) {
  std::fprintf(stderr, "%s: config error: %s\n", program, status.ToString().c_str());
  return 2;
}

void PrintConfig(const std::string& toml) { std::printf("%s", toml.c_str()); }

void ApplyLogLevel(const std::string& level) {
  LogLevel parsed;
  if (ParseLogLevel(level, &parsed)) SetLogLevel(parsed);
}

}  // namespace kd::daemon
