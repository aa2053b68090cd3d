// libFuzzer target: the update delta decoder an edge runs on downloaded bytes (update/delta.h):
// ReadDeltaHeader and ApplyDelta against a small fixed base (fuzz/delta_base.h), through the
// public functions only (the byte layout is delta.cc's business). Each input is tried as it is and
// re-sealed (fuzz_util.h's Sealed: the artefact's last 32 bytes are the SHA-256 of the rest,
// docs/UPDATE_FORMAT.md), so that mutations of a real delta reach the payload decoder. A delta
// that applies must give the base's names, dtypes and shapes.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/check.h"
#include "fuzz/delta_base.h"
#include "fuzz/fuzz_util.h"
#include "model/threads.h"
#include "update/delta.h"

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  kd::model::SetComputeThreads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const kd::update::TensorMap base = kd::fuzz::DeltaBase();
  for (const std::vector<uint8_t>& bytes :
       {std::vector<uint8_t>(data, data + size), kd::fuzz::Sealed(std::span(data, size))}) {
    (void)kd::update::ReadDeltaHeader(bytes);
    kd::Result<kd::update::TensorMap> applied = kd::update::ApplyDelta(base, bytes);
    if (!applied.ok()) continue;
    KD_CHECK(applied->size() == base.size());
    for (const auto& [name, tensor] : base) {
      auto it = applied->find(name);
      KD_CHECK(it != applied->end() && it->second.scalar_type() == tensor.scalar_type() &&
               it->second.sizes() == tensor.sizes());
    }
  }
  return 0;
}
