#include "update/slots.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sodium.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sys/stat.h>

#include "update/file_io.h"

namespace kd::update {
namespace {

namespace fs = std::filesystem;

constexpr char kStateFile[] = "state.json";
constexpr char kStateFormat[] = "kd-slots-v1";
constexpr char kPartialPrefix[] = "download-";
constexpr char kPartialSuffix[] = ".partial";

std::string Errno() { return std::strerror(errno); }
std::string Join(const std::string& dir, const std::string& name) { return (fs::path(dir) / name).string(); }
std::string Other(const std::string& slot) { return slot == "a" ? "b" : "a"; }
bool IsSlot(const std::string& s) { return s == "a" || s == "b"; }

// The structural check of a .kdw (docs/WEIGHTS_FORMAT.md): magic and the trailing SHA-256 over
// everything before it. Full decoding is the loader's job; this keeps torn or foreign bytes out of
// a slot.
Status CheckKdw(std::span<const uint8_t> bytes) {
  constexpr size_t kSha = crypto_hash_sha256_BYTES;
  if (bytes.size() < 12 + kSha || std::memcmp(bytes.data(), "KDW1", 4) != 0) {
    return Status::Corruption("not a kd weight file (bad magic or too short)");
  }
  KD_CHECK(sodium_init() >= 0);
  uint8_t digest[kSha];
  crypto_hash_sha256(digest, bytes.data(), bytes.size() - kSha);
  if (std::memcmp(digest, bytes.data() + bytes.size() - kSha, kSha) != 0) {
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

Status RemoveFile(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Status::IOError("cannot remove '" + path + "': " + Errno());
  }
  return Status::Ok();
}

}  // namespace

Result<ModelSlots> ModelSlots::Open(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create '" + dir + "': " + ec.message());
  ModelSlots slots(dir);
  const std::string path = Join(dir, kStateFile);
  auto bytes = internal::ReadFile(path);
  if (bytes.ok()) {
    KD_ASSIGN_OR_RETURN(slots.state_, ParseState(path, *bytes));
  } else if (!bytes.status().IsNotFound()) {
    return bytes.status();
  }
  for (const std::string& slot : {slots.state_.committed_slot, slots.state_.trial_slot}) {
    if (!slot.empty() && !fs::exists(slots.SlotPath(slot), ec)) {
      return Status::Corruption("'" + path + "' names slot " + slot + " but '" + slots.SlotPath(slot) + "' is missing");
    }
  }
  // Temp files are what a crash before a rename leaves behind; they are never read.
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".tmp") fs::remove(entry.path(), ec);
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
  KD_RETURN_IF_ERROR(internal::WriteFileAtomic(Join(dir_, kStateFile), StateJson(next)));
  state_ = next;
  return Status::Ok();
}

Status ModelSlots::Bootstrap(const std::string& kdw_path, uint64_t version) {
  if (!state_.committed_slot.empty()) return Status::Ok();
  KD_ASSIGN_OR_RETURN(auto bytes, internal::ReadFile(kdw_path));
  KD_RETURN_IF_ERROR(CheckKdw(bytes).WithContext(kdw_path));
  // Slot file first, then the state naming it: a crash in between leaves an empty state and a
  // bootstrap that simply runs again.
  KD_RETURN_IF_ERROR(internal::WriteFileAtomic(SlotPath("a"), std::span<const uint8_t>(bytes)));
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
  KD_RETURN_IF_ERROR(internal::WriteFileAtomic(SlotPath(slot), kdw_bytes));
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
                                                         uint64_t size) {
  if (!internal::IsSha256Hex(artifact_sha256)) {
    return Status::InvalidArgument("artefact id must be a lowercase hex sha256, not '" + artifact_sha256 + "'");
  }
  if (size == 0) return Status::InvalidArgument("artefact size must be > 0");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create '" + dir + "': " + ec.message());
  Download d;
  d.dir_ = dir;
  d.sha256_ = artifact_sha256;
  d.size_ = size;
  const std::string name = kPartialPrefix + artifact_sha256 + kPartialSuffix;
  d.path_ = Join(dir, name);
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string other = entry.path().filename().string();
    if (other != name && other.rfind(kPartialPrefix, 0) == 0 && other.size() > sizeof(kPartialSuffix) &&
        other.ends_with(kPartialSuffix)) {
      KD_RETURN_IF_ERROR(RemoveFile(entry.path().string()));
    }
  }
  if (ec) return Status::IOError("cannot list '" + dir + "': " + ec.message());
  struct stat st {};
  if (::stat(d.path_.c_str(), &st) == 0) {
    if (static_cast<uint64_t>(st.st_size) > size) {
      KD_RETURN_IF_ERROR(RemoveFile(d.path_));
    } else {
      d.have_ = static_cast<uint64_t>(st.st_size);
    }
  } else if (errno != ENOENT) {
    return Status::IOError("cannot stat '" + d.path_ + "': " + Errno());
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
  const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("cannot open '" + path_ + "': " + Errno());
  struct stat st {};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) != have_) {
    ::close(fd);
    return Status::FailedPrecondition("'" + path_ + "' changed on disk; begin the download again");
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string err = Errno();
      // Cut back to the last whole chunk so that have() stays the resume point.
      if (::ftruncate(fd, static_cast<off_t>(have_)) != 0) {
        // Nothing more to do: Begin() re-reads the size, Finish() checks the hash.
      }
      ::close(fd);
      return Status::IOError("short write to '" + path_ + "' (disk full?): " + err);
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd) != 0) {
    const std::string err = Errno();
    ::close(fd);
    return Status::IOError("fdatasync of '" + path_ + "' failed: " + err);
  }
  ::close(fd);
  have_ += bytes.size();
  return Status::Ok();
}

Result<std::vector<uint8_t>> ModelSlots::Download::Finish() {
  if (have_ != size_) {
    return Status::FailedPrecondition("download incomplete: " + std::to_string(have_) + " of " + std::to_string(size_) +
                                      " bytes");
  }
  KD_ASSIGN_OR_RETURN(auto bytes, internal::ReadFile(path_));
  KD_CHECK(sodium_init() >= 0);
  uint8_t digest[crypto_hash_sha256_BYTES];
  crypto_hash_sha256(digest, bytes.data(), bytes.size());
  const std::string hex = internal::ToHex(std::span<const uint8_t>(digest, sizeof(digest)));
  if (bytes.size() != size_ || hex != sha256_) {
    KD_RETURN_IF_ERROR(RemoveFile(path_));
    have_ = 0;
    return Status::Corruption("download of " + sha256_.substr(0, 16) + " has sha256 " + hex.substr(0, 16) +
                              " (corrupted in transit); the partial was deleted");
  }
  KD_RETURN_IF_ERROR(RemoveFile(path_));
  KD_RETURN_IF_ERROR(internal::SyncDir(dir_));
  have_ = 0;
  return bytes;
}

Status ModelSlots::Download::Abandon() {
  KD_RETURN_IF_ERROR(RemoveFile(path_));
  have_ = 0;
  return Status::Ok();
}

}  // namespace kd::update
