// Compact model updates: the difference between the state an edge runs (`base`) and a newer
// student (`target`) as a small, zstd-compressed, self-checking artefact. Byte layout and the
// reasoning behind it: docs/UPDATE_FORMAT.md ("Delta artefact").
//
// Replace semantics: a shipped parameter element becomes an fp16 value, either fp16(target)
// (value_bits 16) or fp16(base + scale * q) with an int8 q and one f32 scale per tensor
// (value_bits 8, the default: half the bytes again), computed one IEEE operation at a time; an
// element not shipped keeps its base value bit for bit; float buffers ship as fp16, integer
// buffers exactly. So the edge's reconstruction is bit-identical on every machine, the state stays
// fp16-representable, and the learner knows the result in advance (EncodedDelta::reconstructed).
//
// `base` must be the exact state the edge runs (e.g. the previous EncodedDelta::reconstructed or
// RoundParametersToF16 of the last full snapshot): the artefact carries StateDigest(base) and
// ApplyDelta refuses any other base. Elements left out by the threshold or top-k are therefore
// never lost: their difference to the target is measured against what the edge really has and
// ships in a later delta once it grows.
//
// Thread-safety: pure functions of their arguments; safe to call concurrently.
#ifndef KD_UPDATE_DELTA_H_
#define KD_UPDATE_DELTA_H_

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "update/state.h"

namespace kd::update {

struct DeltaOptions {
  // A parameter element is shipped when |target - base| > min_abs_change (and fp16(target) differs
  // from base at all). Default 1e-4: the student's weights mostly lie in 0.06 < |w| < 0.5, where
  // one fp16 step is 6e-5..2.4e-4 (half of it is the rounding error), so a change below 1e-4 is
  // about the error a full fp16 snapshot already accepts. REQUIRES: >= 0.
  float min_abs_change = 1e-4f;
  // At most ceil(max_fraction * numel) elements of a parameter tensor are selected, largest
  // |target - base| first (top-k); 1 = every changed element. Default 1 (full fidelity above the
  // threshold; lower it to trade accuracy for bandwidth). REQUIRES: 0 < max_fraction <= 1.
  double max_fraction = 1.0;
  // Bits per shipped parameter value: 8 (int8 steps of max|change|/127 per tensor, then rounded to
  // fp16; the default: with a bitmask of the shipped elements it brings a top-25 % delta of the
  // production student to about a tenth of the fp32 weights) or 16 (fp16(target) itself; a
  // rounding error half as large, twice the bytes). What is not carried ships in a later delta,
  // since each delta is measured against what the edge runs. REQUIRES: 8 or 16.
  int value_bits = 8;
  // fp16 values (value_bits 16) only: a tensor with more than this fraction of its elements selected is shipped dense:
  // every element's value (fp16(target) for parameters), which costs 2 bytes/element against 6 for sparse (u32 index +
  // fp16 value), so dense wins above 1/3; 0.25 leaves margin for zstd, which compresses the index gaps well. A dense
  // parameter is rewritten everywhere, so it is used only where the cap allows all elements (max_fraction = 1, or a
  // tensor of a few elements): max_fraction stays a hard limit. REQUIRES: 0 <= dense_above <= 1.
  double dense_above = 0.25;
  // Float buffers (BN running mean and variance) ship as fp16(target) instead of their exact f32
  // value: a relative error of at most 4.9e-4, far below how much these averages move from one
  // batch to the next, for half their bytes (they are about a third of a q8 delta of the
  // production student otherwise, since every element changes every round). A buffer not finite
  // in fp16 ships exact. Integer buffers always ship exact. Default true.
  bool f16_buffers = true;
  // zstd compression level (1..19). Default 19: a delta is tens of KB, compressed once per
  // version and sent to every device, so the slowest level costs milliseconds and saves about 2 %
  // over level 3 (measured on the q8 deltas of update_test).
  int zstd_level = 19;
};

struct DeltaStats {
  size_t tensors = 0;             // tensors in the state
  size_t tensors_changed = 0;     // tensors with an entry in the delta
  size_t tensors_dense = 0;       // of those, shipped dense
  size_t tensors_bitmask = 0;     // of those, shipped with a bitmask of the changed elements
  uint64_t elements = 0;          // elements in the state
  uint64_t elements_shipped = 0;  // elements whose value is in the delta (dense: all of the tensor)
  uint64_t raw_bytes = 0;         // uncompressed payload
  uint64_t compressed_bytes = 0;  // the artefact (== EncodedDelta::bytes.size())
};

struct EncodedDelta {
  std::vector<uint8_t> bytes;  // the artefact: magic, version, zstd payload, SHA-256 trailer
  TensorMap reconstructed;     // exactly what ApplyDelta(base, bytes) returns: what the edge will run
  DeltaStats stats;
};

// How many elements of a parameter tensor of `numel` elements a delta may carry at most:
// ceil(max_fraction * numel). Shared with the trainer's sparse rounds (learner/distiller.h), which
// train exactly this many coordinates per tensor so that the top-k delta carries them all.
int64_t DeltaTopK(double max_fraction, int64_t numel);

// Parameters (names in `parameter_names` with dtype f32) are shipped as q8 or fp16 values (see
// DeltaOptions::value_bits); float buffers (BN running_mean/var) as fp16 (f16_buffers) and other
// tensors (num_batches_tracked) exactly, all changed elements, when any element changed. base and target must have the
// same names, shapes and dtypes (InvalidArgument); a parameter value that is not finite in fp16 (NaN, |x| > 65504) is
// InvalidArgument too. Returns an artefact even when nothing changed (then it only re-asserts the
// base).
Result<EncodedDelta> EncodeDelta(const TensorMap& base, const TensorMap& target,
                                 const std::set<std::string>& parameter_names, const DeltaOptions& options = {});

// Corruption on bad bytes (truncated, bit-flipped, garbage; never crashes), Unimplemented on
// another format version, InvalidArgument when `base` is not the state the delta was made for
// (other names/shapes, or any value: StateDigest(base) must match). Returns fresh tensors.
Result<TensorMap> ApplyDelta(const TensorMap& base, std::span<const uint8_t> delta);

// The digests a delta carries (after its checksum verifies): StateDigest of the base it applies
// to and of the state it produces. Lets an edge pick the right base before decoding.
struct DeltaHeader {
  std::string base_digest;
  std::string result_digest;
};
Result<DeltaHeader> ReadDeltaHeader(std::span<const uint8_t> delta);

}  // namespace kd::update

#endif  // KD_UPDATE_DELTA_H_
