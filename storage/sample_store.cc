#include "storage/sample_store.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include <rocksdb/cache.h>
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/iterator.h>
#include <rocksdb/listener.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <sys/statvfs.h>

#include "base/file_system.h"
#include "base/log.h"
#include "storage/frame_journal.h"
#include "storage/record_codec.h"

namespace kd::storage {
namespace {

constexpr char kFramesCf[] = "frames";
constexpr char kTeacherCf[] = "teacher";
constexpr char kMetaCf[] = "meta";

// The disk budget (FORMAT.md, "Retention and disk budget"): W = write buffer; 24 W are set aside
// (memtables 6 W, flushes landing before retention runs 8 W, room for retention's deletions 8 W,
// slack 2 W); of the rest, frames get 80%, teacher outputs 15%, meta and the marker 5%.
constexpr uint64_t kOverheadWriteBuffers = 24;
constexpr uint64_t kReserveWriteBuffers = 8;
constexpr uint64_t kFramesBudgetPercent = 80;
constexpr uint64_t kTeacherBudgetPercent = 15;
constexpr uint64_t kMinWriteBufferBytes = uint64_t{64} << 10;  // RocksDB's own floor
constexpr uint64_t kMaxWriteBufferBytes = uint64_t{64} << 20;
constexpr uint64_t kMaxWalBytes = uint64_t{256} << 20;
constexpr size_t kBlockCacheBytes = size_t{32} << 20;
constexpr size_t kPutStripes = 64;
// How long a write that only dropped-but-not-yet-unlinked files stand in the way of waits for
// RocksDB's background deletion before it is refused (NoSpace), and how often it looks.
constexpr int kPendingDeletionWaitMs = 2000;
constexpr int kPendingDeletionPollMs = 10;

std::string_view AsView(const rocksdb::Slice& s) { return {s.data(), s.size()}; }
rocksdb::Slice AsSlice(std::string_view s) { return {s.data(), s.size()}; }

Status CheckDeviceId(std::string_view device_id) {
  if (device_id.empty()) return Status::InvalidArgument("device_id is empty");
  if (device_id.size() > kMaxDeviceIdBytes) {
    return Status::InvalidArgument("device_id of " + std::to_string(device_id.size()) + " bytes (at most " +
                                   std::to_string(kMaxDeviceIdBytes) + ")");
  }
  return Status::Ok();
}

// ---- Sizes derived from the budget (FORMAT.md, "Retention and disk budget") ----------------------

struct DerivedSizes {
  uint64_t frames_budget = 0;
  uint64_t teacher_budget = 0;
  uint64_t write_buffer = 0;
  uint64_t max_wal = 0;
};

DerivedSizes Derive(uint64_t max_bytes) {
  DerivedSizes d;
  d.write_buffer = std::clamp<uint64_t>(max_bytes / 256, kMinWriteBufferBytes, kMaxWriteBufferBytes);
  const uint64_t usable = max_bytes - kOverheadWriteBuffers * d.write_buffer;  // > 0: max_bytes >= kMinMaxBytes
  d.frames_budget = usable / 100 * kFramesBudgetPercent;
  d.teacher_budget = usable / 100 * kTeacherBudgetPercent;
  d.max_wal = std::min<uint64_t>(max_bytes / 16, kMaxWalBytes);
  return d;
}

// Room kept free for FIFO retention: in RocksDB 7.8 deleting files needs as much free budget as
// the files being deleted (about one flush of up to 2 memtables per FIFO column family).
uint64_t RetentionReserve(const DerivedSizes& d) { return kReserveWriteBuffers * d.write_buffer; }

std::string FifoOptionString(uint64_t budget) {
  return "{max_table_files_size=" + std::to_string(budget) + ";allow_compaction=false;}";
}

rocksdb::CompressionType TeacherCompression() {
  const auto supported = rocksdb::GetSupportedCompressions();
  for (auto c : {rocksdb::kZSTD, rocksdb::kLZ4Compression}) {
    if (std::find(supported.begin(), supported.end(), c) != supported.end()) return c;
  }
  return rocksdb::kNoCompression;
}

}  // namespace

// Hands the frame journal what RocksDB has flushed of `frames` into table files, so that the
// journal files holding only flushed frames are deleted. Runs on RocksDB's flush thread; attached
// once the journal was replayed at Open, detached after RocksDB closed (which flushes first).
class JournalReleaser final : public rocksdb::EventListener {
 public:
  void Attach(FrameJournal* journal) {
    std::lock_guard lock(mu_);
    journal_ = journal;
  }
  void OnFlushCompleted(rocksdb::DB* /*db*/, const rocksdb::FlushJobInfo& info) override {
    if (info.cf_name != kFramesCf) return;
    std::lock_guard lock(mu_);
    if (journal_ != nullptr) journal_->Release(info.largest_seqno);
  }

 private:
  std::mutex mu_;
  FrameJournal* journal_ = nullptr;
};

// ---- Impl -----------------------------------------------------------------------------------------

struct SampleStore::Impl {
  StoreOptions options;
  std::atomic<uint64_t> max_bytes{0};
  std::shared_ptr<rocksdb::SstFileManager> sfm;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // owned; destroyed before db
  rocksdb::ColumnFamilyHandle* default_cf = nullptr;
  rocksdb::ColumnFamilyHandle* frames_cf = nullptr;
  rocksdb::ColumnFamilyHandle* teacher_cf = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf = nullptr;
  rocksdb::WriteOptions sample_write;  // teacher outputs: sync as options.sync_writes
  rocksdb::WriteOptions meta_write;    // meta and the format marker: always synced
  rocksdb::WriteOptions frames_write;  // frames: no WAL (the frame journal is theirs)
  FileSystem* journal_fs = nullptr;
  std::unique_ptr<FrameJournal> journal;
  std::shared_ptr<JournalReleaser> releaser = std::make_shared<JournalReleaser>();
  // Serialises frame writes (journal append, its sync, the RocksDB write), so that each journal
  // file's sequence numbers follow its appends. Held across the fsync: it is the frame write
  // path's own queue, as RocksDB's write leader is for the WAL (the learner has one ingest thread;
  // group commit happens in its batches, not across concurrent callers).
  std::mutex frame_write_mutex;
  // Serialises the check-then-write of PutFrame per key (striped), so concurrent duplicates of one
  // (device_id, seq) report exactly one "stored" and the rest "duplicate".
  std::array<std::mutex, kPutStripes> put_mutexes;
  // The highest frame seq stored per device, learnt on a device's first put (one reverse seek) and
  // raised by every put after its write, under the key's stripe. A frame above it cannot be stored
  // yet, so the put skips the point lookup that finds a resend: with FIFO compaction every table
  // file sits in L0, and that lookup probes the filter of each one (hundreds in a full store) for
  // each frame. Frames at or below it (resends, gaps refilled) are looked up as before.
  std::mutex max_seq_mutex;  // guards max_seq only; held for a map access, never across I/O
  std::unordered_map<std::string, uint64_t> max_seq;

