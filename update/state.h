// A student's tensor state as a plain name -> tensor map, and its canonical digest: the common
// currency of deltas, manifests (target_digest) and the edge's post-install check.
// Ownership: every TensorMap returned here owns fresh CPU contiguous tensors (no aliasing of the
// module). Threading: the functions are thread-safe for distinct arguments; LoadState mutates the
// module and must not run concurrently with anything else using it.
#ifndef KD_UPDATE_STATE_H_
#define KD_UPDATE_STATE_H_

#include <map>
#include <set>
#include <string>

#include <torch/types.h>

#include "base/status.h"
#include "model/student.h"

namespace kd::update {

// name -> CPU contiguous tensor. Parameters are f32 (conv weights [O,I/g,kh,kw], biases [O], BN
// affine [C]); buffers are BN running_mean/running_var (f32 [C]) and num_batches_tracked (i64 []).
using TensorMap = std::map<std::string, torch::Tensor>;

// named_parameters + named_buffers (LibTorch's dotted names), detached and cloned to CPU
// contiguous.
TensorMap StateOf(const model::StudentImpl& student);

// Copies `state` into the module. Names, dtypes and shapes must match the module exactly, else
// InvalidArgument naming the tensor; everything is checked before the first copy, so on error
// the module is untouched.
Status LoadState(model::StudentImpl& student, const TensorMap& state);

// Names of the module's parameters (the tensors shipped as fp16; everything else is a buffer and
// is shipped exactly).
std::set<std::string> ParameterNames(const model::StudentImpl& student);

// Lowercase hex SHA-256 over a canonical serialisation, independent of the module and of memory
// layout: the domain tag "kd-state-v1", then per tensor in sorted name order: u32 name length,
// name, dtype tag ("f32", "f16", "i64", ...), u32 ndim, i64 dims, u64 byte count, the raw
// little-endian row-major bytes. What a manifest's target_digest is. KD_CHECKs that tensors are
// of a supported dtype (floating or integral).
std::string StateDigest(const TensorMap& state);

// The state an edge gets from a full fp16 snapshot (.kdw with WeightDtype::kF16): floating
// tensors named in `parameter_names` are rounded to fp16 (round-to-nearest-even) and back to f32;
// buffers (BN running statistics, counters) stay exact. Returns fresh tensors.
TensorMap RoundParametersToF16(const TensorMap& state, const std::set<std::string>& parameter_names);

// Lowercase hex SHA-256 of options.ArchJson() (canonical JSON): a manifest's arch_hash.
std::string ArchHash(const model::StudentOptions& options);

}  // namespace kd::update

#endif  // KD_UPDATE_STATE_H_
