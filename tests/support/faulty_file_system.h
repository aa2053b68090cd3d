// FaultyFileSystem: a FileSystem for tests that passes every operation to a real one, except the
// i-th (0-based, counted over all operations including those of the files it opens), which fails
// with the chosen fault. Walk i over 0, 1, 2, ... until `triggered()` stays false to fail every
// operation of a protocol once (ncnn's failing-allocator loop).
//   kNoSpace      the operation returns NoSpace and does nothing (ENOSPC)
//   kIOError      the operation returns IOError and does nothing (EIO)
//   kShortWrite   an append writes the first half of its bytes, then returns NoSpace (other
//                 operations: as kNoSpace)
//   kCrash        the process "dies" before the operation: it and every later one fail without
//                 touching the disk; the test then reopens the directory with the real FileSystem
//   kTornCrash    as kCrash, but an append first writes half of its bytes (power cut mid-write)
// Not thread-safe (one test thread).
#ifndef KD_TESTS_SUPPORT_FAULTY_FILE_SYSTEM_H_
#define KD_TESTS_SUPPORT_FAULTY_FILE_SYSTEM_H_

#include <memory>
#include <string>
#include <vector>

#include "base/file_system.h"

namespace kd::testing {

enum class Fault { kNoSpace, kIOError, kShortWrite, kCrash, kTornCrash };

inline const char* FaultName(Fault f) {
  switch (f) {
    case Fault::kNoSpace:
      return "ENOSPC";
    case Fault::kIOError:
      return "EIO";
    case Fault::kShortWrite:
      return "short write";
    case Fault::kCrash:
      return "crash";
    case Fault::kTornCrash:
      return "torn write + crash";
  }
  return "?";
}

inline const std::vector<Fault>& AllFaults() {
  static const std::vector<Fault> all = {Fault::kNoSpace, Fault::kIOError, Fault::kShortWrite, Fault::kCrash,
                                         Fault::kTornCrash};
  return all;
}

class FaultyFileSystem final : public FileSystem {
 public:
  FaultyFileSystem(FileSystem& base, Fault fault, int fail_at) : base_(base), fault_(fault), fail_at_(fail_at) {}

  bool triggered() const { return triggered_; }
  bool crashed() const { return crashed_; }
  int operations() const { return ops_; }

  // Called before each operation: a non-OK status means "fail it"; *half is set when an append
  // should write half of its bytes first.
  Status Gate(const std::string& what, bool* half = nullptr) {
    if (crashed_) return Status::IOError("crashed before " + what);
    if (ops_++ != fail_at_) return Status::Ok();
    triggered_ = true;
    const bool is_append = half != nullptr;
    switch (fault_) {
      case Fault::kNoSpace:
        return Status::NoSpace("injected ENOSPC: " + what);
      case Fault::kIOError:
        return Status::IOError("injected EIO: " + what);
      case Fault::kShortWrite:
        if (is_append) *half = true;
        return Status::NoSpace("injected short write: " + what);
      case Fault::kCrash:
        crashed_ = true;
        return Status::IOError("injected crash: " + what);
      case Fault::kTornCrash:
        crashed_ = true;
        if (is_append) *half = true;
        return Status::IOError("injected torn write and crash: " + what);
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path, OpenMode mode, unsigned perms) override {
    KD_RETURN_IF_ERROR(Gate("open " + path));
    KD_ASSIGN_OR_RETURN(auto file, base_.OpenWritable(path, mode, perms));
    return std::unique_ptr<WritableFile>(std::make_unique<File>(*this, path, std::move(file)));
  }
  Result<std::vector<uint8_t>> ReadFile(const std::string& path) override {
    KD_RETURN_IF_ERROR(Gate("read " + path));
    return base_.ReadFile(path);
  }
  Result<uint64_t> FileSize(const std::string& path) override {
    KD_RETURN_IF_ERROR(Gate("stat " + path));
    return base_.FileSize(path);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    KD_RETURN_IF_ERROR(Gate("rename " + from));
    return base_.Rename(from, to);
  }
  Status Remove(const std::string& path) override {
    KD_RETURN_IF_ERROR(Gate("remove " + path));
    return base_.Remove(path);
  }
  Status SyncDir(const std::string& dir) override {
    KD_RETURN_IF_ERROR(Gate("sync dir " + dir));
    return base_.SyncDir(dir);
  }
  Status CreateDirs(const std::string& dir) override {
    KD_RETURN_IF_ERROR(Gate("mkdir " + dir));
    return base_.CreateDirs(dir);
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    KD_RETURN_IF_ERROR(Gate("list " + dir));
    return base_.ListDir(dir);
  }

 private:
  class File final : public WritableFile {
   public:
    File(FaultyFileSystem& fs, std::string path, std::unique_ptr<WritableFile> real)
        : fs_(fs), path_(std::move(path)), real_(std::move(real)) {}
    Status Append(std::span<const uint8_t> bytes) override {
      bool half = false;
      Status gate = fs_.Gate("append " + path_, &half);
      if (!gate.ok()) {
        if (half) (void)real_->Append(bytes.first(bytes.size() / 2));
        return gate;
      }
      return real_->Append(bytes);
    }
    Status Truncate(uint64_t size) override {
      KD_RETURN_IF_ERROR(fs_.Gate("truncate " + path_));
      return real_->Truncate(size);
    }
    Status Sync() override {
      KD_RETURN_IF_ERROR(fs_.Gate("sync " + path_));
      return real_->Sync();
    }
    Status Close() override {
      KD_RETURN_IF_ERROR(fs_.Gate("close " + path_));
      return real_->Close();
    }

   private:
    FaultyFileSystem& fs_;
    std::string path_;
    std::unique_ptr<WritableFile> real_;
  };

  FileSystem& base_;
  Fault fault_;
  int fail_at_;
  int ops_ = 0;
  bool triggered_ = false, crashed_ = false;
};

}  // namespace kd::testing

#endif  // KD_TESTS_SUPPORT_FAULTY_FILE_SYSTEM_H_
