#include "update/delta.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <zstd.h>

#include <c10/util/Half.h>
#include <torch/torch.h>

#include "base/coding.h"
#include "base/hex.h"
#include "base/sha256.h"

namespace kd::update {
namespace {

static_assert(std::endian::native == std::endian::little, "kd_update assumes a little-endian host");

constexpr char kMagic[4] = {'K', 'D', 'D', 'L'};
// Version 2 added the q8 value encoding and the bitmask layout; version 1 artefacts (fp16 values,
// index gaps) are still read.
constexpr uint32_t kFormatVersion = 2;
constexpr uint32_t kOldestReadableVersion = 1;
constexpr size_t kDigestBytes = kSha256Bytes;
// magic, version, base digest, result digest, payload length.
constexpr size_t kHeaderBytes = 4 + 4 + kDigestBytes + kDigestBytes + 8;
constexpr size_t kMaxNameBytes = 1024;
constexpr size_t kMaxDims = 8;

enum class DtypeCode : uint8_t { kF32 = 1, kF16 = 2, kI64 = 3, kF64 = 4, kI32 = 5 };
enum class Encoding : uint8_t { kExact = 0, kF16 = 1, kQ8 = 2 };
enum class Layout : uint8_t { kDense = 0, kSparse = 1, kBitmask = 2 };

// The q8 replacement of one element: fp16(base + scale * q), computed in f32 one IEEE operation at
// a time (this file is built with -ffp-contract=off, so no compiler fuses it into an FMA whose
// single rounding would differ), then rounded to the nearest fp16. The encoder and every edge call
// this same function, so the result is bit-identical everywhere.
float Q8Replace(float base, float scale, int8_t q) {
  const float step = scale * static_cast<float>(q);
  const float sum = base + step;
  return static_cast<float>(c10::Half(sum));
}

// Bytes of a bitmask over `numel` elements (bit i of the mask is bit i%8 of byte i/8).
uint64_t BitmaskBytes(uint64_t numel) { return (numel + 7) / 8; }

bool CodeOf(torch::ScalarType t, DtypeCode* code) {
  switch (t) {
    case torch::kFloat:
      *code = DtypeCode::kF32;
      return true;
    case torch::kHalf:
      *code = DtypeCode::kF16;
      return true;
    case torch::kLong:
      *code = DtypeCode::kI64;
      return true;
    case torch::kDouble:
      *code = DtypeCode::kF64;
      return true;
    case torch::kInt:
      *code = DtypeCode::kI32;
      return true;
    default:
      return false;
  }
}

// Integer dtype of the same width, to compare floating tensors bit for bit (NaN == NaN, -0 != 0).
torch::Tensor Bits(const torch::Tensor& t) {
  switch (t.scalar_type()) {
    case torch::kFloat:
      return t.view(torch::kInt);
    case torch::kHalf:
      return t.view(torch::kShort);
    case torch::kDouble:
      return t.view(torch::kLong);
    default:
      return t;
  }
}

std::string DigestBytes(const std::string& hex) {
  std::string raw;
  KD_CHECK(FromHex(hex, &raw) && raw.size() == kDigestBytes);
  return raw;
}

torch::Tensor Cpu(const torch::Tensor& t) { return t.detach().to(torch::kCPU).contiguous(); }

// One tensor's entry, as encoded.
struct Entry {
  std::string name;
  DtypeCode dtype;
  Encoding encoding;
  Layout layout;
  std::vector<int64_t> shape;
  std::vector<uint32_t> indices;  // sparse and bitmask, ascending
  float scale = 0;                // q8 only: the step of one quantum
  torch::Tensor values;           // 1-D contiguous: f16 (kF16), i8 (kQ8) or the tensor's dtype
};

void PutEntry(std::vector<uint8_t>& out, const Entry& e) {
  PutLe16(&out, static_cast<uint16_t>(e.name.size()));
  PutBytes(&out, e.name.data(), e.name.size());
  PutU8(&out, static_cast<uint8_t>(e.dtype));
  PutU8(&out, static_cast<uint8_t>(e.encoding));
  PutU8(&out, static_cast<uint8_t>(e.layout));
  PutU8(&out, static_cast<uint8_t>(e.shape.size()));
  for (int64_t d : e.shape) PutLe64(&out, static_cast<uint64_t>(d));
  PutLe64(&out, static_cast<uint64_t>(e.values.numel()));
  if (e.encoding == Encoding::kQ8) PutLe32(&out, std::bit_cast<uint32_t>(e.scale));
  if (e.layout == Layout::kSparse) {
    // Indices as gaps (first index, then differences >= 1): small numbers that zstd packs well.
    uint32_t prev = 0;
    for (size_t i = 0; i < e.indices.size(); ++i) {
      PutLe32(&out, i == 0 ? e.indices[i] : e.indices[i] - prev);
      prev = e.indices[i];
    }
  } else if (e.layout == Layout::kBitmask) {
    int64_t numel = 1;
    for (int64_t d : e.shape) numel *= d;
    std::vector<uint8_t> mask(BitmaskBytes(static_cast<uint64_t>(numel)), 0);
    for (uint32_t i : e.indices) mask[i / 8] |= static_cast<uint8_t>(1u << (i % 8));
    PutBytes(&out, mask.data(), mask.size());
  }
  PutBytes(&out, e.values.data_ptr(), static_cast<size_t>(e.values.numel()) * e.values.element_size());
}

Status CheckOptions(const DeltaOptions& o) {
  if (!(o.min_abs_change >= 0.f)) return Status::InvalidArgument("DeltaOptions.min_abs_change must be >= 0");
  if (!(o.max_fraction > 0.0 && o.max_fraction <= 1.0)) {
    return Status::InvalidArgument("DeltaOptions.max_fraction must be in (0, 1]");
  }
  if (!(o.dense_above >= 0.0 && o.dense_above <= 1.0)) {
    return Status::InvalidArgument("DeltaOptions.dense_above must be in [0, 1]");
  }
  if (o.value_bits != 8 && o.value_bits != 16)
    return Status::InvalidArgument("DeltaOptions.value_bits must be 8 or 16");
  if (o.zstd_level < 1 || o.zstd_level > ZSTD_maxCLevel()) {
    return Status::InvalidArgument("DeltaOptions.zstd_level must be in 1.." + std::to_string(ZSTD_maxCLevel()));
  }
  return Status::Ok();
}

// The q8 entry of one f32 parameter: the changes of the `selected` elements (i64, ascending)
// quantised to int8 with one scale per tensor (max |change| / 127). An element whose replacement
// rounds back to its base bits is dropped: it would change nothing. Returns false when nothing is
// left. b, t: flat, contiguous CPU f32.
Result<bool> EncodeQ8(const torch::Tensor& b, const torch::Tensor& t, const torch::Tensor& selected, Entry* entry,
                      torch::Tensor* recon) {
  const torch::Tensor change = t.index_select(0, selected) - b.index_select(0, selected);
  const float scale = change.abs().max().item<float>() / 127.f;
  if (!(scale > 0.f) || !std::isfinite(scale)) return false;
  const torch::Tensor q = torch::round(change / scale).clamp(-127, 127).to(torch::kChar).contiguous();
  const auto sel = selected.accessor<int64_t, 1>();
  const auto qa = q.accessor<int8_t, 1>();
  const float* bp = b.data_ptr<float>();
  torch::Tensor r = b.clone();
  float* rp = r.data_ptr<float>();
  std::vector<int8_t> kept;
  for (int64_t i = 0; i < selected.numel(); ++i) {
    const int64_t j = sel[i];
    const float v = Q8Replace(bp[j], scale, qa[i]);
    if (std::bit_cast<uint32_t>(v) == std::bit_cast<uint32_t>(bp[j])) continue;
    rp[j] = v;
    entry->indices.push_back(static_cast<uint32_t>(j));
    kept.push_back(qa[i]);
  }
  if (kept.empty()) return false;
  entry->encoding = Encoding::kQ8;
  entry->scale = scale;
  // Whichever index form is smaller before zstd: 4 bytes per shipped element, or 1 bit per element.
  entry->layout = 4 * kept.size() > BitmaskBytes(static_cast<uint64_t>(b.numel())) ? Layout::kBitmask : Layout::kSparse;
  entry->values = torch::from_blob(kept.data(), {static_cast<int64_t>(kept.size())}, torch::kChar).clone();
  *recon = r;
  return true;
}

// Builds the entry of one tensor (nullopt-like: returns false when nothing is shipped) and its
// reconstruction. base/target: contiguous CPU, same dtype and shape.
Result<bool> EncodeTensor(const std::string& name, const torch::Tensor& base, const torch::Tensor& target,
                          bool is_parameter, const DeltaOptions& o, Entry* entry, torch::Tensor* recon) {
  const int64_t numel = base.numel();
  if (numel > static_cast<int64_t>(UINT32_MAX)) return Status::InvalidArgument("tensor '" + name + "' is too large");
  DtypeCode code;
  if (!CodeOf(base.scalar_type(), &code))
    return Status::InvalidArgument("tensor '" + name + "' has an unsupported dtype");
  entry->name = name;
  entry->dtype = code;
  entry->shape = base.sizes().vec();
  const torch::Tensor b = base.reshape({-1}), t = target.reshape({-1});
  torch::Tensor selected;  // i64 indices, ascending
  torch::Tensor shipped_values;
  torch::Tensor full_values;  // what a dense entry ships, in the entry's value dtype
  torch::Tensor full_recon;   // the tensor's value where shipped, in its own dtype
  if (is_parameter && base.scalar_type() == torch::kFloat) {
    const torch::Tensor t16 = t.to(torch::kHalf);
    if (!torch::isfinite(t16).all().item<bool>()) {
      return Status::InvalidArgument("parameter '" + name + "' has values that are not finite in fp16");
    }
    const torch::Tensor t16f = t16.to(torch::kFloat);
    const torch::Tensor change = (t - b).abs();
    const torch::Tensor candidate = change.gt(o.min_abs_change).logical_and(Bits(t16f).ne(Bits(b)));
    const int64_t n_candidates = candidate.sum().item<int64_t>();
    if (n_candidates == 0) return false;
    const int64_t k_max = DeltaTopK(o.max_fraction, numel);
    if (n_candidates > k_max) {
      const torch::Tensor score = torch::where(candidate, change, torch::full_like(change, -1.f));
      selected = std::get<0>(torch::sort(std::get<1>(torch::topk(score, k_max, /*dim=*/0, /*largest=*/true,
                                                                 /*sorted=*/false))));
    } else {
      selected = candidate.nonzero().reshape({-1});
    }
    if (o.value_bits == 8) {
      KD_ASSIGN_OR_RETURN(bool shipped, EncodeQ8(b, t, selected, entry, recon));
      if (shipped) *recon = recon->reshape(base.sizes());
      return shipped;
    }
    entry->encoding = Encoding::kF16;
    full_values = t16;
    full_recon = t16f;
  } else if (o.f16_buffers && base.scalar_type() == torch::kFloat &&
             torch::isfinite(t.to(torch::kHalf)).all().item<bool>()) {
    // A float buffer (BN running statistics): fp16(target) where that differs from the base.
    entry->encoding = Encoding::kF16;
    full_values = t.to(torch::kHalf);
    full_recon = full_values.to(torch::kFloat);
    // Elements that changed, and whose fp16 value differs from the base (a base buffer that is not
    // fp16-representable is left alone until it changes).
    const torch::Tensor changed = Bits(t).ne(Bits(b)).logical_and(Bits(full_recon).ne(Bits(b)));
    if (!changed.any().item<bool>()) return false;
    selected = changed.nonzero().reshape({-1});
  } else {
    entry->encoding = Encoding::kExact;
    const torch::Tensor changed = Bits(t).ne(Bits(b));
    if (!changed.any().item<bool>()) return false;
    selected = changed.nonzero().reshape({-1});
    full_values = t;
    full_recon = t;
  }
  const int64_t n = selected.numel();
  // Dense rewrites every element, so it is used only where that stays within the cap
  // (cap >= numel, i.e. max_fraction = 1 or a tiny tensor): max_fraction is a hard limit.
  const int64_t cap = is_parameter ? DeltaTopK(o.max_fraction, numel) : numel;
  if (static_cast<double>(n) > o.dense_above * static_cast<double>(numel) && cap >= numel) {
    entry->layout = Layout::kDense;
    entry->values = full_values.contiguous();
    *recon = full_recon.reshape(base.sizes()).clone();
  } else {
    entry->layout = Layout::kSparse;
    entry->values = full_values.index_select(0, selected).contiguous();
    const auto acc = selected.accessor<int64_t, 1>();
    entry->indices.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) entry->indices[static_cast<size_t>(i)] = static_cast<uint32_t>(acc[i]);
    torch::Tensor r = b.clone();
    r.index_copy_(0, selected, full_recon.index_select(0, selected));
    *recon = r.reshape(base.sizes());
  }
  return true;
}

Status CheckSameLayout(const TensorMap& base, const TensorMap& target) {
  for (const auto& [name, t] : target) {
    auto it = base.find(name);
    if (it == base.end()) return Status::InvalidArgument("delta base lacks tensor '" + name + "'");
    if (!t.defined() || !it->second.defined()) return Status::InvalidArgument("tensor '" + name + "' is undefined");
    if (it->second.scalar_type() != t.scalar_type()) {
      return Status::InvalidArgument("tensor '" + name + "' has another dtype in base and target");
    }
    if (it->second.sizes() != t.sizes())
      return Status::InvalidArgument("tensor '" + name + "' has another shape in base and target");
  }
  for (const auto& [name, t] : base) {
    if (!target.count(name)) return Status::InvalidArgument("delta target lacks tensor '" + name + "'");
  }
  return Status::Ok();
}

struct Parsed {
  std::string base_digest, result_digest;  // hex
  std::span<const uint8_t> frame;          // the zstd frame
  uint64_t payload_bytes = 0;
  uint32_t version = 0;
};

Result<Parsed> ParseOuter(std::span<const uint8_t> bytes) {
  if (bytes.size() < kHeaderBytes + kDigestBytes || std::memcmp(bytes.data(), kMagic, 4) != 0) {
    return Status::Corruption("not a kd delta (bad magic or too short)");
  }
  // The checksum comes before the version: a flipped bit anywhere is Corruption, and only an
  // intact artefact of another version is Unimplemented (every version keeps this trailer).
  const std::string digest = Sha256Raw(bytes.first(bytes.size() - kDigestBytes));
  if (std::memcmp(digest.data(), bytes.data() + bytes.size() - kDigestBytes, kDigestBytes) != 0) {
    return Status::Corruption("delta checksum mismatch (truncated or corrupted)");
  }
  ByteReader r(bytes.first(bytes.size() - kDigestBytes));
  std::span<const uint8_t> magic, base_digest, result_digest;
  uint32_t version = 0;
  Parsed p;
  r.Bytes(4, &magic);
  r.U32(&version);
  if (version < kOldestReadableVersion || version > kFormatVersion) {
    return Status::Unimplemented("delta format version " + std::to_string(version) + " (this build reads " +
                                 std::to_string(kOldestReadableVersion) + ".." + std::to_string(kFormatVersion) + ")");
  }
  p.version = version;
  r.Bytes(kDigestBytes, &base_digest);
  r.Bytes(kDigestBytes, &result_digest);
  r.U64(&p.payload_bytes);
  KD_CHECK(r.ok());  // kHeaderBytes were there
  p.base_digest = ToHex(base_digest);
  p.result_digest = ToHex(result_digest);
  r.Bytes(r.remaining(), &p.frame);
  return p;
}

// Upper bound of an honest payload for this base: every tensor dense or sparse with 8-byte values.
uint64_t MaxPayloadBytes(const TensorMap& base) {
  uint64_t bound = 8;
  for (const auto& [name, t] : base) {
    const uint64_t numel = static_cast<uint64_t>(t.numel());
    bound += 2 + name.size() + 4 + 8 * kMaxDims + 8 + 4 + BitmaskBytes(numel) + numel * (4 + 8);
  }
  return bound;
}

}  // namespace

