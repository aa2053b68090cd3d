// Text helpers for messages that quote untrusted bytes (device ids, keys, config text).
// Pure functions; thread-safe.
#ifndef KD_BASE_TEXT_H_
#define KD_BASE_TEXT_H_

#include <string>
#include <string_view>

namespace kd {

// `bytes` for a log line or an error message: printable ASCII as is, every other byte (and the
// backslash) as \xNN, so that no control character or invalid UTF-8 reaches a terminal or a log.
std::string PrintableBytes(std::string_view bytes);

// `text` up to its first newline: what an exception's message says before the C++ backtrace that
// LibTorch appends to it.
std::string FirstLine(std::string_view text);

}  // namespace kd

#endif  // KD_BASE_TEXT_H_
