// SystemdNotifier against a real AF_UNIX datagram socket standing in for systemd: the exact
// datagrams, the abstract-socket form, the watchdog variables, and the failures that must be
// values (a missing socket, a bad address), not crashes.
#include "daemon/common/sd_notify.h"

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <unistd.h>

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "tests/support/scratch_dir.h"

namespace kd::daemon {
namespace {

using std::chrono::microseconds;

// The receiving end that systemd would hold: a bound datagram socket, read with a timeout.
class FakeSystemd {
 public:
  // Binds `address`: a path, or an abstract name when it starts with '@'.
  explicit FakeSystemd(const std::string& address) : fd_(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) {
    EXPECT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    EXPECT_LT(address.size(), sizeof(addr.sun_path));
    address.copy(addr.sun_path, address.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
    if (address[0] == '@') {
      addr.sun_path[0] = '\0';
    } else {
      len += 1;
    }
    EXPECT_EQ(::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len), 0) << address;
    timeval timeout{2, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  }
  ~FakeSystemd() { ::close(fd_); }
  FakeSystemd(const FakeSystemd&) = delete;
  FakeSystemd& operator=(const FakeSystemd&) = delete;

  // The next datagram, or nullopt after 2 s without one.
  std::optional<std::string> Receive() {
    char buffer[4096];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n < 0) return std::nullopt;
    return std::string(buffer, static_cast<size_t>(n));
  }
  // True when no datagram is waiting.
  bool Empty() {
    char byte;
    return ::recv(fd_, &byte, 1, MSG_DONTWAIT | MSG_PEEK) < 0;
  }

 private:
  int fd_;
};

// Sets (or, with nullptr, unsets) an environment variable for one test, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string ThisPid() { return std::to_string(::getpid()); }

TEST(SdNotifyTest, UnsetSocketIsANoOp) {
  ScopedEnv socket("NOTIFY_SOCKET", nullptr);
  ScopedEnv usec("WATCHDOG_USEC", "2000000");
  ScopedEnv pid("WATCHDOG_PID", ThisPid().c_str());
  const SystemdNotifier notifier = SystemdNotifier::FromEnvironment();
  EXPECT_FALSE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_timeout(), microseconds(0));
  EXPECT_EQ(notifier.watchdog_interval(), microseconds(0));
  EXPECT_TRUE(notifier.Ready().ok());
  EXPECT_TRUE(notifier.Watchdog().ok());
  EXPECT_TRUE(notifier.Stopping().ok());
  EXPECT_TRUE(notifier.SetStatus("x").ok());
  EXPECT_TRUE(SystemdNotifier().Notify("READY=1").ok());
}

TEST(SdNotifyTest, EmptySocketVariableIsANoOp) {
  ScopedEnv socket("NOTIFY_SOCKET", "");
  EXPECT_FALSE(SystemdNotifier::FromEnvironment().enabled());
}

TEST(SdNotifyTest, SendsExactDatagramsToAPathSocket) {
  kd::testing::ScratchDir dir;
  const std::string path = dir / "notify.sock";
  FakeSystemd systemd(path);
  ScopedEnv socket("NOTIFY_SOCKET", path.c_str());
  ScopedEnv usec("WATCHDOG_USEC", "2000000");
  ScopedEnv pid("WATCHDOG_PID", ThisPid().c_str());
  const SystemdNotifier notifier = SystemdNotifier::FromEnvironment();
  ASSERT_TRUE(notifier.enabled());
  EXPECT_EQ(notifier.socket_address(), path);
  EXPECT_EQ(notifier.watchdog_timeout(), microseconds(2000000));
  EXPECT_EQ(notifier.watchdog_interval(), microseconds(1000000));

  const Status ready = notifier.Ready();
  ASSERT_TRUE(ready.ok()) << ready.ToString();
  EXPECT_EQ(systemd.Receive(), "READY=1");
  ASSERT_TRUE(notifier.Watchdog().ok());
  EXPECT_EQ(systemd.Receive(), "WATCHDOG=1");
  ASSERT_TRUE(notifier.SetStatus("serving 2 cameras\nstore 10% full").ok());
  EXPECT_EQ(systemd.Receive(), "STATUS=serving 2 cameras store 10% full");
  ASSERT_TRUE(notifier.ExtendTimeout(microseconds(30000000)).ok());
  EXPECT_EQ(systemd.Receive(), "EXTEND_TIMEOUT_USEC=30000000");
  ASSERT_TRUE(notifier.Notify("STOPPING=1\nSTATUS=draining").ok());
  EXPECT_EQ(systemd.Receive(), "STOPPING=1\nSTATUS=draining");
  ASSERT_TRUE(notifier.Stopping().ok());
  EXPECT_EQ(systemd.Receive(), "STOPPING=1");
  EXPECT_TRUE(systemd.Empty());
}

TEST(SdNotifyTest, SendsToAnAbstractSocket) {
  const std::string address = "@kd-sd-notify-test-" + ThisPid();
  FakeSystemd systemd(address);
  ScopedEnv socket("NOTIFY_SOCKET", address.c_str());
  ScopedEnv usec("WATCHDOG_USEC", nullptr);
  const SystemdNotifier notifier = SystemdNotifier::FromEnvironment();
  ASSERT_TRUE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_interval(), microseconds(0));
  ASSERT_TRUE(notifier.Ready().ok());
  EXPECT_EQ(systemd.Receive(), "READY=1");
  ASSERT_TRUE(notifier.Stopping().ok());
  EXPECT_EQ(systemd.Receive(), "STOPPING=1");
}

