// The start of a daemon, shared by `kdedge run` and `kdlearnd serve` so that their flags, messages
// and exit codes cannot drift apart: environment overrides, then --set, then the config file;
// --print-config; the preflight of the files the config names; --check-config; the log level.
// Torch-free. Call from the main thread, before the daemon starts its threads (SetLogLevel).
#ifndef KD_DAEMON_COMMON_DAEMON_MAIN_H_
#define KD_DAEMON_COMMON_DAEMON_MAIN_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace kd::daemon {

// The config flags of a daemon's command line.
struct ConfigFlags {
  std::string config_path;             // --config ("" = defaults and overrides only)
  std::vector<std::string> overrides;  // --set section.key=value, in order
  bool check_only = false;             // --check-config: validate and exit
  bool print_config = false;           // --print-config: print the effective config as TOML
};

// How one daemon loads and checks its options.
template <typename Options>
struct DaemonConfig {
  const char* program;          // "kdedge": the prefix of messages
  std::string_view env_prefix;  // config::kEdgeEnvPrefix: its variables come before --set
  Result<Options> (*load)(const std::string& path, const std::vector<std::string>& overrides);
  std::string (*to_toml)(const Options& options);
  Status (*preflight)(const Options& options);  // reads and checks the files the options name
  const std::string& (*log_level)(const Options& options);
};

// What the start decided: run with `options`, or exit now with `exit_code`.
template <typename Options>
struct Startup {
  std::optional<Options> options;  // set: run the daemon with these
  int exit_code = 0;               // else: 0 after --check-config, 2 for a config error
};

// The overrides of a run: the environment's (`env_prefix`) first, then `set_flags`, so that the
// precedence is --set > environment > file > defaults.
std::vector<std::string> ConfigOverrides(std::string_view env_prefix, const std::vector<std::string>& set_flags);
// Prints "<program>: config error: <status>" to stderr; returns the exit code of a config error, 2.
int ConfigError(const char* program, const Status& status);
// Prints the effective config (--print-config) to stdout.
void PrintConfig(const std::string& toml);
// Sets the process log level from a config value (trace, debug, info, warn, error); the loaders
// have checked it; one the logger does not have (trace) leaves the level as it is.
void ApplyLogLevel(const std::string& level);

template <typename Options>
Startup<Options> StartDaemon(const DaemonConfig<Options>& daemon, const ConfigFlags& flags) {
  auto options = daemon.load(flags.config_path, ConfigOverrides(daemon.env_prefix, flags.overrides));
  if (!options.ok()) return {std::nullopt, ConfigError(daemon.program, options.status())};
  if (flags.print_config) PrintConfig(daemon.to_toml(*options));
  // The files the config names are checked before anything starts, for --check-config and for the
  // daemon alike: a missing or wrong key, recipe, model or video is a config error (exit 2).
  if (Status s = daemon.preflight(*options); !s.ok()) return {std::nullopt, ConfigError(daemon.program, s)};
  if (flags.check_only) return {std::nullopt, 0};
  ApplyLogLevel(daemon.log_level(*options));
  return {std::move(options).value(), 0};
}

}  // namespace kd::daemon

#endif  // KD_DAEMON_COMMON_DAEMON_MAIN_H_