  // True when `seq` is above every stored frame of `device_id` (false = look it up).
  bool AboveStored(const std::string& device_id, uint64_t seq) {
    std::lock_guard lock(max_seq_mutex);
    auto it = max_seq.find(device_id);
    return it != max_seq.end() && seq > it->second;
  }
  void NoteStored(const std::string& device_id, uint64_t seq) {
    std::lock_guard lock(max_seq_mutex);
    auto [it, inserted] = max_seq.try_emplace(device_id, seq);
    if (!inserted) it->second = std::max(it->second, seq);
  }
  bool KnowsMaxSeq(const std::string& device_id) {
    std::lock_guard lock(max_seq_mutex);
    return max_seq.count(device_id) != 0;
  }

  ~Impl() { Close(); }

  void Close() {
    if (db == nullptr) return;
    if (journal != nullptr) {
      // A clean close leaves no journal: the frames go into table files and the files are deleted
      // (RocksDB would flush them in Close too, but a current file is released only here).
      rocksdb::FlushOptions fo;
      fo.wait = true;
      const rocksdb::Status flushed = db->Flush(fo, frames_cf);
      if (flushed.ok()) {
        journal->CloseFile();
        journal->Release(db->GetLatestSequenceNumber());
      } else {
        KD_LOG(kWarn) << "closing sample store at " << options.path << ": flushing frames: " << flushed.ToString()
                      << " (the frame journal stays and is replayed at the next open)";
      }
    }
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
    handles.clear();
    const rocksdb::Status s = db->Close();
    if (!s.ok()) {
      KD_LOG(kWarn) << "closing sample store at " << options.path << ": " << s.ToString();
    }
    releaser->Attach(nullptr);
    db.reset();
    journal.reset();
  }

  // Frames acknowledged by the previous run but not yet in table files are in the journal files it
  // left: each valid record whose key has no valid stored value is written again, the result
  // flushed into table files, and the files removed (FORMAT.md, "Frame journal").
  Status ReplayJournal() {
    uint64_t replayed = 0, present = 0, damaged = 0, tail = 0;
    for (const std::string& file : journal->found()) {
      KD_ASSIGN_OR_RETURN(std::vector<uint8_t> bytes, journal_fs->ReadFile(file));
      rocksdb::WriteBatch batch;
      Status status;
      const JournalParse parse =
          ParseJournal(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                       [&](std::string_view key, std::string_view value) {
                         if (!status.ok()) return;
                         rocksdb::PinnableSlice existing;
                         const rocksdb::Status rs = db->Get(rocksdb::ReadOptions(), frames_cf, AsSlice(key), &existing);
                         if (rs.ok() && DecodeFrameValue(key, AsView(existing), nullptr).ok()) {
                           ++present;
                           return;
                         }
                         if (!rs.ok() && !rs.IsNotFound()) {
                           status = Map(rs, "replaying the frame journal: reading " + DescribeKey("frame", key));
                           return;
                         }
                         batch.Put(frames_cf, AsSlice(key), AsSlice(value));
                         ++replayed;
                       });
      KD_RETURN_IF_ERROR(status);
      if (batch.Count() > 0) {
        KD_RETURN_IF_ERROR(Map(db->Write(frames_write, &batch), "replaying " + file));
      }
      if (parse.damaged_records > 0) {
        KD_LOG(kWarn) << "frame journal " << file << ": " << parse.damaged_records
                      << " damaged records skipped (first: " << parse.first_problem << ")";
      } else if (parse.tail_bytes > 0) {
        KD_LOG(kInfo) << "frame journal " << file << ": " << parse.tail_bytes
                      << " bytes of an unfinished write ignored (" << parse.first_problem << ")";
      }
      damaged += parse.damaged_records;
      tail += parse.tail_bytes;
    }
    if (replayed > 0) {
      rocksdb::FlushOptions fo;
      fo.wait = true;
      KD_RETURN_IF_ERROR(Map(db->Flush(fo, frames_cf), "flushing the frames replayed from the journal"));
    }
    if (!journal->found().empty()) {
      KD_LOG(kInfo) << "sample store at " << options.path << ": frame journal replayed from " << journal->found().size()
                    << " files: " << replayed << " frames written again, " << present << " already in table files, "
                    << damaged << " damaged records, " << tail << " torn bytes";
    }
    return journal->RemoveFound();
  }

  // The frame write path: journal append, its sync (as options.sync_writes says), then the RocksDB
  // write without WAL. Only a frame that passed all three is acknowledged.
  Status WriteFrames(std::span<const JournalRecord> records, rocksdb::WriteBatch* batch, const std::string& what) {
    std::lock_guard lock(frame_write_mutex);
    KD_RETURN_IF_ERROR(journal->Append(records).WithContext(what));
    if (options.sync_writes) {
      KD_RETURN_IF_ERROR(journal->Sync().WithContext(what));
    }
    KD_RETURN_IF_ERROR(Map(db->Write(frames_write, batch), what));
    journal->Written(db->GetLatestSequenceNumber());
    journal->MaybeRotate();
    return Status::Ok();
  }

  std::mutex room_mutex;  // serialises CheckBudgetOrMakeRoom's synchronous retention

  std::mutex& StripeFor(const std::string& key) { return put_mutexes[std::hash<std::string>{}(key) % kPutStripes]; }

  // RocksDB status -> kd::Status, with context. Budget/full errors get one recognisable message.
  Status Map(const rocksdb::Status& s, const std::string& context) const {
    if (s.ok()) return Status::Ok();
    const std::string text = s.ToString();
    const std::string msg = context + ": " + text;
    if (s.IsNoSpace() || s.subcode() == rocksdb::Status::kSpaceLimit || text.find("Space limit") != std::string::npos ||
        text.find("No space") != std::string::npos) {
      return Status::NoSpace("disk budget/full: " + msg + " (max_bytes=" + std::to_string(max_bytes.load()) +
                             "); acknowledged data is kept; free space or raise max_bytes");
    }
    switch (s.code()) {
      case rocksdb::Status::kNotFound:
        return Status::NotFound(msg);
      case rocksdb::Status::kCorruption:
        return Status::Corruption(msg + " (not repaired automatically; restore from a backup, see FORMAT.md)");
      case rocksdb::Status::kIOError:
        if (text.find("/LOCK") != std::string::npos) {
          return Status::IOError(msg + " (is the store already open in this or another process?)");
        }
        return Status::IOError(msg);
      case rocksdb::Status::kInvalidArgument:
        return Status::InvalidArgument(msg);
      case rocksdb::Status::kNotSupported:
        return Status::Unimplemented(msg);
      case rocksdb::Status::kBusy:
      case rocksdb::Status::kTimedOut:
      case rocksdb::Status::kTryAgain:
      case rocksdb::Status::kShutdownInProgress:
        return Status::Unavailable(msg);
      default:
        return Status::Internal(msg);
    }
  }