TEST(SdNotifyTest, WatchdogWithoutPidIsForThisProcess) {
  ScopedEnv socket("NOTIFY_SOCKET", "@kd-unused");
  ScopedEnv usec("WATCHDOG_USEC", "30000000");
  ScopedEnv pid("WATCHDOG_PID", nullptr);
  EXPECT_EQ(SystemdNotifier::FromEnvironment().watchdog_interval(), microseconds(15000000));
}

TEST(SdNotifyTest, WatchdogOfAnotherPidIsOff) {
  ScopedEnv socket("NOTIFY_SOCKET", "@kd-unused");
  ScopedEnv usec("WATCHDOG_USEC", "2000000");
  ScopedEnv pid("WATCHDOG_PID", std::to_string(::getpid() + 1).c_str());
  const SystemdNotifier notifier = SystemdNotifier::FromEnvironment();
  EXPECT_TRUE(notifier.enabled());  // READY/STOPPING still go out
  EXPECT_EQ(notifier.watchdog_timeout(), microseconds(0));
  EXPECT_EQ(notifier.watchdog_interval(), microseconds(0));
}

TEST(SdNotifyTest, MalformedWatchdogVariablesTurnTheWatchdogOff) {
  ScopedEnv socket("NOTIFY_SOCKET", "@kd-unused");
  for (const char* usec_text : {"", "0", "abc", "12x", "-5"}) {
    ScopedEnv usec("WATCHDOG_USEC", usec_text);
    ScopedEnv pid("WATCHDOG_PID", nullptr);
    EXPECT_EQ(SystemdNotifier::FromEnvironment().watchdog_timeout(), microseconds(0)) << "'" << usec_text << "'";
  }
  ScopedEnv usec("WATCHDOG_USEC", "2000000");
  ScopedEnv pid("WATCHDOG_PID", "not-a-pid");
  EXPECT_EQ(SystemdNotifier::FromEnvironment().watchdog_timeout(), microseconds(0));
}

TEST(SdNotifyTest, MissingSocketIsAnIOError) {
  kd::testing::ScratchDir dir;
  const SystemdNotifier notifier(dir / "no-such.sock", microseconds(2000000));
  const Status s = notifier.Ready();
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  EXPECT_NE(s.message().find("no-such.sock"), std::string::npos) << s.ToString();
  EXPECT_EQ(notifier.Watchdog().code(), Status::Code::kIOError);
}

TEST(SdNotifyTest, UnboundAbstractSocketIsAnIOError) {
  const SystemdNotifier notifier("@kd-sd-notify-test-nobody-" + ThisPid(), microseconds(0));
  EXPECT_EQ(notifier.Ready().code(), Status::Code::kIOError);
}

TEST(SdNotifyTest, BadAddressesAndStatesAreInvalidArguments) {
  EXPECT_TRUE(SystemdNotifier("relative.sock", microseconds(0)).Ready().IsInvalidArgument());
  EXPECT_TRUE(SystemdNotifier("@", microseconds(0)).Ready().IsInvalidArgument());
  EXPECT_TRUE(SystemdNotifier("/" + std::string(200, 'x'), microseconds(0)).Ready().IsInvalidArgument());
  EXPECT_TRUE(SystemdNotifier("@kd-unused", microseconds(0)).Notify("").IsInvalidArgument());
}

TEST(SdNotifyTest, ExplicitNotifierWithoutSocketHasNoWatchdog) {
  const SystemdNotifier notifier("", microseconds(2000000));
  EXPECT_FALSE(notifier.enabled());
  EXPECT_EQ(notifier.watchdog_interval(), microseconds(0));
}

}  // namespace
}  // namespace kd::daemon
