// Fixed-width integers as bytes: little-endian for every binary format (.kdw, deltas, manifests,
// store values, teacher blobs), big-endian for keys that must sort by number. The one home of these
// codecs. Pure functions, thread-safe; a ByteReader is not (one reader per thread).
#ifndef KD_BASE_CODING_H_
#define KD_BASE_CODING_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kd {

// ---- Appenders: to a byte vector or a std::string --------------------------------------------------

void PutU8(std::vector<uint8_t>* out, uint8_t v);
void PutLe16(std::vector<uint8_t>* out, uint16_t v);
void PutLe32(std::vector<uint8_t>* out, uint32_t v);
void PutLe64(std::vector<uint8_t>* out, uint64_t v);
void PutBe64(std::vector<uint8_t>* out, uint64_t v);
void PutBytes(std::vector<uint8_t>* out, const void* data, size_t size);
// A u32 little-endian length, then the bytes. REQUIRES: bytes.size() < 2^32.
void PutLengthPrefixed(std::vector<uint8_t>* out, std::string_view bytes);

void PutU8(std::string* out, uint8_t v);
void PutLe16(std::string* out, uint16_t v);
void PutLe32(std::string* out, uint32_t v);
void PutLe64(std::string* out, uint64_t v);
void PutBe64(std::string* out, uint64_t v);
void PutBytes(std::string* out, const void* data, size_t size);
void PutLengthPrefixed(std::string* out, std::string_view bytes);

// ---- Decoders of memory the caller has bounds-checked (p points at 2, 4 or 8 readable bytes) -----
// Inline: CRC32C and the record decoders call them per word.

namespace internal {
inline uint64_t DecodeLe(const void* p, size_t n) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint64_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= uint64_t{b[i]} << (8 * i);
  return v;
}
}  // namespace internal
inline uint16_t DecodeLe16(const void* p) { return static_cast<uint16_t>(internal::DecodeLe(p, 2)); }
inline uint32_t DecodeLe32(const void* p) { return static_cast<uint32_t>(internal::DecodeLe(p, 4)); }
inline uint64_t DecodeLe64(const void* p) { return internal::DecodeLe(p, 8); }
inline uint64_t DecodeBe64(const void* p) {
  const auto* b = static_cast<const uint8_t*>(p);
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = (v << 8) | b[i];
  return v;
}

// ---- A bounds-checked little-endian reader over untrusted bytes ------------------------------------

class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  explicit ByteReader(std::string_view bytes) : bytes_(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()) {}

  // Each returns false, and leaves the reader failed (every later read fails too), when fewer bytes
  // remain than it needs; the output is then unspecified.
  bool U8(uint8_t* v);
  bool U16(uint16_t* v);
  bool U32(uint32_t* v);
  bool U64(uint64_t* v);
  bool I32(int32_t* v);
  bool I64(int64_t* v);
  bool F32(float* v);  // the IEEE-754 bits as a u32
  // A view of the next n bytes (valid as long as the underlying buffer).
  bool Bytes(size_t n, std::span<const uint8_t>* out);
  // The next n bytes copied to dst.
  bool CopyTo(void* dst, size_t n);
  // A u32 length (at most max_len, else failed) and that many bytes: what PutLengthPrefixed wrote.
  bool LengthPrefixed(size_t max_len, std::string* out);

  size_t remaining() const { return bytes_.size() - pos_; }
  bool ok() const { return ok_; }

 private:
  std::span<const uint8_t> bytes_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace kd

#endif  // KD_BASE_CODING_H_
