// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), unmasked, as the store's values carry it
// (storage/FORMAT.md) and the wire's frames (wire/PROTOCOL.md): Crc32c("123456789") ==
// 0xE3069283. The SSE4.2 crc32 instruction where the CPU has it, else slicing-by-8 tables built at
// compile time. Pure functions; thread-safe.
#ifndef KD_BASE_CRC32C_H_
#define KD_BASE_CRC32C_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace kd {

// The CRC of (the bytes `crc` covers) followed by data[0, n); Crc32cExtend(0, ...) starts one.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
inline uint32_t Crc32c(std::string_view bytes) { return Crc32cExtend(0, bytes.data(), bytes.size()); }

namespace internal {
// The table version, on every CPU (tests compare the two).
uint32_t Crc32cExtendPortable(uint32_t crc, const void* data, size_t n);
}  // namespace internal

}  // namespace kd

#endif  // KD_BASE_CRC32C_H_