  // Sets the disk budget: FIFO targets first, then the hard cap. In RocksDB 7.8 a FIFO deletion
  // counts against the SstFileManager cap like any compaction (it needs room for its inputs), so
  // retention could never catch up once usage is above the cap: it catches up here without a cap
  // (CompactRange on a FIFO column family only deletes the oldest files), then the cap is set.
  // Also clears a budget error so that writes resume.
  Status ApplyBudget(uint64_t new_max) {
    const DerivedSizes sizes = Derive(new_max);
    max_bytes = new_max;
    sfm->SetMaxAllowedSpaceUsage(0);
    Status status;
    const rocksdb::Status resumed = db->Resume();
    if (!resumed.ok() && !resumed.IsBusy()) status = Map(resumed, "resuming writes");
    const std::pair<rocksdb::ColumnFamilyHandle*, uint64_t> fifo[] = {{frames_cf, sizes.frames_budget},
                                                                      {teacher_cf, sizes.teacher_budget}};
    for (const auto& [cf, budget] : fifo) {
      if (!status.ok()) break;
      status = Map(db->SetOptions(cf, {{"compaction_options_fifo", FifoOptionString(budget)}}),
                   "setting the budget of '" + cf->GetName() + "'");
      if (!status.ok()) break;
      rocksdb::CompactRangeOptions cro;
      cro.exclusive_manual_compaction = false;
      status = Map(db->CompactRange(cro, cf, nullptr, nullptr), "applying retention to '" + cf->GetName() + "'");
    }
    sfm->SetMaxAllowedSpaceUsage(new_max);
    return status;
  }

  uint64_t IntProperty(rocksdb::ColumnFamilyHandle* cf, const std::string& property) const {
    uint64_t v = 0;
    return db->GetIntProperty(cf, property, &v) ? v : 0;
  }

  // The budget check made before every write. Refusing a write here keeps RocksDB out of its
  // read-only "space limit" state (which in 7.8 stalls FIFO retention too and recovers only by
  // polling every 5 s): table files + memtables + this write + a reserve must fit in max_bytes.
  // The reserve covers retention's own deletions and a compaction of the (level-compacted) meta
  // column family, which may rewrite all of it and whose output RocksDB reserves against the cap
  // while it runs (a flush that lands meanwhile would otherwise trip the cap). The SstFileManager
  // cap stays as the backstop.
  Status CheckBudget(const std::string& what, size_t incoming) const {
    const uint64_t cap = max_bytes.load();
    uint64_t memtables = 0;
    for (auto* cf : handles) memtables += IntProperty(cf, rocksdb::DB::Properties::kCurSizeAllMemTables);
    const uint64_t used = sfm->GetTotalSize() + memtables;
    const uint64_t reserve =
        RetentionReserve(Derive(cap)) + IntProperty(meta_cf, rocksdb::DB::Properties::kLiveSstFilesSize);
    if (used + incoming + reserve > cap) {
      return Status::NoSpace("disk budget/full: " + what + " (" + std::to_string(incoming) +
                             " bytes) would pass max_bytes=" + std::to_string(cap) + ": " + std::to_string(used) +
                             " bytes used, " + std::to_string(reserve) +
                             " kept free for retention and compaction; acknowledged data is kept; free space or "
                             "raise max_bytes");
    }
    // The disk itself, which may be smaller than the budget or shared: RocksDB must not meet
    // ENOSPC. In 7.8 a write that failed for it can end in an assertion that aborts the process
    // (Debian builds RocksDB with assertions), and its recovery only polls. The write needs room in
    // its log now (the frame journal or the WAL) and in a table file at the next flush; the
    // memtables not yet flushed need theirs; and a new log or table file is preallocated (about
    // one write buffer each).
    const std::optional<uint64_t> free = FreeDiskBytes();
    const uint64_t needed = 2 * (memtables + incoming) + 2 * Derive(cap).write_buffer;
    if (free.has_value() && *free < needed) {
      return Status::NoSpace("disk full: " + what + " (" + std::to_string(incoming) + " bytes) needs " +
                             std::to_string(needed) + " bytes free on the file system of '" + options.path + "', " +
                             std::to_string(*free) + " are; acknowledged data is kept; free space on that disk");
    }
    return Status::Ok();
  }

  // Bytes an unprivileged writer may still use on the store's file system (statvfs f_bavail);
  // nullopt when that cannot be read (then only the budget applies).
  std::optional<uint64_t> FreeDiskBytes() const {
    struct statvfs st {};
    if (::statvfs(options.path.c_str(), &st) != 0) return std::nullopt;
    return static_cast<uint64_t>(st.f_bavail) * static_cast<uint64_t>(st.f_frsize);
  }

  // Table files that retention or compaction has dropped but RocksDB's background job has not
  // unlinked yet: they still count on disk for a moment.
  uint64_t PendingDeletionBytes() const {
    uint64_t live = 0;
    for (auto* cf : handles) live += IntProperty(cf, rocksdb::DB::Properties::kLiveSstFilesSize);
    const uint64_t on_disk = sfm->GetTotalSize();
    return on_disk > live ? on_disk - live : 0;
  }

  // Waits (bounded: kPendingDeletionWaitMs) while the only thing in the way of a write is dropped
  // files not yet unlinked; on a busy machine that background job can lag by a second.
  Status CheckBudgetWaitingForDeletions(const std::string& what, size_t incoming) const {
    Status status = CheckBudget(what, incoming);
    for (int waited_ms = 0; !status.ok() && waited_ms < kPendingDeletionWaitMs && PendingDeletionBytes() > 0;
         waited_ms += kPendingDeletionPollMs) {
      std::this_thread::sleep_for(std::chrono::milliseconds(kPendingDeletionPollMs));
      status = CheckBudget(what, incoming);
    }
    return status;
  }

  // True when the frames or teacher column family holds more than its FIFO share: background
  // retention has not caught up yet, so dropping the oldest files would free room.
  bool RetentionIsBehind() const {
    const DerivedSizes sizes = Derive(max_bytes.load());
    const std::pair<rocksdb::ColumnFamilyHandle*, uint64_t> fifo[] = {{frames_cf, sizes.frames_budget},
                                                                      {teacher_cf, sizes.teacher_budget}};
    for (const auto& [cf, budget] : fifo) {
      uint64_t sst = 0, mem = 0;
      db->GetIntProperty(cf, rocksdb::DB::Properties::kLiveSstFilesSize, &sst);
      db->GetIntProperty(cf, rocksdb::DB::Properties::kCurSizeAllMemTables, &mem);
      if (sst + mem > budget) return true;
    }
    return false;
  }

