#include "update/state.h"

#include <bit>
#include <cstring>
#include <sodium.h>

#include <torch/torch.h>

#include "model/weights_file.h"

namespace kd::update {
namespace {

// Tensor bytes are hashed (and shipped) in host order, which the formats define as little-endian.
static_assert(std::endian::native == std::endian::little, "kd_update assumes a little-endian host");

torch::Tensor CpuCopy(const torch::Tensor& t) { return t.detach().to(torch::kCPU).contiguous().clone(); }

const char* DtypeTag(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat:
      return "f32";
    case torch::kHalf:
      return "f16";
    case torch::kDouble:
      return "f64";
    case torch::kBFloat16:
      return "bf16";
    case torch::kLong:
      return "i64";
    case torch::kInt:
      return "i32";
    case torch::kByte:
      return "u8";
    case torch::kBool:
      return "bool";
    default:
      return nullptr;
  }
}

void HashU32(crypto_hash_sha256_state* h, uint32_t v) {
  uint8_t b[4];
  for (int i = 0; i < 4; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  crypto_hash_sha256_update(h, b, 4);
}
void HashU64(crypto_hash_sha256_state* h, uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  crypto_hash_sha256_update(h, b, 8);
}

}  // namespace

TensorMap StateOf(const model::StudentImpl& student) {
  torch::NoGradGuard no_grad;
  TensorMap out;
  for (const auto& p : student.named_parameters(true)) out[p.key()] = CpuCopy(p.value());
  for (const auto& b : student.named_buffers(true)) out[b.key()] = CpuCopy(b.value());
  return out;
}

std::set<std::string> ParameterNames(const model::StudentImpl& student) {
  std::set<std::string> names;
  for (const auto& p : student.named_parameters(true)) names.insert(p.key());
  return names;
}

Status LoadState(model::StudentImpl& student, const TensorMap& state) {
  std::map<std::string, torch::Tensor> dst;
  for (const auto& p : student.named_parameters(true)) dst[p.key()] = p.value();
  for (const auto& b : student.named_buffers(true)) dst[b.key()] = b.value();
  for (const auto& [name, t] : dst) {
    auto it = state.find(name);
    if (it == state.end()) return Status::InvalidArgument("state lacks tensor '" + name + "'");
    if (!it->second.defined()) return Status::InvalidArgument("state tensor '" + name + "' is undefined");
    if (it->second.scalar_type() != t.scalar_type()) {
      return Status::InvalidArgument("state tensor '" + name + "' has dtype " +
                                     std::string(c10::toString(it->second.scalar_type())) + ", the model has " +
                                     c10::toString(t.scalar_type()));
    }
    if (it->second.sizes() != t.sizes()) {
      return Status::InvalidArgument("state tensor '" + name + "' has the wrong shape");
    }
  }
  for (const auto& [name, t] : state) {
    if (!dst.count(name)) return Status::InvalidArgument("state has tensor '" + name + "' the model does not");
  }
  try {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : dst) t.copy_(state.at(name));
  } catch (const std::exception& e) {
    return Status::Internal(std::string("LoadState: ") + e.what());
  }
  return Status::Ok();
}

std::string StateDigest(const TensorMap& state) {
  KD_CHECK(sodium_init() >= 0);
  crypto_hash_sha256_state h;
  crypto_hash_sha256_init(&h);
  static constexpr char kDomain[] = "kd-state-v1";
  crypto_hash_sha256_update(&h, reinterpret_cast<const uint8_t*>(kDomain), sizeof(kDomain) - 1);
  for (const auto& [name, tensor] : state) {
    KD_CHECK_MSG(tensor.defined(), "StateDigest: undefined tensor '" + name + "'");
    const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const char* tag = DtypeTag(t.scalar_type());
    KD_CHECK_MSG(tag != nullptr, "StateDigest: unsupported dtype of '" + name + "'");
    HashU32(&h, static_cast<uint32_t>(name.size()));
    crypto_hash_sha256_update(&h, reinterpret_cast<const uint8_t*>(name.data()), name.size());
    HashU32(&h, static_cast<uint32_t>(std::strlen(tag)));
    crypto_hash_sha256_update(&h, reinterpret_cast<const uint8_t*>(tag), std::strlen(tag));
    HashU32(&h, static_cast<uint32_t>(t.dim()));
    for (int64_t d : t.sizes()) HashU64(&h, static_cast<uint64_t>(d));
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    HashU64(&h, nbytes);
    // The host is little-endian (x86-64, aarch64): raw bytes are the canonical byte order.
    if (nbytes) crypto_hash_sha256_update(&h, static_cast<const uint8_t*>(t.data_ptr()), nbytes);
  }
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256_final(&h, digest);
  static const char* kHex = "0123456789abcdef";
  std::string hex;
  for (uint8_t c : digest) {
    hex.push_back(kHex[c >> 4]);
    hex.push_back(kHex[c & 15]);
  }
  return hex;
}

TensorMap RoundParametersToF16(const TensorMap& state, const std::set<std::string>& parameter_names) {
  torch::NoGradGuard no_grad;
  TensorMap out;
  for (const auto& [name, t] : state) {
    torch::Tensor v = CpuCopy(t);
    if (parameter_names.count(name) && v.scalar_type() == torch::kFloat) v = v.to(torch::kHalf).to(torch::kFloat);
    out[name] = v;
  }
  return out;
}

std::string ArchHash(const model::StudentOptions& options) {
  const std::string json = options.ArchJson();
  return model::Sha256Hex(reinterpret_cast<const uint8_t*>(json.data()), json.size());
}

}  // namespace kd::update
