#include "update/slots.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "base/file_system.h"
#include "base/hex.h"
#include "base/sha256.h"

namespace kd::update {
namespace {

namespace fs = std::filesystem;

constexpr char kStateFile[] = "state.json";
constexpr char kStateFormat[] = "kd-slots-v1";
constexpr char kPartialPrefix[] = "download-";
constexpr char kPartialSuffix[] = ".partial";

std::string Join(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }
std::string Other(const std::string& slot) { return slot == "a" ? "b" : "a"; }
bool IsSlot(const std::string& s) { return s == "a" || s == "b"; }

// The structural check of a .kdw (docs/WEIGHTS_FORMAT.md): magic and the trailing SHA-256 over
// everything before it. Full decoding is the loader's job; this keeps torn or foreign bytes out of
// a slot.
Status CheckKdw(std::span<const uint8_t> bytes) {
  constexpr size_t kSha = kSha256Bytes;
  if (bytes.size() < 12 + kSha || std::memcmp(bytes.data(), "KDW1", 4) != 0) {
    return Status::Corruption("not a kd weight file (bad magic or too short)");
  }
  const std::string digest = Sha256Raw(bytes.first(bytes.size() - kSha));
  if (std::memcmp(digest.data(), bytes.data() + bytes.size() - kSha, kSha) != 0) {
    return Status::Corruption("weight file checksum mismatch (truncated or corrupted)");
  }
  return Status::Ok();
}

std::string StateJson(const SlotState& s) {
  nlohmann::json j = {{"format", kStateFormat},
                      {"committed_version", s.committed_version},
                      {"committed_slot", s.committed_slot},
                      {"trial_version", s.trial_version},
                      {"trial_slot", s.trial_slot},
                      {"trial_starts", s.trial_starts},
                      {"floor_version", s.floor_version},
                      {"last_rolled_back_version", s.last_rolled_back_version}};
  return j.dump(2) + "\n";
}

// "" when consistent, else what is wrong.
std::string Inconsistency(const SlotState& s) {
  if (!s.committed_slot.empty() && !IsSlot(s.committed_slot)) return "committed_slot must be \"a\" or \"b\"";
  if (s.committed_slot.empty() && s.committed_version != 0) return "committed_version without a committed_slot";
  if ((s.trial_version == 0) != s.trial_slot.empty()) return "trial_version and trial_slot disagree";
  if (!s.trial_slot.empty()) {
    if (!IsSlot(s.trial_slot)) return "trial_slot must be \"a\" or \"b\"";
    if (s.trial_slot == s.committed_slot) return "trial_slot is the committed slot";
  }
  if (s.trial_version == 0 && s.trial_starts != 0) return "trial_starts without a trial";
  return "";
}

Result<SlotState> ParseState(const std::string& path, const std::vector<uint8_t>& bytes) {
  SlotState s;
  try {
    const auto j = nlohmann::json::parse(bytes.begin(), bytes.end());
    if (j.at("format").get<std::string>() != kStateFormat) {
      return Status::Corruption("'" + path + "': unknown format '" + j.at("format").get<std::string>() + "'");
    }
    s.committed_version = j.at("committed_version").get<uint64_t>();
    s.committed_slot = j.at("committed_slot").get<std::string>();
    s.trial_version = j.at("trial_version").get<uint64_t>();
    s.trial_slot = j.at("trial_slot").get<std::string>();
    s.trial_starts = j.at("trial_starts").get<uint32_t>();
    s.floor_version = j.at("floor_version").get<uint64_t>();
    s.last_rolled_back_version = j.value("last_rolled_back_version", uint64_t{0});
  } catch (const std::exception& e) {
    return Status::Corruption("'" + path + "' is damaged (" + e.what() +
                              "); it was left as is: inspect it, or remove the directory to re-bootstrap");
  }
  if (std::string p = Inconsistency(s); !p.empty()) return Status::Corruption("'" + path + "' is inconsistent: " + p);
  return s;
}

}  // namespace

Result<ModelSlots> ModelSlots::Open(const std::string& dir, FileSystem& fs) {
  KD_RETURN_IF_ERROR(fs.CreateDirs(dir));
  ModelSlots slots(dir, fs);
  const std::string path = Join(dir, kStateFile);
  auto bytes = fs.ReadFile(path);
  if (bytes.ok()) {
    KD_ASSIGN_OR_RETURN(slots.state_, ParseState(path, *bytes));
  } else if (!bytes.status().IsNotFound()) {
    return bytes.status();
  }
  for (const std::string& slot : {slots.state_.committed_slot, slots.state_.trial_slot}) {
    if (slot.empty()) continue;
    auto size = fs.FileSize(slots.SlotPath(slot));
    if (size.status().IsNotFound()) {
      return Status::Corruption("'" + path + "' names slot " + slot + " but '" + slots.SlotPath(slot) + "' is missing");
    }
    KD_RETURN_IF_ERROR(size.status());
  }
  // Temp files are what a crash before a rename leaves behind; they are never read.
  KD_ASSIGN_OR_RETURN(auto names, fs.ListDir(dir));
  for (const auto& name : names) {
    if (name.ends_with(".tmp")) KD_RETURN_IF_ERROR(fs.Remove(Join(dir, name)));
  }
  return slots;
}

std::string ModelSlots::SlotPath(const std::string& slot) const {
  KD_CHECK_MSG(IsSlot(slot), "slot must be \"a\" or \"b\", not '" + slot + "'");
  return Join(dir_, "slot-" + slot + ".kdw");
}

std::string ModelSlots::CommittedPath() const {
  return state_.committed_slot.empty() ? "" : SlotPath(state_.committed_slot);
}

std::string ModelSlots::TrialPath() const { return state_.trial_slot.empty() ? "" : SlotPath(state_.trial_slot); }

std::string ModelSlots::ActivePath() const { return state_.trial_slot.empty() ? CommittedPath() : TrialPath(); }

Status ModelSlots::Persist(const SlotState& next) {
  KD_CHECK_MSG(Inconsistency(next).empty(), Inconsistency(next));
  const std::string json = StateJson(next);
  KD_RETURN_IF_ERROR(
      WriteFileAtomic(*fs_, Join(dir_, kStateFile),
                      std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(json.data()), json.size())));
  state_ = next;
  return Status::Ok();
}