  // Frame and teacher writes that do not fit make room before they are refused: FIFO retention
  // normally runs in the background and can lag a burst of writes (or a reopen with a smaller
  // budget), so flush the two retained column families and apply retention synchronously, then
  // check again. Serialised: one caller makes room while the others wait and re-check.
  Status CheckBudgetOrMakeRoom(const std::string& what, size_t incoming) {
    Status status = CheckBudget(what, incoming);
    if (status.ok()) return status;
    std::lock_guard<std::mutex> lock(room_mutex);
    status = CheckBudgetWaitingForDeletions(what, incoming);
    if (status.ok() || !RetentionIsBehind()) return status;  // nothing retention could free
    // The flush itself needs room for its output: lift the hard cap for it (ApplyBudget sets it
    // back), or RocksDB would enter its read-only "space limit" state.
    sfm->SetMaxAllowedSpaceUsage(0);
    rocksdb::FlushOptions fo;
    fo.wait = true;
    const rocksdb::Status flushed = db->Flush(fo, std::vector<rocksdb::ColumnFamilyHandle*>{frames_cf, teacher_cf});
    const Status applied = ApplyBudget(max_bytes.load());
    if (!flushed.ok()) return Map(flushed, "flushing before retention");
    KD_RETURN_IF_ERROR(applied);
    return CheckBudgetWaitingForDeletions(what, incoming);
  }

