#include "update/state.h"

#include <bit>
#include <cstring>

#include <torch/torch.h>

#include "base/coding.h"
#include "base/sha256.h"
#include "model/dtype_name.h"

namespace kd::update {
namespace {

// Tensor bytes are hashed (and shipped) in host order, which the formats define as little-endian.
static_assert(std::endian::native == std::endian::little, "kd_update assumes a little-endian host");

torch::Tensor CpuCopy(const torch::Tensor& t) { return t.detach().to(torch::kCPU).contiguous().clone(); }

void HashU32(Sha256Hasher* h, uint32_t v) {
  std::string b;
  PutLe32(&b, v);
  h->Update(b);
}
void HashU64(Sha256Hasher* h, uint64_t v) {
  std::string b;
  PutLe64(&b, v);
  h->Update(b);
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
  Sha256Hasher h;
  h.Update(std::string_view("kd-state-v1"));
  for (const auto& [name, tensor] : state) {
    KD_CHECK_MSG(tensor.defined(), "StateDigest: undefined tensor '" + name + "'");
    const torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const char* tag = model::DtypeName(t.scalar_type());
    KD_CHECK_MSG(tag != nullptr, "StateDigest: unsupported dtype of '" + name + "'");
    HashU32(&h, static_cast<uint32_t>(name.size()));
    h.Update(name);
    HashU32(&h, static_cast<uint32_t>(std::strlen(tag)));
    h.Update(std::string_view(tag));
    HashU32(&h, static_cast<uint32_t>(t.dim()));
    for (int64_t d : t.sizes()) HashU64(&h, static_cast<uint64_t>(d));
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    HashU64(&h, nbytes);
    // The host is little-endian (x86-64, aarch64): raw bytes are the canonical byte order.
    if (nbytes) h.Update(std::span<const uint8_t>(static_cast<const uint8_t*>(t.data_ptr()), nbytes));
  }
  return h.FinalHex();
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

std::string ArchHash(const model::StudentOptions& options) { return Sha256Hex(options.ArchJson()); }

}  // namespace kd::update
