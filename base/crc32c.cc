#include "base/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include "base/coding.h"

namespace kd {
namespace {

struct Crc32cTables {
  std::array<std::array<uint32_t, 256>, 8> t{};
};

constexpr Crc32cTables MakeCrc32cTables() {
  Crc32cTables tables;
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    tables.t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (size_t s = 1; s < 8; ++s) tables.t[s][i] = (tables.t[s - 1][i] >> 8) ^ tables.t[0][tables.t[s - 1][i] & 0xFFu];
  }
  return tables;
}

constexpr Crc32cTables kCrc = MakeCrc32cTables();

}  // namespace

namespace internal {
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  const auto& t = kCrc.t;
  crc = ~crc;
  while (n >= 8) {
    const uint32_t lo = crc ^ DecodeLe32(p);
    const uint32_t hi = DecodeLe32(p + 4);
    crc = t[7][lo & 0xFFu] ^ t[6][(lo >> 8) & 0xFFu] ^ t[5][(lo >> 16) & 0xFFu] ^ t[4][lo >> 24] ^ t[3][hi & 0xFFu] ^
          t[2][(hi >> 8) & 0xFFu] ^ t[1][(hi >> 16) & 0xFFu] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFFu];
  return ~crc;
}
}  // namespace internal

namespace {

#if defined(__x86_64__)
// Polynomial arithmetic modulo P in the reflected representation (bit 31 is x^0), for combining
// CRCs of adjacent blocks: the raw CRC register over A then B is shift(reg over A, |B|) ^ (reg over
// B from 0), where shift multiplies by x^(8 |B|) mod P (the register is linear in its start state).
constexpr uint32_t MultiplyModP(uint32_t a, uint32_t b) {
  uint32_t product = 0;
  for (uint32_t m = 1u << 31; m != 0; m >>= 1) {
    if ((a & m) != 0) product ^= b;
    b = (b & 1u) ? (b >> 1) ^ 0x82F63B78u : b >> 1;
  }
  return product;
}

// x^(8 n) mod P: n zero bytes.
constexpr uint32_t ShiftByBytes(uint64_t n) {
  uint32_t result = 1u << 31;  // x^0
  uint32_t power = 1u << 23;   // x^8: one byte
  for (; n != 0; n >>= 1) {
    if ((n & 1) != 0) result = MultiplyModP(power, result);
    power = MultiplyModP(power, power);
  }
  return result;
}

// The three interleaved streams' block: 2 KiB each, so a 78 KB frame is 12 rounds of three and a
// tail under 6 KiB; each round costs two shifts of 4 table lookups.
constexpr size_t kStreamBytes = 2048;

// shift(v) = v * x^(8 kStreamBytes) mod P, byte by byte: tables[k][b] = shift(b << 8k).
struct ShiftTables {
  std::array<std::array<uint32_t, 256>, 4> t{};
};

constexpr ShiftTables MakeShiftTables() {
  ShiftTables tables;
  const uint32_t factor = ShiftByBytes(kStreamBytes);
  for (uint32_t k = 0; k < 4; ++k) {
    for (uint32_t b = 0; b < 256; ++b) tables.t[k][b] = MultiplyModP(factor, b << (8 * k));
  }
  return tables;
}

constexpr ShiftTables kShift = MakeShiftTables();

inline uint32_t ShiftByStream(uint32_t v) {
  return kShift.t[0][v & 0xFFu] ^ kShift.t[1][(v >> 8) & 0xFFu] ^ kShift.t[2][(v >> 16) & 0xFFu] ^ kShift.t[3][v >> 24];
}

// x86 is little-endian: a plain unaligned load (DecodeLe64's byte loop became one only in the
// single-stream loop, not in the interleaved one).
inline uint64_t LoadWord(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// The SSE4.2 crc32 instruction computes this very polynomial (Castagnoli). It has a latency of 3
// cycles and a throughput of 1, so one dependent chain uses a third of it: three streams over
// adjacent blocks run side by side and are combined by shifting (about 3x one chain; a 78 KB frame
// is checksummed on every store, wire decode and read). Compiled for SSE4.2 alone and called only
// when the CPU has it.
__attribute__((target("sse4.2"))) uint32_t Crc32cExtendSse42(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~crc;
  while (n >= 3 * kStreamBytes) {
    uint64_t c1 = 0, c2 = 0;
    for (size_t i = 0; i < kStreamBytes; i += 8) {
      c = _mm_crc32_u64(c, LoadWord(p + i));
      c1 = _mm_crc32_u64(c1, LoadWord(p + kStreamBytes + i));
      c2 = _mm_crc32_u64(c2, LoadWord(p + 2 * kStreamBytes + i));
    }
    c = ShiftByStream(ShiftByStream(static_cast<uint32_t>(c)) ^ static_cast<uint32_t>(c1)) ^ static_cast<uint32_t>(c2);
    p += 3 * kStreamBytes;
    n -= 3 * kStreamBytes;
  }
  while (n >= 8) {
    c = _mm_crc32_u64(c, LoadWord(p));
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}
#endif

}  // namespace

uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n) {
#if defined(__x86_64__)
  static const bool has_sse42 = __builtin_cpu_supports("sse4.2");
  if (has_sse42) return Crc32cExtendSse42(crc, data, n);
#endif
  return internal::Crc32cExtendPortable(crc, data, n);
}

}  // namespace kd
