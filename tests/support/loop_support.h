// What the end-to-end tests of the continual loop share: free TCP ports, config files, a factory
// student, the real daemons as child processes (so a test can kill -9 them) and polling. Test
// code only; every function is used from the test's own thread.
#ifndef KD_TESTS_SUPPORT_LOOP_SUPPORT_H_
#define KD_TESTS_SUPPORT_LOOP_SUPPORT_H_

#include <atomic>
#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <optional>
#include <signal.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "base/assets.h"
#include "base/clock.h"
#include "model/student.h"
#include "model/weights_file.h"

namespace kd::testing {

// A TCP port on 127.0.0.1 that was free a moment ago.
inline int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline void WriteText(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

inline bool AssetsPresent() {
  return std::filesystem::exists(AssetPath("centernet.json")) && std::filesystem::exists(AssetPath("vtest.avi"));
}

// A factory model for the devices: an untrained student at the camera's student size (768x576 ->
// 384x288). Training from it shows progress within a few rounds.
// `one_to_one`: an NMS-free student (what the built-in recipe and CAKD train).
inline std::string MakeFactoryModel(const std::filesystem::path& dir, bool one_to_one = false) {
  model::StudentOptions so;
  so.input_width = 384;
  so.input_height = 288;
  so.one_to_one = one_to_one;
  model::Student s(so);
  s->eval();
  const std::string path = (dir / (one_to_one ? "factory_o2o.kdw" : "factory.kdw")).string();
  model::WeightsMeta meta;
  meta.model_version = 1;
  EXPECT_TRUE(model::SaveWeights(path, *s, meta).ok());
  return path;
}

// A daemon started as a child process (the real binary), so that tests can kill it with -9.
// `log` ("" = inherit) receives its stdout and stderr.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> argv, std::string log) : argv_(std::move(argv)), log_(std::move(log)) {}
  ~ChildProcess() { Kill(SIGKILL); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  void Start() {
    std::vector<char*> args;  // prepared before fork: the child only dup2s and execs
    for (auto& a : argv_) args.push_back(a.data());
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      if (!log_.empty()) {
        const int fd = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) ::dup2(fd, 1), ::dup2(fd, 2);
      }
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  pid_t pid() const { return pid_; }
  // Sends `sig` without waiting (SIGSTOP / SIGCONT).
  void Signal(int sig) const {
    if (pid_ > 0) ::kill(pid_, sig);
  }
  // Waits up to `timeout` for the process to exit by itself; its exit status (or -signal), or
  // nullopt when it is still running.
  std::optional<int> WaitExit(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (pid_ > 0) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      }
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return std::nullopt;
  }
  // Sends `sig` and waits for the exit; returns the exit status (or -signal).
  int Kill(int sig) {
    if (pid_ <= 0) return 0;
    ::kill(pid_, sig);
    if (sig != SIGKILL) ::kill(pid_, SIGCONT);  // a stopped process cannot act on SIGTERM
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
  }

 private:
  std::vector<std::string> argv_;
  std::string log_;
  pid_t pid_ = -1;
};

#ifdef KD_KDLEARND
// kdlearnd serve --config CONFIG (the binary the test target names), its output appended to `log`
// ("" = inherit). Its HTTP server takes any free port: tests run side by side.
class Learner : public ChildProcess {
 public:
  explicit Learner(const std::string& config, std::string log = "")
      : ChildProcess({KD_KDLEARND, "serve", "--config", config, "--set", "http.listen=\"127.0.0.1:0\""},
                     std::move(log)) {}
};
#endif

// Polls `pred` every 200 ms until it holds or `timeout` passes; returns its last value.
template <typename Pred>
bool WaitFor(Pred pred, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return pred();
}

// The inference clock of an edge (EdgeSeams::inference_clock): real time, plus `step` on every
// reading while slow() is on, so that every inference the agent times looks `step` slower.
class SlowInferenceClock final : public Clock {
 public:
  explicit SlowInferenceClock(int64_t step_nanos) : step_(step_nanos) {}
  int64_t MonotonicNanos() const override {
    if (slow_) extra_ += step_;
    return SystemClock::Get().MonotonicNanos() + extra_.load();
  }
  int64_t WallMicros() const override { return SystemClock::Get().WallMicros(); }
  void set_slow(bool on) { slow_ = on; }

 private:
  const int64_t step_;
  std::atomic<bool> slow_{false};
  mutable std::atomic<int64_t> extra_{0};
};

}  // namespace kd::testing

#endif  // KD_TESTS_SUPPORT_LOOP_SUPPORT_H_
