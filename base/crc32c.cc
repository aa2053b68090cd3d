#include "base/crc32c.h"

#include <array>

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
// The SSE4.2 crc32 instruction computes this very polynomial (Castagnoli): one 8-byte step per
// instruction, about 5x the tables' rate here (a 78 KB frame is checksummed on every store and
// read). Compiled for SSE4.2 alone and called only when the CPU has it.
__attribute__((target("sse4.2"))) uint32_t Crc32cExtendSse42(uint32_t crc, const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~crc;
  while (n >= 8) {
    c = _mm_crc32_u64(c, DecodeLe64(p));
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
