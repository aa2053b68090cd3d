// libFuzzer target: kd::model::DecodeWeights (model/weights_file.h), the .kdw student weight file
// an edge installs (docs/WEIGHTS_FORMAT.md). Each input is decoded twice: as it is (magic, version,
// the SHA-256 trailer) and re-sealed with a valid trailer (fuzz_util.h's Sealed), so that mutated
// metadata JSON and tensor tables reach the parser behind the checksum. A decoded file must have
// its own SHA-256 as sha256_hex.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/check.h"
#include "base/sha256.h"
#include "fuzz/fuzz_util.h"
#include "model/threads.h"
#include "model/weights_file.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  kd::model::SetComputeThreads(1);  // one core: the fuzzers run beside builds
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (const std::vector<uint8_t>& bytes :
       {std::vector<uint8_t>(data, data + size), kd::fuzz::Sealed(std::span(data, size))}) {
    kd::Result<kd::model::LoadedStudent> loaded = kd::model::DecodeWeights(bytes);
    if (loaded.ok()) KD_CHECK(loaded->sha256_hex == kd::Sha256Hex(bytes));
  }
  return 0;
}