  rocksdb::ReadOptions ScanReadOptions() const {
    rocksdb::ReadOptions ro;
    ro.fill_cache = false;  // one pass over many large values: do not evict the point-lookup cache
    return ro;
  }
};

namespace {

rocksdb::ColumnFamilyOptions BaseCfOptions(const std::shared_ptr<rocksdb::Cache>& cache, uint64_t write_buffer) {
  rocksdb::ColumnFamilyOptions cf;
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  // XXH3, not CRC32C: Debian builds RocksDB for baseline x86-64, so its CRC32C is the table-driven
  // software one (perf during bench_loop: the largest part of the flush thread's time). The type is
  // recorded per table file: files written with CRC32C by earlier versions stay readable.
  table.checksum = rocksdb::kXXH3;
  cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf.write_buffer_size = static_cast<size_t>(write_buffer);
  // At most 2 memtables: a flush writes at most 2 x write_buffer, which bounds how far a column
  // family can pass its FIFO budget before retention catches up (FORMAT.md).
  cf.max_write_buffer_number = 2;
  cf.compression = rocksdb::kNoCompression;
  cf.ttl = 0;
  cf.periodic_compaction_seconds = 0;
  return cf;
}

rocksdb::ColumnFamilyOptions FifoCfOptions(const std::shared_ptr<rocksdb::Cache>& cache, uint64_t write_buffer,
                                           uint64_t budget, uint64_t ttl_seconds) {
  rocksdb::ColumnFamilyOptions cf = BaseCfOptions(cache, write_buffer);
  cf.compaction_style = rocksdb::kCompactionStyleFIFO;
  cf.compaction_options_fifo = rocksdb::CompactionOptionsFIFO(budget, /*allow_compaction=*/false);
  // FIFO never merges files, so the L0 file count must not stall writes.
  cf.level0_file_num_compaction_trigger = 4;
  cf.level0_slowdown_writes_trigger = std::numeric_limits<int>::max();
  cf.level0_stop_writes_trigger = std::numeric_limits<int>::max();
  // In FIFO, ttl drops whole files older than ttl; periodic_compaction_seconds means the same and,
  // left at its default, would silently become 30 days.
  cf.ttl = ttl_seconds;
  cf.periodic_compaction_seconds = 0;
  return cf;
}

}  // namespace

// ---- Open / close ---------------------------------------------------------------------------------

SampleStore::SampleStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SampleStore::~SampleStore() = default;

Result<std::unique_ptr<SampleStore>> SampleStore::Open(const StoreOptions& options) {
  namespace fs = std::filesystem;
  if (options.path.empty()) return Status::InvalidArgument("StoreOptions.path is empty");
  if (options.max_bytes < kMinMaxBytes) {
    return Status::InvalidArgument("StoreOptions.max_bytes " + std::to_string(options.max_bytes) +
                                   " is below the minimum " + std::to_string(kMinMaxBytes));
  }
  const std::string& path = options.path;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  const bool exists = st.type() != fs::file_type::not_found && st.type() != fs::file_type::none;
  if (ec && exists) return Status::IOError("cannot inspect storage path '" + path + "': " + ec.message());
  if (exists && st.type() != fs::file_type::directory) {
    return Status::InvalidArgument("storage path '" + path + "' exists and is not a directory");
  }
  const bool has_db = exists && fs::exists(fs::path(path) / "CURRENT", ec);
  if (!has_db && !options.create_if_missing) {
    return Status::NotFound("no sample store at '" + path + "' (create_if_missing is false)");
  }

  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->max_bytes = options.max_bytes;
  const DerivedSizes sizes = Derive(options.max_bytes);

  rocksdb::Status rs;
  impl->sfm.reset(rocksdb::NewSstFileManager(rocksdb::Env::Default(), /*info_log=*/nullptr, /*trash_dir=*/"",
                                             /*rate_bytes_per_sec=*/0, /*delete_existing_trash=*/true, &rs));
  if (!rs.ok() || impl->sfm == nullptr) return impl->Map(rs, "creating the SstFileManager");
  // No cap while opening (recovery flushes must not fail on it); ApplyBudget() sets it below.
  impl->sfm->SetCompactionBufferSize(0);

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;  // reached only for a new or half-created store
  db_options.paranoid_checks = true;
  db_options.sst_file_manager = impl->sfm;
  db_options.max_open_files = -1;  // opens (and checks) every table file at open; FIFO ttl needs it
  db_options.max_total_wal_size = sizes.max_wal;
  db_options.manual_wal_flush = false;
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.bytes_per_sync = uint64_t{1} << 20;
  db_options.wal_bytes_per_sync = uint64_t{1} << 20;
  db_options.keep_log_file_num = 4;
  db_options.max_log_file_size = size_t{4} << 20;
  db_options.max_background_jobs = 2;
  db_options.listeners.push_back(impl->releaser);

  const std::vector<std::string> ours = {rocksdb::kDefaultColumnFamilyName, kFramesCf, kTeacherCf, kMetaCf};
  if (has_db) {
    std::vector<std::string> names;
    rs = rocksdb::DB::ListColumnFamilies(db_options, path, &names);
    if (!rs.ok()) return impl->Map(rs, "reading the column families of '" + path + "'");
    std::string listed;
    for (const auto& n : names) listed += (listed.empty() ? "" : ", ") + n;
    std::vector<std::string> missing;
    for (const auto& n : ours) {
      if (std::find(names.begin(), names.end(), n) == names.end()) missing.push_back(n);
    }
    for (const auto& n : names) {
      if (std::find(ours.begin(), ours.end(), n) == ours.end()) {
        return Status::InvalidArgument("'" + path + "' is not a kd sample store: unexpected column family '" +
                                       Printable(n) + "' (has: " + listed + ")");
      }
    }
    if (!missing.empty()) {
      // A store whose creation was interrupted lacks column families and the format marker; one
      // that has the marker lost a column family, which is damage we do not paper over.
      std::vector<rocksdb::ColumnFamilyDescriptor> present;
      for (const auto& n : names) present.emplace_back(n, rocksdb::ColumnFamilyOptions());
      std::vector<rocksdb::ColumnFamilyHandle*> ro_handles;
      rocksdb::DB* ro_db = nullptr;
      rs = rocksdb::DB::OpenForReadOnly(db_options, path, present, &ro_handles, &ro_db);
      if (!rs.ok()) return impl->Map(rs, "opening '" + path + "' read-only to check its format");
      std::string marker;
      rs = ro_db->Get(rocksdb::ReadOptions(), ro_handles[0], AsSlice(kFormatMarkerKey), &marker);
      for (auto* h : ro_handles) ro_db->DestroyColumnFamilyHandle(h);
      delete ro_db;
      if (rs.ok()) {
        return Status::Corruption("sample store at '" + path + "' lacks column family '" + missing.front() +
                                  "' (has: " + listed + "); not repaired automatically, restore from a backup");
      }
      if (!rs.IsNotFound()) return impl->Map(rs, "reading the format marker of '" + path + "'");
      KD_LOG(kWarn) << "sample store at " << path << " was not fully created; creating its column families";
    }
  }

  auto cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  rocksdb::ColumnFamilyOptions default_options = BaseCfOptions(cache, kMinWriteBufferBytes);
  rocksdb::ColumnFamilyOptions frames_options =
      FifoCfOptions(cache, sizes.write_buffer, sizes.frames_budget, options.ttl_seconds);
  rocksdb::ColumnFamilyOptions teacher_options =
      FifoCfOptions(cache, sizes.write_buffer, sizes.teacher_budget, options.ttl_seconds);
  teacher_options.compression = TeacherCompression();
  rocksdb::ColumnFamilyOptions meta_options =
      BaseCfOptions(cache, std::clamp<uint64_t>(sizes.write_buffer / 4, kMinWriteBufferBytes, uint64_t{16} << 20));
  const std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = {
      {rocksdb::kDefaultColumnFamilyName, default_options},
      {kFramesCf, frames_options},
      {kTeacherCf, teacher_options},
      {kMetaCf, meta_options},
  };

  rocksdb::DB* raw_db = nullptr;
  rs = rocksdb::DB::Open(db_options, path, descriptors, &impl->handles, &raw_db);
  if (!rs.ok()) {
    for (auto* h : impl->handles) delete h;  // normally empty on failure
    impl->handles.clear();
    delete raw_db;
    return impl->Map(rs, "opening sample store at '" + path + "'");
  }
  impl->db.reset(raw_db);
  impl->default_cf = impl->handles[0];
  impl->frames_cf = impl->handles[1];
  impl->teacher_cf = impl->handles[2];
  impl->meta_cf = impl->handles[3];
  impl->sample_write.sync = options.sync_writes;
  impl->meta_write.sync = true;
  impl->frames_write.disableWAL = true;  // RocksDB refuses sync without WAL: the journal syncs
  impl->journal_fs = options.journal_file_system != nullptr ? options.journal_file_system : &FileSystem::Default();

  // The whole-store format marker: read it, or write it into a store we have just created.
  std::string marker;
  rs = impl->db->Get(rocksdb::ReadOptions(), impl->default_cf, AsSlice(kFormatMarkerKey), &marker);
  if (rs.IsNotFound()) {
    rs = impl->db->Put(impl->meta_write, impl->default_cf, AsSlice(kFormatMarkerKey), EncodeFormatMarkerValue());
    if (!rs.ok()) return impl->Map(rs, "writing the format marker of '" + path + "'");
  } else if (!rs.ok()) {
    return impl->Map(rs, "reading the format marker of '" + path + "'");
  } else {
    auto decoded = DecodeFormatMarkerValue(marker);
    if (!decoded.ok()) return decoded.status().WithContext("sample store at '" + path + "'");
    const uint32_t format = *decoded;
    if (format == 0 || format > kStoreFormatVersion) {
      return Status::Unimplemented("sample store at '" + path + "' has store format " + std::to_string(format) +
                                   "; this build reads 1.." + std::to_string(kStoreFormatVersion));
    }
    if (format < kStoreFormatVersion) {
      // Format 1 had no frame journal (its frames are in RocksDB's WAL, replayed by DB::Open):
      // mark the store as 2 before the first journal write, so a build that reads only 1 refuses it
      // instead of missing the journal's frames.
      rs = impl->db->Put(impl->meta_write, impl->default_cf, AsSlice(kFormatMarkerKey), EncodeFormatMarkerValue());
      if (!rs.ok()) return impl->Map(rs, "upgrading the format marker of '" + path + "'");
      KD_LOG(kInfo) << "sample store at " << path << ": store format " << format << " -> " << kStoreFormatVersion;
    }
  }
  auto journal = FrameJournal::Open(*impl->journal_fs, path + "/journal", sizes.write_buffer);
  if (!journal.ok()) return journal.status().WithContext("opening the frame journal of '" + path + "'");
  impl->journal = std::move(*journal);
  KD_RETURN_IF_ERROR(impl->ReplayJournal().WithContext("opening sample store at '" + path + "'"));
  impl->releaser->Attach(impl->journal.get());
  KD_RETURN_IF_ERROR(impl->ApplyBudget(options.max_bytes).WithContext("opening sample store at '" + path + "'"));
  KD_LOG(kDebug) << "opened sample store at " << path << " (max_bytes=" << options.max_bytes
                 << ", frames budget=" << sizes.frames_budget << ", teacher budget=" << sizes.teacher_budget
                 << ", ttl_s=" << options.ttl_seconds << ", sync=" << options.sync_writes << ")";
  return std::unique_ptr<SampleStore>(new SampleStore(std::move(impl)));
}

// ---- Frames ---------------------------------------------------------------------------------------

Status SampleStore::PutFrame(const FrameRecord& frame, bool* duplicate) {
  const FrameRef ref = FrameRef::Of(frame);
  const std::vector<PutResult> results = PutFrames(std::span<const FrameRef>(&ref, 1));
  if (duplicate != nullptr) *duplicate = results[0].duplicate;
  return results[0].status;
}

Status SampleStore::LearnMaxSeq(const std::string& device_id) {
  if (impl_->KnowsMaxSeq(device_id)) return Status::Ok();
  Result<uint64_t> max = MaxSeq(device_id);
  if (!max.ok() && !max.status().IsNotFound()) return max.status();
  impl_->NoteStored(device_id, max.ok() ? *max : 0);  // 0: none stored (a seq-0 frame is still looked up)
  return Status::Ok();
}

std::vector<SampleStore::PutResult> SampleStore::PutFrames(std::span<const FrameRecord> frames) {
  std::vector<FrameRef> refs;
  refs.reserve(frames.size());
  for (const FrameRecord& f : frames) refs.push_back(FrameRef::Of(f));
  return PutFrames(std::span<const FrameRef>(refs));
}

std::vector<SampleStore::PutResult> SampleStore::PutFrames(std::span<const FrameRef> frames) {
  std::vector<PutResult> results(frames.size());
  std::vector<std::string> keys(frames.size());
  std::vector<bool> valid(frames.size(), false);
  std::vector<std::mutex*> stripes;
  for (size_t i = 0; i < frames.size(); ++i) {
    const FrameRef& f = frames[i];
    Status check = CheckDeviceId(f.device_id);
    if (check.ok() && f.jpeg.empty())
      check = Status::InvalidArgument(DescribeSample("frame", f.device_id, f.seq) + ": no JPEG bytes");
    if (check.ok() && f.jpeg.size() > kMaxValueBytes) {
      check =
          Status::InvalidArgument(DescribeSample("frame", f.device_id, f.seq) + ": JPEG of " +
                                  std::to_string(f.jpeg.size()) + " bytes exceeds " + std::to_string(kMaxValueBytes));
    }
    if (check.ok()) check = LearnMaxSeq(std::string(f.device_id));
    results[i].status = check;
    if (!check.ok()) continue;
    valid[i] = true;
    keys[i] = SampleKey(f.device_id, f.seq);
    stripes.push_back(&impl_->StripeFor(keys[i]));
  }
  // The stripes of every key, each once, in address order (no deadlock with concurrent PutFrame).
  std::sort(stripes.begin(), stripes.end());
  stripes.erase(std::unique(stripes.begin(), stripes.end()), stripes.end());
  for (std::mutex* m : stripes) m->lock();
  struct Unlock {
    std::vector<std::mutex*>& held;
    ~Unlock() {
      for (auto it = held.rbegin(); it != held.rend(); ++it) (*it)->unlock();
    }
  } unlock{stripes};

  size_t batch_bytes = 0;  // reserved up front: growing a batch of hundreds of frames re-copies it
  for (size_t i = 0; i < frames.size(); ++i) batch_bytes += valid[i] ? frames[i].jpeg.size() + 96 : 0;
  rocksdb::WriteBatch batch(batch_bytes);
  std::vector<size_t> written;  // indices whose value is in `batch`
  std::vector<FrameValueParts> parts(frames.size());
  std::vector<JournalRecord> journal_records;
  std::set<std::string_view> in_batch;
  uint64_t bytes = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    if (!valid[i]) continue;
    const std::string& key = keys[i];
    if (in_batch.count(key) != 0) {  // the same frame twice in one batch (a resend): stored once
      results[i].duplicate = true;
      continue;
    }
    rocksdb::PinnableSlice existing;
    const rocksdb::Status rs = impl_->AboveStored(std::string(frames[i].device_id), frames[i].seq)
                                   ? rocksdb::Status::NotFound()
                                   : impl_->db->Get(rocksdb::ReadOptions(), impl_->frames_cf, key, &existing);
    if (rs.ok()) {
      const Status check = DecodeFrameValue(key, AsView(existing), nullptr);
      if (check.ok()) {
        results[i].duplicate = true;
        continue;
      }
      KD_LOG(kWarn) << "replacing the damaged stored copy of "
                    << DescribeSample("frame", frames[i].device_id, frames[i].seq) << ": " << check.ToString();
    } else if (!rs.IsNotFound()) {
      results[i].status = impl_->Map(
          rs, "checking for a stored copy of " + DescribeSample("frame", frames[i].device_id, frames[i].seq));
      continue;
    }
    // The JPEG goes into the batch and the journal straight from the record (SliceParts, three
    // writes): one copy, not two.
    parts[i] = EncodeFrameValueParts(key, frames[i]);
    const rocksdb::Slice value_parts[] = {
        rocksdb::Slice(parts[i].head),
        rocksdb::Slice(reinterpret_cast<const char*>(frames[i].jpeg.data()), frames[i].jpeg.size()),
        rocksdb::Slice(parts[i].tail)};
    const rocksdb::Slice key_slice(key);
    bytes += key.size() + parts[i].head.size() + frames[i].jpeg.size() + parts[i].tail.size();
    batch.Put(impl_->frames_cf, rocksdb::SliceParts(&key_slice, 1), rocksdb::SliceParts(value_parts, 3));
    journal_records.push_back({key, parts[i].head, frames[i].jpeg, parts[i].tail});
    in_batch.insert(key);
    written.push_back(i);
  }
  if (written.empty()) return results;
  const std::string what = written.size() == 1
                               ? DescribeSample("frame", frames[written[0]].device_id, frames[written[0]].seq)
                               : std::to_string(written.size()) + " frames";
  Status st = impl_->CheckBudgetOrMakeRoom("storing " + what, bytes);
  if (st.ok()) st = impl_->WriteFrames(journal_records, &batch, "storing " + what);
  if (!st.ok()) {
    for (size_t i : written) results[i].status = st;
    return results;
  }
  for (size_t i : written) impl_->NoteStored(std::string(frames[i].device_id), frames[i].seq);
  return results;
}