int64_t DeltaTopK(double max_fraction, int64_t numel) {
  return static_cast<int64_t>(std::ceil(max_fraction * static_cast<double>(numel)));
}

Result<EncodedDelta> EncodeDelta(const TensorMap& base, const TensorMap& target,
                                 const std::set<std::string>& parameter_names, const DeltaOptions& options) {
  KD_RETURN_IF_ERROR(CheckOptions(options));
  KD_RETURN_IF_ERROR(CheckSameLayout(base, target));
  EncodedDelta out;
  std::vector<Entry> entries;
  TensorMap recon;
  try {
    torch::NoGradGuard no_grad;
    for (const auto& [name, target_tensor] : target) {
      if (name.size() > kMaxNameBytes) return Status::InvalidArgument("tensor name too long: '" + name + "'");
      if (target_tensor.dim() > static_cast<int64_t>(kMaxDims)) {
        return Status::InvalidArgument("tensor '" + name + "' has too many dimensions");
      }
      const torch::Tensor b = Cpu(base.at(name)), t = Cpu(target_tensor);
      Entry entry;
      torch::Tensor r;
      KD_ASSIGN_OR_RETURN(bool shipped, EncodeTensor(name, b, t, parameter_names.count(name) > 0, options, &entry, &r));
      ++out.stats.tensors;
      out.stats.elements += static_cast<uint64_t>(b.numel());
      if (!shipped) {
        recon[name] = b.clone();
        continue;
      }
      ++out.stats.tensors_changed;
      if (entry.layout == Layout::kDense) ++out.stats.tensors_dense;
      if (entry.layout == Layout::kBitmask) ++out.stats.tensors_bitmask;
      out.stats.elements_shipped += static_cast<uint64_t>(entry.values.numel());
      recon[name] = r;
      entries.push_back(std::move(entry));
    }
  } catch (const std::exception& e) {
    return Status::Internal(std::string("EncodeDelta: ") + e.what());
  }

  std::vector<uint8_t> payload;
  PutLe32(&payload, static_cast<uint32_t>(base.size()));
  PutLe32(&payload, static_cast<uint32_t>(entries.size()));
  for (const Entry& e : entries) PutEntry(payload, e);
  out.stats.raw_bytes = payload.size();

  std::vector<uint8_t>& bytes = out.bytes;
  PutBytes(&bytes, kMagic, 4);
  PutLe32(&bytes, kFormatVersion);
  const std::string base_digest = DigestBytes(StateDigest(base)), result_digest = DigestBytes(StateDigest(recon));
  PutBytes(&bytes, base_digest.data(), kDigestBytes);
  PutBytes(&bytes, result_digest.data(), kDigestBytes);
  PutLe64(&bytes, payload.size());
  const size_t frame_at = bytes.size();
  bytes.resize(frame_at + ZSTD_compressBound(payload.size()));
  const size_t frame = ZSTD_compress(bytes.data() + frame_at, bytes.size() - frame_at, payload.data(), payload.size(),
                                     options.zstd_level);
  if (ZSTD_isError(frame)) return Status::Internal(std::string("zstd: ") + ZSTD_getErrorName(frame));
  bytes.resize(frame_at + frame);
  const std::string digest = Sha256Raw(bytes);
  PutBytes(&bytes, digest.data(), kDigestBytes);
  out.stats.compressed_bytes = bytes.size();

  // The promise of `reconstructed` is "what the edge gets": take it from the edge's own code path.
  auto applied = ApplyDelta(base, bytes);
  if (!applied.ok()) return applied.status().WithContext("EncodeDelta self-check");
  out.reconstructed = std::move(applied).value();
  return out;
}

