#include "base/coding.h"

#include <bit>
#include <cstring>

namespace kd {
namespace {

template <size_t N, typename Buffer>
void AppendLe(Buffer* out, uint64_t v) {
  for (size_t i = 0; i < N; ++i) out->push_back(static_cast<typename Buffer::value_type>((v >> (8 * i)) & 0xFFu));
}

template <typename Buffer>
void AppendBe64(Buffer* out, uint64_t v) {
  for (int i = 7; i >= 0; --i) out->push_back(static_cast<typename Buffer::value_type>((v >> (8 * i)) & 0xFFu));
}

template <typename Buffer>
void AppendBytes(Buffer* out, const void* data, size_t size) {
  const auto* p = static_cast<const typename Buffer::value_type*>(data);
  out->insert(out->end(), p, p + size);
}

}  // namespace

void PutU8(std::vector<uint8_t>* out, uint8_t v) { out->push_back(v); }
void PutLe16(std::vector<uint8_t>* out, uint16_t v) { AppendLe<2>(out, v); }
void PutLe32(std::vector<uint8_t>* out, uint32_t v) { AppendLe<4>(out, v); }
void PutLe64(std::vector<uint8_t>* out, uint64_t v) { AppendLe<8>(out, v); }
void PutBe64(std::vector<uint8_t>* out, uint64_t v) { AppendBe64(out, v); }
void PutBytes(std::vector<uint8_t>* out, const void* data, size_t size) { AppendBytes(out, data, size); }
void PutLengthPrefixed(std::vector<uint8_t>* out, std::string_view bytes) {
  PutLe32(out, static_cast<uint32_t>(bytes.size()));
  PutBytes(out, bytes.data(), bytes.size());
}

void PutU8(std::string* out, uint8_t v) { out->push_back(static_cast<char>(v)); }
void PutLe16(std::string* out, uint16_t v) { AppendLe<2>(out, v); }
void PutLe32(std::string* out, uint32_t v) { AppendLe<4>(out, v); }
void PutLe64(std::string* out, uint64_t v) { AppendLe<8>(out, v); }
void PutBe64(std::string* out, uint64_t v) { AppendBe64(out, v); }
void PutBytes(std::string* out, const void* data, size_t size) { AppendBytes(out, data, size); }
void PutLengthPrefixed(std::string* out, std::string_view bytes) {
  PutLe32(out, static_cast<uint32_t>(bytes.size()));
  out->append(bytes);
}

bool ByteReader::Bytes(size_t n, std::span<const uint8_t>* out) {
  if (!ok_ || n > remaining()) {
    ok_ = false;
    return false;
  }
  *out = bytes_.subspan(pos_, n);
  pos_ += n;
  return true;
}

bool ByteReader::CopyTo(void* dst, size_t n) {
  std::span<const uint8_t> b;
  if (!Bytes(n, &b)) return false;
  if (n != 0) std::memcpy(dst, b.data(), n);
  return true;
}

bool ByteReader::U8(uint8_t* v) {
  std::span<const uint8_t> b;
  if (!Bytes(1, &b)) return false;
  *v = b[0];
  return true;
}

bool ByteReader::U16(uint16_t* v) {
  std::span<const uint8_t> b;
  if (!Bytes(2, &b)) return false;
  *v = DecodeLe16(b.data());
  return true;
}

bool ByteReader::U32(uint32_t* v) {
  std::span<const uint8_t> b;
  if (!Bytes(4, &b)) return false;
  *v = DecodeLe32(b.data());
  return true;
}

bool ByteReader::U64(uint64_t* v) {
  std::span<const uint8_t> b;
  if (!Bytes(8, &b)) return false;
  *v = DecodeLe64(b.data());
  return true;
}

bool ByteReader::I32(int32_t* v) {
  uint32_t u = 0;
  if (!U32(&u)) return false;
  *v = static_cast<int32_t>(u);
  return true;
}

bool ByteReader::I64(int64_t* v) {
  uint64_t u = 0;
  if (!U64(&u)) return false;
  *v = static_cast<int64_t>(u);
  return true;
}

bool ByteReader::F32(float* v) {
  uint32_t u = 0;
  if (!U32(&u)) return false;
  *v = std::bit_cast<float>(u);
  return true;
}

bool ByteReader::LengthPrefixed(size_t max_len, std::string* out) {
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

}  // namespace kd