Result<std::optional<FrameRecord>> SampleStore::GetFrame(std::string_view device_id, uint64_t seq) const {
  KD_RETURN_IF_ERROR(CheckDeviceId(device_id));
  const std::string key = SampleKey(device_id, seq);
  rocksdb::PinnableSlice value;
  const rocksdb::Status rs = impl_->db->Get(rocksdb::ReadOptions(), impl_->frames_cf, key, &value);
  if (rs.IsNotFound()) return std::optional<FrameRecord>();
  if (!rs.ok()) return impl_->Map(rs, "reading " + DescribeSample("frame", device_id, seq));
  FrameRecord frame;
  KD_RETURN_IF_ERROR(DecodeFrameValue(key, AsView(value), &frame));
  return std::optional<FrameRecord>(std::move(frame));
}

Status SampleStore::ScanFrames(std::string_view device_id, uint64_t from_seq, size_t limit,
                               const std::function<bool(const FrameRecord&)>& fn) const {
  KD_RETURN_IF_ERROR(CheckDeviceId(device_id));
  const std::string prefix = DevicePrefix(device_id);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(impl_->ScanReadOptions(), impl_->frames_cf));
  size_t visited = 0;
  FrameRecord frame;
  for (it->Seek(SampleKey(device_id, from_seq)); it->Valid(); it->Next()) {
    if (!it->key().starts_with(prefix) || (limit != 0 && visited >= limit)) break;
    ++visited;
    KD_RETURN_IF_ERROR(DecodeFrameValue(AsView(it->key()), AsView(it->value()), &frame));
    if (!fn(frame)) return Status::Ok();
  }
  return impl_->Map(it->status(), "scanning the frames of device '" + Printable(device_id) + "'");
}

