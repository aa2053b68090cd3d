// Status and Result<T>: expected failures as values (after leveldb's Status).
// A Status is OK or carries a code and a message; Result<T> holds a T or a non-OK Status.
// Both are plain values: copyable, thread-compatible (not thread-safe to mutate concurrently).
#ifndef KD_BASE_STATUS_H_
#define KD_BASE_STATUS_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/check.h"

namespace kd {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,     // bad input from a caller or a user (flag, config, range)
    kNotFound,            // a file, key or frame that does not exist
    kCorruption,          // bytes that fail a checksum or a format check
    kIOError,             // the OS refused (read, write, disk full)
    kUnavailable,         // a peer or device is not reachable now; retry may help
    kUnimplemented,       // a feature this build or model does not support
    kInternal,            // a failure inside a third-party library, caught in its wrapper
    kPermissionDenied,    // an unknown key, a bad signature, a peer not allowed to do this
    kFailedPrecondition,  // valid input the current state refuses (expired, below the version floor)
    kNoSpace,             // the disk, or a configured byte budget, is full: retry once space is freed
  };

  Status() = default;  // OK
  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string_view msg) { return {Code::kInvalidArgument, msg}; }
  static Status NotFound(std::string_view msg) { return {Code::kNotFound, msg}; }
  static Status Corruption(std::string_view msg) { return {Code::kCorruption, msg}; }
  static Status IOError(std::string_view msg) { return {Code::kIOError, msg}; }
  static Status Unavailable(std::string_view msg) { return {Code::kUnavailable, msg}; }
  static Status Unimplemented(std::string_view msg) { return {Code::kUnimplemented, msg}; }
  static Status Internal(std::string_view msg) { return {Code::kInternal, msg}; }
  static Status PermissionDenied(std::string_view msg) { return {Code::kPermissionDenied, msg}; }
  static Status FailedPrecondition(std::string_view msg) { return {Code::kFailedPrecondition, msg}; }
  static Status NoSpace(std::string_view msg) { return {Code::kNoSpace, msg}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsCorruption() const { return code_ == Code::kCorruption; }
  bool IsInvalidArgument() const { return code_ == Code::kInvalidArgument; }
  bool IsNoSpace() const { return code_ == Code::kNoSpace; }

  // Returns a copy whose message is "context: message" (keeps the code).
  Status WithContext(std::string_view context) const;
  // "OK" or "<CodeName>: <message>".
  std::string ToString() const;

 private:
  Status(Code code, std::string_view msg) : code_(code), message_(msg) {}
  Code code_ = Code::kOk;
  std::string message_;
};

const char* StatusCodeName(Status::Code code);

// Result<T>: a T or a non-OK Status. Accessing value() of an error is a bug (KD_CHECK).
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : status_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    KD_CHECK_MSG(!status_.ok(), "Result constructed from an OK Status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }
  T& value() & {
    KD_CHECK_MSG(ok(), status_.ToString());
    return *value_;
  }
  const T& value() const& {
    KD_CHECK_MSG(ok(), status_.ToString());
    return *value_;
  }
  T&& value() && {
    KD_CHECK_MSG(ok(), status_.ToString());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace kd

// Early return of a non-OK Status.
#define KD_RETURN_IF_ERROR(expr)                     \
  do {                                               \
    ::kd::Status kd_status_tmp_ = (expr);            \
    if (!kd_status_tmp_.ok()) return kd_status_tmp_; \
  } while (0)

#define KD_CONCAT_INNER_(a, b) a##b
#define KD_CONCAT_(a, b) KD_CONCAT_INNER_(a, b)
// KD_ASSIGN_OR_RETURN(auto x, MakeX()); returns the Status if MakeX() failed.
#define KD_ASSIGN_OR_RETURN(lhs, expr) KD_ASSIGN_OR_RETURN_IMPL_(KD_CONCAT_(kd_result_, __LINE__), lhs, expr)
#define KD_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

#endif  // KD_BASE_STATUS_H_
