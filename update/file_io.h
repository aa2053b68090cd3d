// Helpers of kd_update: crash-safe file writes and whole-file reads shared by the manifest, key,
// delta and slot code (hex and byte codecs are base/hex.h and base/coding.h). WriteFileAtomic is
// also the learner's way to write artefacts; the rest is internal.
// All functions are thread-safe (no shared state); atomic writes to one path must not race.
#ifndef KD_UPDATE_FILE_IO_H_
#define KD_UPDATE_FILE_IO_H_

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kd::update::internal {

// Writes `bytes` to `path` so that after a crash at any point `path` holds either its old content
// or all of the new one: write to path + ".tmp" (created with `mode`), fsync it, rename over
// `path`, fsync the directory. IOError on failure (the temp file is removed).
Status WriteFileAtomic(const std::string& path, std::span<const uint8_t> bytes, unsigned mode = 0644);
Status WriteFileAtomic(const std::string& path, std::string_view text, unsigned mode = 0644);
// Whole file. NotFound when it does not exist, IOError when it cannot be read.
Result<std::vector<uint8_t>> ReadFile(const std::string& path);
// fsync of a directory, so that a rename or unlink inside it is durable.
Status SyncDir(const std::string& dir);

}  // namespace kd::update::internal

#endif  // KD_UPDATE_FILE_IO_H_