Result<uint64_t> SampleStore::CountFrames() const {
  rocksdb::ReadOptions ro = impl_->ScanReadOptions();
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->frames_cf));
  uint64_t n = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next()) ++n;
  KD_RETURN_IF_ERROR(impl_->Map(it->status(), "counting frames"));
  return n;
}

Result<uint64_t> SampleStore::CountFrames(std::string_view device_id) const {
  KD_RETURN_IF_ERROR(CheckDeviceId(device_id));
  const std::string prefix = DevicePrefix(device_id);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(impl_->ScanReadOptions(), impl_->frames_cf));
  uint64_t n = 0;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) ++n;
  KD_RETURN_IF_ERROR(impl_->Map(it->status(), "counting the frames of device '" + Printable(device_id) + "'"));
  return n;
}

Result<uint64_t> SampleStore::MaxSeq(std::string_view device_id) const {
  KD_RETURN_IF_ERROR(CheckDeviceId(device_id));
  const std::string prefix = DevicePrefix(device_id);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->frames_cf));
  it->SeekForPrev(SampleKey(device_id, std::numeric_limits<uint64_t>::max()));
  if (it->Valid() && it->key().starts_with(prefix)) {
    ParsedKey parsed;
    if (!ParseSampleKey(AsView(it->key()), &parsed)) {
      return Status::Corruption(DescribeKey("frame", AsView(it->key())) + ": malformed key");
    }
    return parsed.seq;
  }
  KD_RETURN_IF_ERROR(impl_->Map(it->status(), "finding the last frame of device '" + Printable(device_id) + "'"));
  return Status::NotFound("no frames stored for device '" + Printable(device_id) + "'");
}

Result<std::vector<std::string>> SampleStore::ListDevices() const {
  std::vector<std::string> devices;
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(impl_->ScanReadOptions(), impl_->frames_cf));
  it->SeekToFirst();
  while (it->Valid()) {
    ParsedKey parsed;
    if (!ParseSampleKey(AsView(it->key()), &parsed)) {
      return Status::Corruption(DescribeKey("frame", AsView(it->key())) + ": malformed key");
    }
    devices.emplace_back(parsed.device_id);
    // Skip the rest of this device: seek past its largest possible key.
    const std::string last = SampleKey(devices.back(), std::numeric_limits<uint64_t>::max());
    it->Seek(last);
    if (it->Valid() && AsView(it->key()) == last) it->Next();
  }
  KD_RETURN_IF_ERROR(impl_->Map(it->status(), "listing devices"));
  return devices;
}

// ---- Teacher outputs ------------------------------------------------------------------------------

Status SampleStore::PutTeacher(std::string_view device_id, uint64_t seq, std::span<const uint8_t> blob,
                               float difficulty, uint32_t blob_schema) {
  KD_RETURN_IF_ERROR(CheckDeviceId(device_id));
  const std::string what = DescribeSample("teacher output", device_id, seq);
  if (!std::isfinite(difficulty) || difficulty < 0.f) {
    return Status::InvalidArgument(what + ": difficulty " + std::to_string(difficulty) + " is not finite and >= 0");
  }
  if (blob.size() > kMaxValueBytes) {
    return Status::InvalidArgument(what + ": blob of " + std::to_string(blob.size()) + " bytes exceeds " +
                                   std::to_string(kMaxValueBytes));
  }
  const std::string key = SampleKey(device_id, seq);
  const std::string value = EncodeTeacherValue(key, blob, difficulty, blob_schema);
  KD_RETURN_IF_ERROR(impl_->CheckBudgetOrMakeRoom("storing " + what, key.size() + value.size()));
  const rocksdb::Status rs = impl_->db->Put(impl_->sample_write, impl_->teacher_cf, key, value);
  return impl_->Map(rs, "storing " + what);
}

Result<std::optional<TeacherRecord>> SampleStore::GetTeacher(std::string_view device_id, uint64_t seq) const {
  KD_RETURN_IF_ERROR(CheckDeviceId(device_id));
  const std::string key = SampleKey(device_id, seq);
  rocksdb::PinnableSlice value;
  const rocksdb::Status rs = impl_->db->Get(rocksdb::ReadOptions(), impl_->teacher_cf, key, &value);
  if (rs.IsNotFound()) return std::optional<TeacherRecord>();
  if (!rs.ok()) return impl_->Map(rs, "reading " + DescribeSample("teacher output", device_id, seq));
  TeacherRecord record;
  KD_RETURN_IF_ERROR(DecodeTeacherValue(key, AsView(value), &record));
  return std::optional<TeacherRecord>(std::move(record));
}

Status SampleStore::ScanTeacher(std::string_view device_id, uint64_t from_seq, size_t limit,
                                const std::function<bool(const TeacherRecord&)>& fn) const {
  KD_RETURN_IF_ERROR(CheckDeviceId(device_id));
  const std::string prefix = DevicePrefix(device_id);
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(impl_->ScanReadOptions(), impl_->teacher_cf));
  size_t visited = 0;
  TeacherRecord record;
  for (it->Seek(SampleKey(device_id, from_seq)); it->Valid(); it->Next()) {
    if (!it->key().starts_with(prefix) || (limit != 0 && visited >= limit)) break;
    ++visited;
    KD_RETURN_IF_ERROR(DecodeTeacherValue(AsView(it->key()), AsView(it->value()), &record));
    if (!fn(record)) return Status::Ok();
  }
  return impl_->Map(it->status(), "scanning the teacher outputs of device '" + Printable(device_id) + "'");
}

// ---- Meta -----------------------------------------------------------------------------------------

namespace {
Status CheckMetaKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("meta key is empty");
  if (key.size() > kMaxMetaKeyBytes) {
    return Status::InvalidArgument("meta key of " + std::to_string(key.size()) + " bytes (at most " +
                                   std::to_string(kMaxMetaKeyBytes) + ")");
  }
  return Status::Ok();
}
}  // namespace

Status SampleStore::PutMeta(std::string_view key, std::string_view bytes) {
  KD_RETURN_IF_ERROR(CheckMetaKey(key));
  if (bytes.size() > kMaxValueBytes) {
    return Status::InvalidArgument("meta value of " + std::to_string(bytes.size()) + " bytes exceeds " +
                                   std::to_string(kMaxValueBytes));
  }
  const std::string value = EncodeMetaValue(key, bytes);
  const std::string what = "storing meta key '" + Printable(key) + "'";
  KD_RETURN_IF_ERROR(impl_->CheckBudgetWaitingForDeletions(what, key.size() + value.size()));
  const rocksdb::Status rs = impl_->db->Put(impl_->meta_write, impl_->meta_cf, AsSlice(key), value);
  return impl_->Map(rs, what);
}

