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

std::string ToHex(std::span<const uint8_t> bytes) {
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  hex.reserve(bytes.size() * 2);
  for (uint8_t c : bytes) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  return hex;
}

std::string ToHex(std::string_view bytes) {
  return ToHex(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
}

bool FromHex(std::string_view hex, std::string* out) {
  if (hex.size() % 2 != 0) return false;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string bytes;
  bytes.reserve(hex.size() / 2);
  for (size_t i = 0; i < hex.size(); i += 2) {
    const int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    bytes.push_back(static_cast<char>(hi << 4 | lo));
  }
  *out = std::move(bytes);
  return true;
}

bool IsSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

void PutU8(std::vector<uint8_t>& out, uint8_t v) { out.push_back(v); }
void PutU16(std::vector<uint8_t>& out, uint16_t v) {
  for (int i = 0; i < 2; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutU32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutU64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void PutBytes(std::vector<uint8_t>& out, const void* data, size_t size) {
  const auto* p = static_cast<const uint8_t*>(data);
  out.insert(out.end(), p, p + size);
}
void PutString(std::vector<uint8_t>& out, std::string_view s) {
  PutU32(out, static_cast<uint32_t>(s.size()));
  PutBytes(out, s.data(), s.size());
}

bool Reader::Bytes(size_t n, std::span<const uint8_t>* out) {
  if (!ok_ || n > remaining()) {
    ok_ = false;
    return false;
  }
  *out = bytes_.subspan(pos_, n);
  pos_ += n;
  return true;
}

namespace {
template <typename T>
bool ReadLe(Reader& r, T* v) {
  std::span<const uint8_t> b;
  if (!r.Bytes(sizeof(T), &b)) return false;
  using U = std::make_unsigned_t<T>;
  U x = 0;
  for (size_t i = 0; i < sizeof(T); ++i) x |= static_cast<U>(static_cast<U>(b[i]) << (8 * i));
  *v = static_cast<T>(x);
  return true;
}
}  // namespace

bool Reader::U8(uint8_t* v) { return ReadLe(*this, v); }
bool Reader::U16(uint16_t* v) { return ReadLe(*this, v); }
bool Reader::U32(uint32_t* v) { return ReadLe(*this, v); }
bool Reader::U64(uint64_t* v) { return ReadLe(*this, v); }
bool Reader::I64(int64_t* v) { return ReadLe(*this, v); }

bool Reader::String(size_t max_len, std::string* out) {
  uint32_t n = 0;
  if (!U32(&n)) return false;
  if (n > max_len) {
    ok_ = false;
    return false;
  }
  std::span<const uint8_t> b;
  if (!Bytes(n, &b)) return false;
  out->assign(reinterpret_cast<const char*>(b.data()), b.size());
  return true;
}

}  // namespace kd::update::internal
