#include "update/file_io.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

#include <sys/stat.h>

#include "base/file_system.h"

namespace kd::update::internal {

Status SyncDir(const std::string& dir) { return FileSystem::Default().SyncDir(dir); }

Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> bytes, unsigned mode) {
  return kd::WriteFileAtomic(FileSystem::Default(), path, bytes, mode);
}

Status WriteFileAtomic(const std::string& path, std::string_view text, unsigned mode) {
  return WriteFileAtomic(path, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()),
                         mode);
}

Result<std::vector<uint8_t>> ReadFile(const std::string& path) { return FileSystem::Default().ReadFile(path); }

}  // namespace kd::update::internal