Status ModelSlots::Bootstrap(const std::string& kdw_path, uint64_t version) {
  if (!state_.committed_slot.empty()) return Status::Ok();
  KD_ASSIGN_OR_RETURN(auto bytes, fs_->ReadFile(kdw_path));
  KD_RETURN_IF_ERROR(CheckKdw(bytes).WithContext(kdw_path));
  // Slot file first, then the state naming it: a crash in between leaves an empty state and a
  // bootstrap that simply runs again.
  KD_RETURN_IF_ERROR(WriteFileAtomic(*fs_, SlotPath("a"), std::span<const uint8_t>(bytes)));
  SlotState next;
  next.committed_version = version;
  next.committed_slot = "a";
  next.floor_version = std::max(state_.floor_version, version);
  next.last_rolled_back_version = state_.last_rolled_back_version;
  return Persist(next);
}

Status ModelSlots::StageTrial(uint64_t version, std::span<const uint8_t> kdw_bytes) {
  if (state_.committed_slot.empty()) return Status::FailedPrecondition("no committed model: Bootstrap first");
  if (version <= state_.floor_version || version <= state_.committed_version) {
    return Status::FailedPrecondition("version " + std::to_string(version) + " is not above the floor " +
                                      std::to_string(std::max(state_.floor_version, state_.committed_version)));
  }
  KD_RETURN_IF_ERROR(CheckKdw(kdw_bytes));
  const std::string slot = Other(state_.committed_slot);
  // A pending trial lives in the same slot: un-name it before its file is replaced, so that the
  // state never names a slot whose bytes belong to another version.
  if (state_.trial_version != 0) {
    SlotState cleared = state_;
    cleared.trial_version = 0;
    cleared.trial_slot.clear();
    cleared.trial_starts = 0;
    KD_RETURN_IF_ERROR(Persist(cleared));
  }
  KD_RETURN_IF_ERROR(WriteFileAtomic(*fs_, SlotPath(slot), kdw_bytes));
  SlotState next = state_;
  next.trial_version = version;
  next.trial_slot = slot;
  next.trial_starts = 0;
  return Persist(next);
}

Status ModelSlots::CommitTrial() {
  if (state_.trial_version == 0) return Status::FailedPrecondition("no trial to commit");
  SlotState next = state_;
  next.committed_version = state_.trial_version;
  next.committed_slot = state_.trial_slot;
  next.floor_version = std::max(state_.floor_version, state_.trial_version);
  next.trial_version = 0;
  next.trial_slot.clear();
  next.trial_starts = 0;
  return Persist(next);
}

Status ModelSlots::RollbackTrial() {
  if (state_.trial_version == 0) return Status::Ok();
  SlotState next = state_;
  next.last_rolled_back_version = state_.trial_version;
  next.trial_version = 0;
  next.trial_slot.clear();
  next.trial_starts = 0;
  return Persist(next);
}

