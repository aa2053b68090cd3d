// Logging on spdlog, behind a small streaming interface so spdlog stays private to base.
//   KD_LOG(kInfo) << "loaded " << n << " tensors";
// Thread-safe: each statement formats into its own buffer and emits one line.
#ifndef KD_BASE_LOG_H_
#define KD_BASE_LOG_H_

#include <sstream>
#include <string_view>

namespace kd {

enum class LogLevel { kDebug = 0, kInfo, kWarn, kError, kOff };

// Sets the process-wide minimum level (Default: kInfo). Logs go to stderr.
void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
bool LogEnabled(LogLevel level);
// Parses "debug" | "info" | "warn" | "error" | "off"; false on anything else.
bool ParseLogLevel(std::string_view name, LogLevel* level);

namespace internal {
class LogMessage {
 public:
  LogMessage(LogLevel level, const char* file, int line);
  ~LogMessage();
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  LogLevel level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace kd

#define KD_LOG(level)                             \
  if (!::kd::LogEnabled(::kd::LogLevel::level)) { \
  } else                                          \
    ::kd::internal::LogMessage(::kd::LogLevel::level, __FILE__, __LINE__).stream()

#endif  // KD_BASE_LOG_H_
