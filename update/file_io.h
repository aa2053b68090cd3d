// Helpers of kd_update: crash-safe file writes, whole-file reads, hex and little-endian byte codecs
// shared by the manifest, key, delta and slot code. WriteFileAtomic is also the learner's way to
// write artefacts; the rest is internal.
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

// Lowercase hex; FromHex accepts either case and fails (nullopt-like: false) on odd length or a
// non-hex character.
std::string ToHex(std::span<const uint8_t> bytes);
std::string ToHex(std::string_view bytes);
bool FromHex(std::string_view hex, std::string* out);
// True for exactly 64 lowercase hex characters (a SHA-256 as this module writes it).
bool IsSha256Hex(std::string_view s);

// Little-endian appenders and a bounds-checked reader over untrusted bytes.
void PutU8(std::vector<uint8_t>& out, uint8_t v);
void PutU16(std::vector<uint8_t>& out, uint16_t v);
void PutU32(std::vector<uint8_t>& out, uint32_t v);
void PutU64(std::vector<uint8_t>& out, uint64_t v);
void PutBytes(std::vector<uint8_t>& out, const void* data, size_t size);
// u32 length + bytes.
void PutString(std::vector<uint8_t>& out, std::string_view s);

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  // Each returns false (and leaves the reader failed) when fewer bytes remain than needed.
  bool U8(uint8_t* v);
  bool U16(uint16_t* v);
  bool U32(uint32_t* v);
  bool U64(uint64_t* v);
  bool I64(int64_t* v);
  // A view of the next n bytes (valid as long as the underlying buffer).
  bool Bytes(size_t n, std::span<const uint8_t>* out);
  // u32 length (at most max_len) + bytes.
  bool String(size_t max_len, std::string* out);
  size_t remaining() const { return bytes_.size() - pos_; }
  bool ok() const { return ok_; }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace kd::update::internal

#endif  // KD_UPDATE_FILE_IO_H_
