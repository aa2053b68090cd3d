#include "daemon/common/sd_notify.h"

#include <cerrno>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unistd.h>
#include <utility>

#include <sys/socket.h>
#include <sys/un.h>

namespace kd::daemon {
namespace {

// True when `text` is a decimal number with nothing around it (stored in *value).
bool ParseUnsigned(const char* text, unsigned long long* value) {
  if (text == nullptr || *text == '\0') return false;
  const char* end = text + std::strlen(text);
  auto [ptr, ec] = std::from_chars(text, end, *value);
  return ec == std::errc() && ptr == end;
}

// Closes a descriptor when it goes out of scope.
class ScopedFd {
 public:
  explicit ScopedFd(int fd) : fd_(fd) {}
  ~ScopedFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  ScopedFd(const ScopedFd&) = delete;
  ScopedFd& operator=(const ScopedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

SystemdNotifier SystemdNotifier::FromEnvironment() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  if (socket == nullptr || *socket == '\0') return {};
  std::chrono::microseconds timeout{0};
  unsigned long long usec = 0;
  unsigned long long pid = 0;
  if (ParseUnsigned(std::getenv("WATCHDOG_USEC"), &usec) && usec > 0) {
    const char* pid_text = std::getenv("WATCHDOG_PID");
    const bool for_this_process =
        pid_text == nullptr || (ParseUnsigned(pid_text, &pid) && pid == static_cast<unsigned long long>(::getpid()));
    if (for_this_process) timeout = std::chrono::microseconds(static_cast<std::chrono::microseconds::rep>(usec));
  }
  return {socket, timeout};
}

SystemdNotifier::SystemdNotifier(std::string socket_address, std::chrono::microseconds watchdog_timeout)
    : socket_address_(std::move(socket_address)),
      watchdog_timeout_(socket_address_.empty() ? std::chrono::microseconds(0) : watchdog_timeout) {}

Status SystemdNotifier::Notify(std::string_view state) const {
  if (!enabled()) return Status::Ok();
  if (state.empty()) return Status::InvalidArgument("sd_notify: empty state");
  const std::string& address = socket_address_;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if ((address[0] != '/' && address[0] != '@') || address.size() < 2 || address.size() >= sizeof(addr.sun_path)) {
    return Status::InvalidArgument("sd_notify: NOTIFY_SOCKET '" + address +
                                   "' is not an absolute path or an @abstract name of at most " +
                                   std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, address.data(), address.size());
  // An abstract name starts with a NUL byte and its length is exact (no terminating NUL counted).
  socklen_t addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  if (address[0] == '@') {
    addr.sun_path[0] = '\0';
  } else {
    addr_len += 1;  // the path's terminating NUL (already zero)
  }
  ScopedFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return Status::IOError(std::string("sd_notify: socket: ") + std::strerror(errno));
  ssize_t sent = 0;
  do {
    sent = ::sendto(fd.get(), state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&addr),
                    addr_len);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return Status::IOError("sd_notify: send to " + address + ": " + std::strerror(errno));
  if (static_cast<size_t>(sent) != state.size()) return Status::IOError("sd_notify: short send to " + address);
  return Status::Ok();
}

Status SystemdNotifier::SetStatus(std::string_view text) const {
  std::string line = "STATUS=";
  line.append(text);
  for (size_t i = 7; i < line.size(); ++i) {
    if (line[i] == '\n') line[i] = ' ';
  }
  return Notify(line);
}

Status SystemdNotifier::ExtendTimeout(std::chrono::microseconds extension) const {
  return Notify("EXTEND_TIMEOUT_USEC=" + std::to_string(extension.count()));
}

}  // namespace kd::daemon
