#include "storage/frame_journal.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "base/check.h"
#include "base/coding.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "storage/record_codec.h"

namespace kd::storage {
namespace {

constexpr std::string_view kFilePrefix = "frames-";
constexpr std::string_view kFileSuffix = ".log";

std::string FileName(uint64_t number) {
  char name[48];
  std::snprintf(name, sizeof(name), "frames-%020llu.log", static_cast<unsigned long long>(number));
  return name;
}

// The number of a journal file name, 0 for any other name.
uint64_t FileNumber(std::string_view name) {
  if (name.size() != kFilePrefix.size() + 20 + kFileSuffix.size() || !name.starts_with(kFilePrefix) ||
      !name.ends_with(kFileSuffix)) {
    return 0;
  }
  uint64_t n = 0;
  for (char c : name.substr(kFilePrefix.size(), 20)) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  return n;
}

std::span<const uint8_t> Bytes(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

}  // namespace

std::string EncodeJournalHeader(uint32_t key_bytes, uint32_t value_bytes) {
  std::string h;
  h.reserve(kJournalHeaderBytes);
  PutLe32(&h, kJournalMagic);
  PutLe32(&h, key_bytes);
  PutLe32(&h, value_bytes);
  PutLe32(&h, Crc32c(h));
  return h;
}

JournalParse ParseJournal(std::string_view bytes,
                          const std::function<void(std::string_view key, std::string_view value)>& fn) {
  JournalParse out;
  size_t pos = 0;
  auto stop = [&](std::string why) {
    out.tail_bytes = bytes.size() - pos;
    if (out.first_problem.empty()) out.first_problem = "at byte " + std::to_string(pos) + ": " + why;
  };
  while (pos < bytes.size()) {
    const std::string_view rest = bytes.substr(pos);
    if (rest.size() < kJournalHeaderBytes) {
      stop("a header cut short (" + std::to_string(rest.size()) + " bytes)");
      break;
    }
    const uint32_t magic = DecodeLe32(rest.data());
    const uint32_t key_bytes = DecodeLe32(rest.data() + 4);
    const uint32_t value_bytes = DecodeLe32(rest.data() + 8);
    const uint32_t crc = DecodeLe32(rest.data() + 12);
    if (magic != kJournalMagic) {
      stop("no record magic");
      break;
    }
    if (crc != Crc32c(rest.substr(0, 12))) {
      stop("header CRC32C mismatch");
      break;
    }
    const uint64_t body = uint64_t{key_bytes} + value_bytes;
    if (body > rest.size() - kJournalHeaderBytes) {
      stop("a record of " + std::to_string(body) + " bytes cut short");
      break;
    }
    const std::string_view key = rest.substr(kJournalHeaderBytes, key_bytes);
    const std::string_view value = rest.substr(kJournalHeaderBytes + key_bytes, value_bytes);
    pos += kJournalHeaderBytes + static_cast<size_t>(body);
    ParsedKey parsed;
    Status check = key_bytes <= kJournalMaxKeyBytes && ParseSampleKey(key, &parsed)
                       ? DecodeFrameValue(key, value, nullptr)
                       : Status::Corruption("malformed key");
    if (!check.ok()) {
      ++out.damaged_records;
      if (out.first_problem.empty())
        out.first_problem = "record ending at byte " + std::to_string(pos) + ": " + check.ToString();
      continue;
    }
    ++out.records;
    fn(key, value);
  }
  return out;
}

// ---- FrameJournal -------------------------------------------------------------------------------

FrameJournal::FrameJournal(FileSystem& fs, std::string dir, uint64_t rotate_bytes)
    : fs_(fs), dir_(std::move(dir)), rotate_bytes_(rotate_bytes) {}

FrameJournal::~FrameJournal() {
  if (file_ != nullptr) (void)file_->Close();
}

Result<std::unique_ptr<FrameJournal>> FrameJournal::Open(FileSystem& fs, std::string dir, uint64_t rotate_bytes) {
  KD_RETURN_IF_ERROR(fs.CreateDirs(dir));
  std::unique_ptr<FrameJournal> j(new FrameJournal(fs, std::move(dir), rotate_bytes));
  KD_ASSIGN_OR_RETURN(std::vector<std::string> files, j->ListFiles());
  j->found_ = std::move(files);
  if (!j->found_.empty()) {
    const std::string last = j->found_.back().substr(j->dir_.size() + 1);
    j->next_number_ = FileNumber(last) + 1;
  }
  return j;
}

Result<std::vector<std::string>> FrameJournal::ListFiles() const {
  KD_ASSIGN_OR_RETURN(std::vector<std::string> names, fs_.ListDir(dir_));
  std::vector<std::pair<uint64_t, std::string>> numbered;
  for (const std::string& n : names) {
    if (const uint64_t number = FileNumber(n); number != 0) numbered.emplace_back(number, dir_ + "/" + n);
  }
  std::sort(numbered.begin(), numbered.end());
  std::vector<std::string> paths;
  paths.reserve(numbered.size());
  for (auto& [number, path] : numbered) paths.push_back(std::move(path));
  return paths;
}

Status FrameJournal::RemoveFound() {
  for (const std::string& path : found_) KD_RETURN_IF_ERROR(fs_.Remove(path));
  if (!found_.empty()) {
    KD_RETURN_IF_ERROR(fs_.SyncDir(dir_));
  }
  found_.clear();
  return Status::Ok();
}

Status FrameJournal::StartFile() {
  const std::string path = dir_ + "/" + FileName(next_number_);
  KD_ASSIGN_OR_RETURN(std::unique_ptr<WritableFile> file,
                      fs_.OpenWritable(path, FileSystem::OpenMode::kTruncate, 0644));
  ++next_number_;  // a failed start below still skips the number: the file may exist
  // The new name must survive a power cut before anything in it is acknowledged.
  if (Status st = fs_.SyncDir(dir_); !st.ok()) {
    (void)file->Close();
    (void)fs_.Remove(path);
    return st;
  }
  std::lock_guard lock(mu_);
  file_ = std::move(file);
  path_ = path;
  size_ = 0;
  max_seqno_ = 0;
  return Status::Ok();
}

void FrameJournal::CloseCurrent() {
  std::unique_ptr<WritableFile> file;
  {
    std::lock_guard lock(mu_);
    KD_CHECK(file_ != nullptr);
    file = std::move(file_);
    closed_.push_back({path_, size_, max_seqno_});
  }
  if (Status st = file->Close(); !st.ok()) {
    KD_LOG(kWarn) << "frame journal: " << st.ToString();
  }
}

Status FrameJournal::Append(std::span<const JournalRecord> records) {
  KD_CHECK_MSG(found_.empty(), "FrameJournal::Append before the found files were replayed and removed");
  if (file_ == nullptr) {
    KD_RETURN_IF_ERROR(StartFile());
  }
  const uint64_t start = size_;
  uint64_t appended = 0;
  Status st;
  for (const JournalRecord& r : records) {
    const uint64_t value_bytes = r.head.size() + r.body.size() + r.tail.size();
    KD_CHECK(r.key.size() <= kJournalMaxKeyBytes && value_bytes <= UINT32_MAX);
    // Header and key in one write, the JPEG where it lies, the CRC tail: three writes a frame.
    std::string prefix = EncodeJournalHeader(static_cast<uint32_t>(r.key.size()), static_cast<uint32_t>(value_bytes));
    prefix.append(r.key);
    prefix.append(r.head);
    st = file_->Append(Bytes(prefix));
    if (st.ok()) st = file_->Append(r.body);
    if (st.ok()) st = file_->Append(Bytes(r.tail));
    if (!st.ok()) break;
    appended += prefix.size() + r.body.size() + r.tail.size();
  }
  if (st.ok()) {
    std::lock_guard lock(mu_);
    size_ = start + appended;
    return st;
  }
  // A partial record must not stay in the middle of a file: later records behind it would not be
  // replayed. Cut it off, or end the file here.
  if (Status cut = file_->Truncate(start); !cut.ok()) {
    KD_LOG(kWarn) << "frame journal: cannot cut " << path_ << " back after a failed append (" << cut.ToString()
                  << "); continuing in a new file";
    CloseCurrent();
  }
  return st.WithContext("appending to the frame journal");
}

Status FrameJournal::Sync() {
  if (file_ == nullptr) return Status::Ok();
  Status st = file_->Sync();
  if (!st.ok()) CloseCurrent();
  return st.WithContext("syncing the frame journal");
}

void FrameJournal::Written(uint64_t seqno) {
  std::lock_guard lock(mu_);
  max_seqno_ = std::max(max_seqno_, seqno);
}

void FrameJournal::MaybeRotate() {
  if (file_ != nullptr && size_ >= rotate_bytes_) CloseCurrent();
}

void FrameJournal::CloseFile() {
  if (file_ != nullptr) CloseCurrent();
}

void FrameJournal::Release(uint64_t flushed_seqno) {
  std::vector<std::string> remove;
  {
    std::lock_guard lock(mu_);
    // Files close in write order and their writes have increasing sequence numbers, so the
    // released ones are a prefix; a file that reached RocksDB with nothing (max_seqno 0) goes too.
    auto it = closed_.begin();
    for (; it != closed_.end() && it->max_seqno <= flushed_seqno; ++it) remove.push_back(it->path);
    closed_.erase(closed_.begin(), it);
  }
  for (const std::string& path : remove) {
    if (Status st = fs_.Remove(path); !st.ok()) {
      KD_LOG(kWarn) << "frame journal: " << st.ToString();
    }
  }
}

size_t FrameJournal::files() const {
  std::lock_guard lock(mu_);
  return closed_.size() + (file_ != nullptr ? 1 : 0);
}

uint64_t FrameJournal::bytes() const {
  std::lock_guard lock(mu_);
  uint64_t total = file_ != nullptr ? size_ : 0;
  for (const Closed& c : closed_) total += c.bytes;
  return total;
}

}  // namespace kd::storage