Result<std::optional<std::string>> SampleStore::GetMeta(std::string_view key) const {
  KD_RETURN_IF_ERROR(CheckMetaKey(key));
  rocksdb::PinnableSlice value;
  const rocksdb::Status rs = impl_->db->Get(rocksdb::ReadOptions(), impl_->meta_cf, AsSlice(key), &value);
  if (rs.IsNotFound()) return std::optional<std::string>();
  if (!rs.ok()) return impl_->Map(rs, "reading meta key '" + Printable(key) + "'");
  std::string bytes;
  KD_RETURN_IF_ERROR(DecodeMetaValue(key, AsView(value), &bytes));
  return std::optional<std::string>(std::move(bytes));
}

Status SampleStore::DeleteMeta(std::string_view key) {
  KD_RETURN_IF_ERROR(CheckMetaKey(key));
  const rocksdb::Status rs = impl_->db->Delete(impl_->meta_write, impl_->meta_cf, AsSlice(key));
  return impl_->Map(rs, "deleting meta key '" + Printable(key) + "'");
}

Status SampleStore::ScanMeta(std::string_view prefix,
                             const std::function<bool(std::string_view, std::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->meta_cf));
  std::string bytes;
  for (it->Seek(AsSlice(prefix)); it->Valid(); it->Next()) {
    const std::string_view key(it->key().data(), it->key().size());
    if (key.substr(0, prefix.size()) != prefix) break;
    KD_RETURN_IF_ERROR(DecodeMetaValue(key, std::string_view(it->value().data(), it->value().size()), &bytes));
    if (!fn(key, bytes)) break;
  }
  return impl_->Map(it->status(), "scanning meta keys '" + Printable(prefix) + "'");
}

// ---- Maintenance ----------------------------------------------------------------------------------

Status SampleStore::Flush() {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  fo.allow_write_stall = true;
  return impl_->Map(impl_->db->Flush(fo, impl_->handles), "flushing the sample store");
}

Status SampleStore::Verify() const {
  KD_RETURN_IF_ERROR(impl_->Map(impl_->db->VerifyChecksum(), "verifying table checksums"));
  struct Family {
    rocksdb::ColumnFamilyHandle* cf;
    Status (*decode)(std::string_view, std::string_view);
  };
  const Family families[] = {
      {impl_->frames_cf, [](std::string_view k, std::string_view v) { return DecodeFrameValue(k, v, nullptr); }},
      {impl_->teacher_cf, [](std::string_view k, std::string_view v) { return DecodeTeacherValue(k, v, nullptr); }},
      {impl_->meta_cf, [](std::string_view k, std::string_view v) { return DecodeMetaValue(k, v, nullptr); }},
      {impl_->default_cf, [](std::string_view k, std::string_view v) { return DecodeMetaValue(k, v, nullptr); }},
  };
  for (const Family& f : families) {
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(impl_->ScanReadOptions(), f.cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      KD_RETURN_IF_ERROR(f.decode(AsView(it->key()), AsView(it->value())));
    }
    KD_RETURN_IF_ERROR(impl_->Map(it->status(), "verifying column family '" + f.cf->GetName() + "'"));
  }
  // The journal's records (a torn tail is an unfinished write, not damage).
  KD_ASSIGN_OR_RETURN(const std::vector<std::string> journal_files, impl_->journal->ListFiles());
  for (const std::string& file : journal_files) {
    Result<std::vector<uint8_t>> bytes = impl_->journal_fs->ReadFile(file);
    if (!bytes.ok() && bytes.status().IsNotFound()) continue;  // released meanwhile
    KD_RETURN_IF_ERROR(bytes.status());
    const JournalParse parse =
        ParseJournal(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()),
                     [](std::string_view, std::string_view) {});
    if (parse.damaged_records > 0) {
      return Status::Corruption("frame journal " + file + ": " + std::to_string(parse.damaged_records) +
                                " damaged records (first: " + parse.first_problem + ")");
    }
  }
  return Status::Ok();
}

Result<StoreStats> SampleStore::Stats() const {
  StoreStats stats;
  stats.max_bytes = impl_->max_bytes.load();
  stats.total_sst_bytes = impl_->sfm->GetTotalSize();
  uint64_t v = 0;
  if (impl_->db->GetIntProperty(impl_->frames_cf, rocksdb::DB::Properties::kLiveSstFilesSize, &v)) {
    stats.frames_sst_bytes = v;
  }
  if (impl_->db->GetIntProperty(impl_->teacher_cf, rocksdb::DB::Properties::kLiveSstFilesSize, &v)) {
    stats.teacher_sst_bytes = v;
  }
  if (impl_->db->GetIntProperty(rocksdb::DB::Properties::kBackgroundErrors, &v)) stats.background_errors = v;
  if (impl_->db->GetIntProperty(rocksdb::DB::Properties::kIsWriteStopped, &v)) stats.writes_stopped = v != 0;
  stats.journal_files = impl_->journal->files();
  stats.journal_bytes = impl_->journal->bytes();
  return stats;
}

Status SampleStore::SetMaxBytes(uint64_t max_bytes) {
  if (max_bytes < kMinMaxBytes) {
    return Status::InvalidArgument("max_bytes " + std::to_string(max_bytes) + " is below the minimum " +
                                   std::to_string(kMinMaxBytes));
  }
  return impl_->ApplyBudget(max_bytes);
}

// ---- Test hooks -----------------------------------------------------------------------------------

Status SampleStore::TEST_PutRawFrameValue(std::string_view device_id, uint64_t seq, std::string_view value) {
  KD_RETURN_IF_ERROR(CheckDeviceId(device_id));
  const rocksdb::Status rs =
      impl_->db->Put(impl_->sample_write, impl_->frames_cf, SampleKey(device_id, seq), AsSlice(value));
  return impl_->Map(rs, "TEST_PutRawFrameValue");
}

Result<std::string> SampleStore::TEST_GetRawFrameValue(std::string_view device_id, uint64_t seq) const {
  KD_RETURN_IF_ERROR(CheckDeviceId(device_id));
  std::string value;
  const rocksdb::Status rs =
      impl_->db->Get(rocksdb::ReadOptions(), impl_->frames_cf, SampleKey(device_id, seq), &value);
  if (rs.IsNotFound()) return Status::NotFound(DescribeSample("frame", device_id, seq) + " is not stored");
  KD_RETURN_IF_ERROR(impl_->Map(rs, "TEST_GetRawFrameValue"));
  return value;
}

Result<uint32_t> SampleStore::TEST_FormatMarker() const {
  std::string marker;
  const rocksdb::Status rs =
      impl_->db->Get(rocksdb::ReadOptions(), impl_->default_cf, AsSlice(kFormatMarkerKey), &marker);
  if (!rs.ok()) return impl_->Map(rs, "TEST_FormatMarker");
  return DecodeFormatMarkerValue(marker);
}

Status SampleStore::TEST_SetFormatMarker(uint32_t store_format) {
  return impl_->Map(impl_->db->Put(impl_->meta_write, impl_->default_cf, AsSlice(kFormatMarkerKey),
                                   EncodeFormatMarkerValue(store_format)),
                    "TEST_SetFormatMarker");
}

}  // namespace kd::storage