Result<DeltaHeader> ReadDeltaHeader(std::span<const uint8_t> delta) {
  KD_ASSIGN_OR_RETURN(Parsed p, ParseOuter(delta));
  return DeltaHeader{p.base_digest, p.result_digest};
}

Result<TensorMap> ApplyDelta(const TensorMap& base, std::span<const uint8_t> delta) {
  KD_ASSIGN_OR_RETURN(Parsed p, ParseOuter(delta));
  const std::string have = StateDigest(base);
  if (have != p.base_digest) {
    return Status::InvalidArgument("delta is for base state " + p.base_digest.substr(0, 16) + ", this state is " +
                                   have.substr(0, 16));
  }
  // The base matches, so the payload size is bounded by it: never allocate what garbage claims.
  if (p.payload_bytes > MaxPayloadBytes(base)) return Status::Corruption("delta payload length out of range");
  const unsigned long long content = ZSTD_getFrameContentSize(p.frame.data(), p.frame.size());
  if (content != p.payload_bytes || ZSTD_findFrameCompressedSize(p.frame.data(), p.frame.size()) != p.frame.size()) {
    return Status::Corruption("delta payload is not one zstd frame of the stated size");
  }
  std::vector<uint8_t> payload(p.payload_bytes);
  const size_t got = ZSTD_decompress(payload.data(), payload.size(), p.frame.data(), p.frame.size());
  if (ZSTD_isError(got) || got != payload.size()) return Status::Corruption("delta payload does not decompress");

  TensorMap out;
  try {
    torch::NoGradGuard no_grad;
    for (const auto& [name, t] : base) out[name] = Cpu(t).clone();
    ByteReader r(payload);
    uint32_t n_tensors = 0, n_entries = 0;
    if (!r.U32(&n_tensors) || !r.U32(&n_entries)) return Status::Corruption("delta payload truncated");
    if (n_tensors != base.size() || n_entries > base.size()) return Status::Corruption("delta tensor count mismatch");
    std::string prev_name;
    for (uint32_t i = 0; i < n_entries; ++i) {
      uint16_t name_len = 0;
      std::span<const uint8_t> name_bytes;
      uint8_t dtype = 0, encoding = 0, layout = 0, ndim = 0;
      if (!r.U16(&name_len) || name_len > kMaxNameBytes || !r.Bytes(name_len, &name_bytes) || !r.U8(&dtype) ||
          !r.U8(&encoding) || !r.U8(&layout) || !r.U8(&ndim) || ndim > kMaxDims) {
        return Status::Corruption("delta entry header truncated or out of range");
      }
      const std::string name(reinterpret_cast<const char*>(name_bytes.data()), name_bytes.size());
      if (i > 0 && name <= prev_name) return Status::Corruption("delta entries out of order");
      prev_name = name;
      auto it = out.find(name);
      if (it == out.end()) return Status::Corruption("delta names tensor '" + name + "' the base does not have");
      torch::Tensor& dst = it->second;
      DtypeCode code;
      if (!CodeOf(dst.scalar_type(), &code) || static_cast<uint8_t>(code) != dtype) {
        return Status::Corruption("delta dtype of '" + name + "' does not match the base");
      }
      std::vector<int64_t> shape(ndim);
      for (auto& d : shape) {
        uint64_t v = 0;
        if (!r.U64(&v)) return Status::Corruption("delta entry truncated");
        d = static_cast<int64_t>(v);
      }
      if (shape != dst.sizes().vec())
        return Status::Corruption("delta shape of '" + name + "' does not match the base");
      const uint64_t numel = static_cast<uint64_t>(dst.numel());
      uint64_t count = 0;
      if (!r.U64(&count) || count > numel)
        return Status::Corruption("delta value count of '" + name + "' out of range");
      if (encoding == static_cast<uint8_t>(Encoding::kF16) && dst.scalar_type() != torch::kFloat) {
        return Status::Corruption("delta ships fp16 values for non-f32 tensor '" + name + "'");
      }
      // Version 1 knew only exact/fp16 values and dense/sparse layouts.
      const uint8_t max_encoding = static_cast<uint8_t>(p.version >= 2 ? Encoding::kQ8 : Encoding::kF16);
      const uint8_t max_layout = static_cast<uint8_t>(p.version >= 2 ? Layout::kBitmask : Layout::kSparse);
      if (encoding > max_encoding || layout > max_layout) {
        return Status::Corruption("delta entry of '" + name + "' has an unknown encoding");
      }
      const bool q8 = encoding == static_cast<uint8_t>(Encoding::kQ8);
      if (q8 && (dst.scalar_type() != torch::kFloat || layout == static_cast<uint8_t>(Layout::kDense))) {
        return Status::Corruption("delta ships q8 values for non-f32 or dense tensor '" + name + "'");
      }
      float scale = 0.f;
      if (q8) {
        uint32_t scale_bits = 0;
        if (!r.U32(&scale_bits)) return Status::Corruption("delta entry truncated");
        scale = std::bit_cast<float>(scale_bits);
        if (!(scale > 0.f) || !std::isfinite(scale)) {
          return Status::Corruption("delta q8 scale of '" + name + "' is not a positive finite number");
        }
      }
      if (layout == static_cast<uint8_t>(Layout::kDense) && count != numel) {
        return Status::Corruption("dense delta entry of '" + name + "' has the wrong size");
      }
      std::vector<int64_t> index;
      if (layout == static_cast<uint8_t>(Layout::kSparse)) {
        index.resize(count);
        uint64_t pos = 0;
        for (uint64_t k = 0; k < count; ++k) {
          uint32_t gap = 0;
          if (!r.U32(&gap)) return Status::Corruption("delta indices truncated");
          if (k > 0 && gap == 0) return Status::Corruption("delta indices of '" + name + "' not increasing");
          pos = k == 0 ? gap : pos + gap;
          if (pos >= numel) return Status::Corruption("delta index of '" + name + "' out of range");
          index[k] = static_cast<int64_t>(pos);
        }
      } else if (layout == static_cast<uint8_t>(Layout::kBitmask)) {
        std::span<const uint8_t> mask;
        if (!r.Bytes(BitmaskBytes(numel), &mask)) return Status::Corruption("delta bitmask truncated");
        index.reserve(count);
        for (uint64_t byte = 0; byte < mask.size(); ++byte) {
          for (uint32_t bit = 0; bit < 8; ++bit) {
            if ((mask[byte] >> bit & 1u) == 0) continue;
            const uint64_t pos = byte * 8 + bit;
            if (pos >= numel || index.size() == count) {
              return Status::Corruption("delta bitmask of '" + name + "' disagrees with its value count");
            }
            index.push_back(static_cast<int64_t>(pos));
          }
        }
        if (index.size() != count) {
          return Status::Corruption("delta bitmask of '" + name + "' disagrees with its value count");
        }
      }
      const torch::ScalarType value_type = encoding == static_cast<uint8_t>(Encoding::kF16) ? torch::kHalf
                                           : q8                                             ? torch::kChar
                                                                                            : dst.scalar_type();
      std::span<const uint8_t> raw;
      if (!r.Bytes(count * c10::elementSize(value_type), &raw)) return Status::Corruption("delta values truncated");
      // Copy out of the (unaligned) payload into a tensor that owns its memory.
      torch::Tensor values = torch::empty({static_cast<int64_t>(count)}, torch::TensorOptions().dtype(value_type));
      if (!raw.empty()) std::memcpy(values.data_ptr(), raw.data(), raw.size());
      torch::Tensor flat = dst.view({-1});
      if (q8) {
        float* fp = flat.data_ptr<float>();
        const int8_t* qp = values.data_ptr<int8_t>();
        for (uint64_t k = 0; k < count; ++k) fp[index[k]] = Q8Replace(fp[index[k]], scale, qp[k]);
        continue;
      }
      values = values.to(dst.scalar_type());  // fp16 -> f32 is exact
      if (layout == static_cast<uint8_t>(Layout::kDense)) {
        flat.copy_(values);
      } else if (count > 0) {
        const torch::Tensor idx = torch::from_blob(index.data(), {static_cast<int64_t>(count)}, torch::kLong);
        flat.index_copy_(0, idx, values);
      }
    }
    if (r.remaining() != 0) return Status::Corruption("delta payload has trailing bytes");
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("malformed delta: ") + e.what());
  }
  if (StateDigest(out) != p.result_digest) return Status::Corruption("delta result digest mismatch");
  return out;
}

}  // namespace kd::update