Result<bool> ModelSlots::NoteStart(uint32_t max_trial_starts) {
  if (state_.trial_version == 0) return false;
  SlotState next = state_;
  ++next.trial_starts;
  if (next.trial_starts > max_trial_starts) {
    KD_RETURN_IF_ERROR(RollbackTrial());
    return true;
  }
  KD_RETURN_IF_ERROR(Persist(next));
  return false;
}

Result<ModelSlots::Download> ModelSlots::Download::Begin(const std::string& dir, const std::string& artifact_sha256,
                                                         uint64_t size, FileSystem& fs) {
  if (!IsSha256Hex(artifact_sha256)) {
    return Status::InvalidArgument("artefact id must be a lowercase hex sha256, not '" + artifact_sha256 + "'");
  }
  if (size == 0) return Status::InvalidArgument("artefact size must be > 0");
  KD_RETURN_IF_ERROR(fs.CreateDirs(dir));
  Download d;
  d.fs_ = &fs;
  d.dir_ = dir;
  d.sha256_ = artifact_sha256;
  d.size_ = size;
  const std::string name = kPartialPrefix + artifact_sha256 + kPartialSuffix;
  d.path_ = Join(dir, name);
  KD_ASSIGN_OR_RETURN(auto names, fs.ListDir(dir));
  for (const auto& other : names) {
    if (other != name && other.rfind(kPartialPrefix, 0) == 0 && other.size() > sizeof(kPartialSuffix) &&
        other.ends_with(kPartialSuffix)) {
      KD_RETURN_IF_ERROR(fs.Remove(Join(dir, other)));
    }
  }
  auto have = fs.FileSize(d.path_);
  if (have.ok()) {
    if (*have > size) {
      KD_RETURN_IF_ERROR(fs.Remove(d.path_));
    } else {
      d.have_ = *have;
    }
  } else if (!have.status().IsNotFound()) {
    return have.status();
  }
  return d;
}

Status ModelSlots::Download::Append(uint64_t offset, std::span<const uint8_t> bytes) {
  if (offset != have_) {
    return Status::InvalidArgument("download of " + sha256_.substr(0, 16) + ": chunk at offset " +
                                   std::to_string(offset) + ", expected " + std::to_string(have_));
  }
  if (bytes.size() > size_ - have_) {
    return Status::InvalidArgument("download of " + sha256_.substr(0, 16) + ": chunk runs past the artefact size " +
                                   std::to_string(size_));
  }
  if (bytes.empty()) return Status::Ok();
  auto size_now = fs_->FileSize(path_);
  if (!size_now.ok() && !size_now.status().IsNotFound()) return size_now.status();
  const uint64_t on_disk = size_now.ok() ? *size_now : 0;
  if (on_disk != have_) return Status::FailedPrecondition("'" + path_ + "' changed on disk; begin the download again");
  KD_ASSIGN_OR_RETURN(auto file, fs_->OpenWritable(path_, FileSystem::OpenMode::kAppend, 0644));
  Status st = file->Append(bytes);
  if (!st.ok()) {
    // Cut back to the last whole chunk so that have() stays the resume point (if this fails too,
    // Begin() re-reads the size and Finish() checks the hash).
    (void)file->Truncate(have_);
    return st;
  }
  KD_RETURN_IF_ERROR(file->Sync());
  KD_RETURN_IF_ERROR(file->Close());
  have_ += bytes.size();
  return Status::Ok();
}

Result<std::vector<uint8_t>> ModelSlots::Download::Finish() {
  if (have_ != size_) {
    return Status::FailedPrecondition("download incomplete: " + std::to_string(have_) + " of " + std::to_string(size_) +
                                      " bytes");
  }
  KD_ASSIGN_OR_RETURN(auto bytes, fs_->ReadFile(path_));
  const std::string hex = Sha256Hex(bytes);
  if (bytes.size() != size_ || hex != sha256_) {
    KD_RETURN_IF_ERROR(fs_->Remove(path_));
    have_ = 0;
    return Status::Corruption("download of " + sha256_.substr(0, 16) + " has sha256 " + hex.substr(0, 16) +
                              " (corrupted in transit); the partial was deleted");
  }
  KD_RETURN_IF_ERROR(fs_->Remove(path_));
  KD_RETURN_IF_ERROR(fs_->SyncDir(dir_));
  have_ = 0;
  return bytes;
}

Status ModelSlots::Download::Abandon() {
  KD_RETURN_IF_ERROR(fs_->Remove(path_));
  have_ = 0;
  return Status::Ok();
}

}  // namespace kd::update
