// FileSystem: the seam through which the daemons write and read their own small files (the edge's
// model slots and state file, resumable downloads, the learner's artefacts, key files), after
// leveldb's Env. Production code uses FileSystem::Default() (POSIX); tests substitute one that
// fails the i-th operation with ENOSPC, EIO, a short write or a crash, to show that nothing
// committed is lost and no half-written file is ever loaded (tests/base/file_system_test.cc and
// tests/update/slots_fault_test.cc).
//
// Every operation is a primitive the fault injector can fail on its own: open, append, sync,
// close, rename, remove, directory sync, read, size, list. Multi-step protocols (WriteFileAtomic)
// are written once, on top of them.
// Errors: NoSpace for ENOSPC (and a short write), NotFound for a missing path, IOError otherwise;
// messages name the path. Thread-safety: Default() is stateless and thread-safe; a WritableFile
// belongs to one thread.
#ifndef KD_BASE_FILE_SYSTEM_H_
#define KD_BASE_FILE_SYSTEM_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kd {

class WritableFile {
 public:
  virtual ~WritableFile() = default;
  // Appends all of `bytes` (a short write is NoSpace; what was written stays).
  virtual Status Append(std::span<const uint8_t> bytes) = 0;
  // Cuts the file back to `size` bytes (to undo a partial append).
  virtual Status Truncate(uint64_t size) = 0;
  // Data (and the size) on stable storage.
  virtual Status Sync() = 0;
  // Releases the descriptor (also done by the destructor, ignoring errors).
  virtual Status Close() = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  static FileSystem& Default();

  enum class OpenMode { kTruncate, kAppend };
  // Creates the file when missing, with permissions `mode` (forced, not masked, on kTruncate, so a
  // stale file cannot keep looser permissions than a secret needs).
  virtual Result<std::unique_ptr<WritableFile>> OpenWritable(const std::string& path, OpenMode open_mode,
                                                             unsigned mode) = 0;
  virtual Result<std::vector<uint8_t>> ReadFile(const std::string& path) = 0;
  // NotFound when absent.
  virtual Result<uint64_t> FileSize(const std::string& path) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // OK when the file does not exist.
  virtual Status Remove(const std::string& path) = 0;
  // fsync of a directory, so that a rename or removal inside it is durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status CreateDirs(const std::string& dir) = 0;
  // File names (not paths) in `dir`.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
};

// Writes `bytes` to `path` so that after a crash at any point `path` holds either its old content
// or all of the new one: path + ".tmp" (created with `mode`), append, sync, close, rename over
// `path`, sync the directory. On failure the temp file is removed (best effort: a crash leaves it,
// and readers never read *.tmp). An error from the final directory sync comes after the rename:
// `path` may then already hold the new content (never a mix).
Status WriteFileAtomic(FileSystem& fs, const std::string& path, std::span<const uint8_t> bytes, unsigned mode = 0644);

// The directory part of `path` ("." when it has none).
std::string DirName(const std::string& path);

}  // namespace kd

#endif  // KD_BASE_FILE_SYSTEM_H_
