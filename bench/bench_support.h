// What the process-level benchmarks (bench_cluster, bench_schedule) share: free ports, daemons as
// child processes, the learner's admin status, and simulated cameras that upload real frames of
// the sample video over ZeroMQ within their credit windows. Bench code only; header-only.
#ifndef KD_BENCH_BENCH_SUPPORT_H_
#define KD_BENCH_BENCH_SUPPORT_H_

#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <signal.h>
#include <string>
#include <unistd.h>
#include <vector>

#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <sys/socket.h>
#include <sys/wait.h>

#include "base/assets.h"
#include "base/check.h"
#include "media/image_ops.h"
#include "media/video_source.h"
#include "wire/endpoint.h"
#include "wire/message.h"

namespace kd::bench {

inline int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// A child process (argv[0] is the binary), stdout and stderr appended to `log`; SIGTERM and
// reaped on destruction.
class Child {
 public:
  Child(std::vector<std::string> argv, const std::string& log) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::execv(args[0], args.data());
      ::_exit(127);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }

 private:
  pid_t pid_ = -1;
};

// An admin command's reply (JSON object; empty when the learner does not answer).
inline nlohmann::json Admin(const std::filesystem::path& store, const std::string& request) {
  auto st = wire::AdminCall("ipc://" + (store / "admin.sock").string(), request, std::chrono::milliseconds(5000));
  if (!st.ok()) return nlohmann::json::object();
  nlohmann::json doc = nlohmann::json::parse(*st, nullptr, false);
  return doc.is_object() ? doc : nlohmann::json::object();
}

// Frames the teacher has labelled, all groups (replay and held out).
inline uint64_t Labelled(const nlohmann::json& status) {
  uint64_t n = 0;
  if (status.contains("groups")) {
    for (const auto& [name, g] : status["groups"].items()) {
      n += g.value("labelled", uint64_t{0}) + g.value("held_out", uint64_t{0});
    }
  }
  return n;
}

// A simulated camera: uploads frames [begin, end) of the sample video as `device`, starting at
// `first_seq`, each frame passed through `effect` (may be empty), one credit window at a time.
// Returns the frames acknowledged.
inline size_t UploadVideoFrames(int frames_port, const std::string& device, int64_t begin, int64_t end,
                                uint64_t first_seq, const std::function<media::Frame(const media::Frame&)>& effect) {
  media::SourceOptions so;
  so.begin = begin;
  so.end = end;
  auto source = media::OpenSource(AssetPath("vtest.avi"), so);
  KD_CHECK_MSG(source.ok(), source.status().ToString());
  wire::Context ctx;
  wire::ClientOptions co;
  co.endpoint = "tcp://127.0.0.1:" + std::to_string(frames_port);
  auto client = wire::Client::Connect(ctx, co);
  KD_CHECK(client.ok());
  uint32_t window = 0;
  for (int i = 0; i < 120 && window == 0; ++i) {
    wire::Message hello;
    hello.header.type = wire::MsgType::kHello;
    hello.header.device_id = device;
    (void)(*client)->Send(hello);
    auto reply = (*client)->Receive(std::chrono::milliseconds(1000));
    if (reply.ok() && reply->has_value() && (*reply)->header.type == wire::MsgType::kCredit) {
      window = (*reply)->header.credits;
    }
  }
  KD_CHECK_MSG(window > 0, "the learner never granted credits");
  size_t acked = 0;
  uint64_t seq = first_seq;
  bool more = true;
  while (more) {
    uint64_t sent = 0;
    for (; sent < window; ++sent) {
      auto frame = (*source)->Next();
      KD_CHECK(frame.ok());
      if (!frame->has_value()) {
        more = false;
        break;
      }
      const media::Frame f = effect ? effect(**frame) : **frame;
      wire::Message m;
      m.header.type = wire::MsgType::kFrame;
      m.header.device_id = device;
      m.header.seq = seq++;
      m.header.capture_time_us = f.timestamp_us + 1'700'000'000'000'000;
      m.header.width = f.width;
      m.header.height = f.height;
      m.header.selection_score = 1.f;
      auto jpeg = media::EncodeJpeg(f, 85).value();
      m.payload.assign(jpeg.begin(), jpeg.end());
      KD_CHECK((*client)->Send(m).ok());
    }
    uint64_t answered = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (answered < sent && std::chrono::steady_clock::now() < deadline) {
      auto reply = (*client)->Receive(std::chrono::milliseconds(500));
      if (reply.ok() && reply->has_value() && (*reply)->header.type == wire::MsgType::kAck) ++answered, ++acked;
    }
  }
  return acked;
}

}  // namespace kd::bench

#endif  // KD_BENCH_BENCH_SUPPORT_H_
