#include "model/weights_file.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/coding.h"
#include "base/sha256.h"
#include "model/dtype_name.h"
#include "model/json_int.h"

namespace kd::model {
namespace {

constexpr char kMagic[4] = {'K', 'D', 'W', '1'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kAlign = 64;
constexpr size_t kShaBytes = kSha256Bytes;
constexpr size_t kMaxMetaBytes = 16u << 20;

size_t AlignUp(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// The dtypes a .kdw may hold (docs/WEIGHTS_FORMAT.md), named by the one map (model/dtype_name.h).
bool IsWeightsDtype(torch::ScalarType t) { return t == torch::kFloat || t == torch::kHalf || t == torch::kLong; }

Result<torch::ScalarType> WeightsDtypeFromName(const std::string& n) {
  const auto t = DtypeFromName(n);
  if (!t || !IsWeightsDtype(*t)) return Status::Corruption("unknown tensor dtype '" + n + "'");
  return *t;
}

// Every named parameter and buffer (deterministic order: registration order).
std::vector<std::pair<std::string, torch::Tensor>> NamedState(const StudentImpl& s) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& p : s.named_parameters(true)) out.emplace_back(p.key(), p.value());
  for (const auto& b : s.named_buffers(true)) out.emplace_back(b.key(), b.value());
  return out;
}

}  // namespace

Result<std::vector<uint8_t>> EncodeWeights(const StudentImpl& student, const WeightsMeta& meta, WeightDtype dtype) {
  torch::NoGradGuard no_grad;
  nlohmann::json tensors = nlohmann::json::array();
  std::vector<torch::Tensor> payloads;
  size_t offset = 0;
  for (auto& [name, t] : NamedState(student)) {
    torch::Tensor v = t.detach().to(torch::kCPU).contiguous();
    const bool is_bn_stat = name.find("running_") != std::string::npos;
    if (v.scalar_type() == torch::kFloat && dtype == WeightDtype::kF16 && !is_bn_stat) v = v.to(torch::kHalf);
    const char* dn = IsWeightsDtype(v.scalar_type()) ? DtypeName(v.scalar_type()) : nullptr;
    if (!dn) return Status::InvalidArgument("tensor '" + name + "' has an unsupported dtype");
    const size_t nbytes = static_cast<size_t>(v.numel()) * v.element_size();
    tensors.push_back(
        {{"name", name}, {"dtype", dn}, {"shape", v.sizes().vec()}, {"offset", offset}, {"nbytes", nbytes}});
    payloads.push_back(v);
    offset = AlignUp(offset + nbytes);
  }
  nlohmann::json meta_json = {{"arch", nlohmann::json::parse(student.options().ArchJson())},
                              {"model_version", meta.model_version},
                              {"base_version", meta.base_version},
                              {"created_by", meta.created_by},
                              {"created_unix_s", meta.created_unix_s},
                              {"tensors", tensors}};
  const std::string meta_text = meta_json.dump();
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  PutLe32(&out, kFormatVersion);
  PutLe32(&out, static_cast<uint32_t>(meta_text.size()));
  out.insert(out.end(), meta_text.begin(), meta_text.end());
  out.resize(AlignUp(out.size()), 0);
  const size_t data_start = out.size();
  out.resize(data_start + offset, 0);
  for (size_t i = 0; i < payloads.size(); ++i) {
    const size_t off = tensors[i]["offset"].get<size_t>();
    const size_t n = tensors[i]["nbytes"].get<size_t>();
    if (n) std::memcpy(out.data() + data_start + off, payloads[i].data_ptr(), n);
  }
  const std::string digest = Sha256Raw(out);
  out.insert(out.end(), digest.begin(), digest.end());
  return out;
}

Result<LoadedStudent> DecodeWeights(const std::vector<uint8_t>& bytes) {
  if (bytes.size() < 12 + kShaBytes || std::memcmp(bytes.data(), kMagic, 4) != 0) {
    return Status::Corruption("not a kd weight file (bad magic or too short)");
  }
  const uint32_t version = DecodeLe32(bytes.data() + 4);
  if (version != kFormatVersion) {
    return Status::Unimplemented("weight file format version " + std::to_string(version) + " (this build reads 1)");
  }
  const size_t body = bytes.size() - kShaBytes;
  const std::string digest = Sha256Raw(std::span<const uint8_t>(bytes.data(), body));
  if (std::memcmp(digest.data(), bytes.data() + body, kShaBytes) != 0) {
    return Status::Corruption("weight file checksum mismatch (truncated or corrupted)");
  }
  const uint32_t meta_len = DecodeLe32(bytes.data() + 8);
  if (meta_len > kMaxMetaBytes || 12 + static_cast<size_t>(meta_len) > body) {
    return Status::Corruption("weight file metadata length out of range");
  }
  LoadedStudent loaded;
  try {
    auto meta = nlohmann::json::parse(bytes.begin() + 12, bytes.begin() + 12 + meta_len);
    KD_ASSIGN_OR_RETURN(StudentOptions options, StudentOptions::FromArchJson(meta.at("arch").dump()));
    loaded.meta.model_version = internal::JsonInt<uint64_t>(meta.at("model_version"));
    loaded.meta.base_version = internal::JsonInt<uint64_t>(meta.at("base_version"));
    loaded.meta.created_by = meta.at("created_by").get<std::string>();
    loaded.meta.created_unix_s = internal::JsonInt<int64_t>(meta.at("created_unix_s"));
    loaded.student = Student(options);
    const size_t data_start = AlignUp(12 + meta_len);
    std::map<std::string, torch::Tensor> state;
    for (auto& [name, t] : NamedState(*loaded.student)) state[name] = t;
    std::set<std::string> seen;
    torch::NoGradGuard no_grad;
    for (const auto& jt : meta.at("tensors")) {
      const std::string name = jt.at("name").get<std::string>();
      auto it = state.find(name);
      if (it == state.end()) return Status::Corruption("weight file has unknown tensor '" + name + "'");
      // Listed twice, a tensor would count for one that is missing (left at its random init).
      if (!seen.insert(name).second) return Status::Corruption("weight file lists tensor '" + name + "' twice");
      KD_ASSIGN_OR_RETURN(torch::ScalarType st, WeightsDtypeFromName(jt.at("dtype").get<std::string>()));
      const auto shape = internal::JsonInts<int64_t>(jt.at("shape"));
      if (shape != it->second.sizes().vec()) return Status::Corruption("tensor '" + name + "' has the wrong shape");
      const auto off = internal::JsonInt<size_t>(jt.at("offset")), n = internal::JsonInt<size_t>(jt.at("nbytes"));
      int64_t numel = 1;
      for (int64_t d : shape) numel *= d;
      // Checked without wrapping: an offset near 2^64 used to make data_start + off + n wrap around
      // and pass, then a read before the buffer (fuzz/corpus/weights/regress-offset-wrap).
      if (n != static_cast<size_t>(numel) * c10::elementSize(st) || data_start > body || off > body - data_start ||
          n > body - data_start - off) {
        return Status::Corruption("tensor '" + name + "' lies outside the file");
      }
      auto src = torch::from_blob(const_cast<uint8_t*>(bytes.data() + data_start + off), shape, st);
      it->second.copy_(src.to(it->second.scalar_type()));
    }
    if (seen.size() != state.size()) return Status::Corruption("weight file is missing tensors");
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("malformed weight file metadata: ") + e.what());
  }
  loaded.student->eval();
  loaded.sha256_hex = Sha256Hex(bytes);
  return loaded;
}

Status SaveWeights(const std::string& path, const StudentImpl& student, const WeightsMeta& meta, WeightDtype dtype) {
  KD_ASSIGN_OR_RETURN(auto bytes, EncodeWeights(student, meta, dtype));
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return Status::IOError("cannot write '" + tmp + "'");
    f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      return Status::IOError("short write to '" + tmp + "' (disk full?)");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return Status::IOError("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  return Status::Ok();
}

Result<LoadedStudent> LoadWeights(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::NotFound("cannot open weight file '" + path + "'");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)), {});
  auto r = DecodeWeights(bytes);
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

}  // namespace kd::model
