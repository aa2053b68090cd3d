// SampleStore: the learner's durable store of camera frames, teacher outputs and metadata, on RocksDB
// (private to storage/). Key/value layout, retention, durability and corruption rules: storage/FORMAT.md.
// Ownership: Open() returns the only handle on its directory (a second Open of the same path fails
// while the first is alive); destroying it closes the database. Threading: every method may be
// called from several threads at once; destroying the store while calls are in flight is a bug.
#ifndef KD_STORAGE_SAMPLE_STORE_H_
#define KD_STORAGE_SAMPLE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace kd {
class FileSystem;
}  // namespace kd

namespace kd::storage {

// The smallest disk budget accepted (below it the derived memtable and WAL sizes stop making sense).
inline constexpr uint64_t kMinMaxBytes = uint64_t{4} << 20;
// Limits on what a caller may store (larger inputs are InvalidArgument).
inline constexpr size_t kMaxDeviceIdBytes = 255;
inline constexpr size_t kMaxMetaKeyBytes = 1024;
inline constexpr size_t kMaxValueBytes = size_t{64} << 20;

struct StoreOptions {
  // The database directory. A path that exists and is not a directory is InvalidArgument.
  std::string path;
  // Create the directory and an empty store when there is none (otherwise NotFound).
  bool create_if_missing = true;
  // Disk budget for the table files of all column families (default 8 GiB; at least kMinMaxBytes).
  // FIFO retention keeps frames to ~72% of it and teacher outputs to ~14% (large budgets), oldest
  // dropped first (exact rule in FORMAT.md). A write that would pass the budget fails with
  // NoSpace("disk budget/full ...") and nothing acknowledged is lost; writes work again once
  // space is freed or the budget raised (SetMaxBytes). A disk with less free space than a write
  // needs (FORMAT.md) is NoSpace("disk full ...") the same way, before RocksDB meets ENOSPC.
  // RocksDB's SstFileManager cap is the backstop.
  // The frame journal (about 3 write buffers at most), the WAL (flushed away beyond
  // min(max_bytes/16, 256 MiB)) and RocksDB's LOG files come on top.
  uint64_t max_bytes = uint64_t{8} << 30;
  // Drop frames and teacher outputs written more than this many seconds ago (a whole table file at a
  // time, at the next flush or compaction: not strict). 0 = off.
  uint64_t ttl_seconds = 0;
  // true: a frame or teacher write returns only after its log is on disk (fdatasync: the frame
  // journal for frames, RocksDB's WAL for teacher outputs), so an acknowledged write survives
  // kill -9 and power loss. false: it survives kill -9 only. Meta writes are always synced.
  bool sync_writes = true;
  // The frame journal's file operations (FORMAT.md, "Frame journal"); null = FileSystem::Default().
  // A seam for tests that inject ENOSPC, EIO, short writes and crashes. Must outlive the store.
  FileSystem* journal_file_system = nullptr;
};

// One camera frame. (device_id, seq) is its identity; seq increases per device in arrival order.
struct FrameRecord {
  std::string device_id;
  uint64_t seq = 0;
  int64_t capture_time_us = 0;   // camera clock, microseconds since the Unix epoch
  int64_t received_time_us = 0;  // learner clock, microseconds since the Unix epoch
  std::vector<uint8_t> jpeg;     // the encoded image, opaque to the store (1 byte .. kMaxValueBytes)
};

// A frame to store that borrows its device id and JPEG bytes (they must outlive the call): the
// learner's ingest passes each received payload this way, so it is copied once, into the write
// batch, instead of first into a FrameRecord.
struct FrameRef {
  std::string_view device_id;
  uint64_t seq = 0;
  int64_t capture_time_us = 0;
  int64_t received_time_us = 0;
  std::span<const uint8_t> jpeg;

  static FrameRef Of(const FrameRecord& f) {
    return {f.device_id, f.seq, f.capture_time_us, f.received_time_us, f.jpeg};
  }
};

// The teacher's output for one frame: an opaque blob whose layout `blob_schema` names (owned by
// the learner), and the frame's difficulty (>= 0, finite) that drives replay sampling.
struct TeacherRecord {
  std::string device_id;
  uint64_t seq = 0;
  float difficulty = 0;
  uint32_t blob_schema = 0;
  std::vector<uint8_t> blob;
};

struct StoreStats {
  uint64_t max_bytes = 0;          // the current budget
  uint64_t total_sst_bytes = 0;    // table files of all column families (what the budget caps)
  uint64_t frames_sst_bytes = 0;   // live table files of `frames`
  uint64_t teacher_sst_bytes = 0;  // live table files of `teacher`
  uint64_t background_errors = 0;  // flush/compaction errors since open (e.g. budget reached)
  bool writes_stopped = false;     // true while RocksDB refuses writes (e.g. after a budget error)
  uint64_t journal_files = 0;      // frame journal files not yet released (FORMAT.md, "Frame journal")
  uint64_t journal_bytes = 0;      // their bytes (on top of the budget, as RocksDB's WAL is)
};

class SampleStore {
 public:
  // Opens (or creates) the store at options.path. Errors: InvalidArgument (bad options, the path is
  // a regular file, a database that is not a sample store), NotFound (no store and
  // !create_if_missing), Corruption (damaged files: never repaired automatically, see FORMAT.md),
  // IOError (unwritable, already open), NoSpace (disk budget/full), Unimplemented (a newer format).
  static Result<std::unique_ptr<SampleStore>> Open(const StoreOptions& options);
  ~SampleStore();
  SampleStore(const SampleStore&) = delete;
  SampleStore& operator=(const SampleStore&) = delete;

  // Stores a frame once: if (device_id, seq) is already stored with a valid value, nothing is
  // written, *duplicate (when given) is set to true and the result is Ok. Ok means durable as
  // StoreOptions::sync_writes says. A frame already dropped by retention is stored again.
  Status PutFrame(const FrameRecord& frame, bool* duplicate = nullptr);
  // Group commit: stores many frames with one write batch and one sync, with PutFrame's rules per
  // frame (a valid stored copy makes a duplicate, nothing is written for it; a frame repeated in
  // the batch is stored once). Result i is frame i's: OK (stored durably, or `duplicate`),
  // InvalidArgument for that frame alone, or the batch's error (NoSpace, IOError) for every frame
  // that would have been written: then none of them is. What the learner's ingest uses, so that
  // many frames become durable per fdatasync.
  struct PutResult {
    Status status;
    bool duplicate = false;
  };
  std::vector<PutResult> PutFrames(std::span<const FrameRef> frames);
  std::vector<PutResult> PutFrames(std::span<const FrameRecord> frames);
  // nullopt when absent (never stored, or dropped by retention); Corruption on a bad value.
  Result<std::optional<FrameRecord>> GetFrame(std::string_view device_id, uint64_t seq) const;
  // Calls fn for the frames of device_id with seq >= from_seq in increasing seq order, at most
  // `limit` of them (0 = no limit), until fn returns false. A consistent snapshot.
  Status ScanFrames(std::string_view device_id, uint64_t from_seq, size_t limit,
                    const std::function<bool(const FrameRecord&)>& fn) const;
  // Exact number of stored frames (iterates over every key: for tests and tools, not hot paths).
  Result<uint64_t> CountFrames() const;
  // Exact number of stored frames of device_id (iterates over its keys: at start-up, not per frame).
  Result<uint64_t> CountFrames(std::string_view device_id) const;
  // The highest stored seq of device_id (for resuming); NotFound when it has no frames.
  Result<uint64_t> MaxSeq(std::string_view device_id) const;
  // The devices that have at least one stored frame, in key order.
  Result<std::vector<std::string>> ListDevices() const;

  // Stores (or replaces: the latest teacher output wins) the teacher output of a frame. The frame
  // itself need not be stored. Durable as sync_writes says.
  Status PutTeacher(std::string_view device_id, uint64_t seq, std::span<const uint8_t> blob, float difficulty,
                    uint32_t blob_schema = 0);
  Result<std::optional<TeacherRecord>> GetTeacher(std::string_view device_id, uint64_t seq) const;
  // As ScanFrames, over teacher outputs.
  Status ScanTeacher(std::string_view device_id, uint64_t from_seq, size_t limit,
                     const std::function<bool(const TeacherRecord&)>& fn) const;

  // Small durable key -> bytes records (devices, model catalogue, rollout state); always synced and
  // never dropped by retention. Keys: 1..kMaxMetaKeyBytes bytes.
  Status PutMeta(std::string_view key, std::string_view bytes);
  Result<std::optional<std::string>> GetMeta(std::string_view key) const;
  Status DeleteMeta(std::string_view key);
  // Calls fn(key, bytes) for the meta records whose keys start with `prefix`, in key order, until it
  // returns false. A record that fails its checksum ends the scan with Corruption.
  Status ScanMeta(std::string_view prefix,
                  const std::function<bool(std::string_view key, std::string_view bytes)>& fn) const;

  // Writes the memtables of every column family to table files (e.g. before a backup).
  Status Flush();
  // Reads everything: RocksDB block checksums and every value's CRC32C. First error wins.
  Status Verify() const;
  Result<StoreStats> Stats() const;
  // Changes the disk budget at run time (e.g. after freeing space); writes stopped by a budget
  // error resume.
  Status SetMaxBytes(uint64_t max_bytes);

  // Test-only hooks: raw access to the stored value of a frame (no encoding, no checks).
  Status TEST_PutRawFrameValue(std::string_view device_id, uint64_t seq, std::string_view value);
  Result<std::string> TEST_GetRawFrameValue(std::string_view device_id, uint64_t seq) const;
  // Test-only hooks: the whole-store format marker (FORMAT.md), read and overwritten as stored.
  Result<uint32_t> TEST_FormatMarker() const;
  Status TEST_SetFormatMarker(uint32_t store_format);

 private:
  struct Impl;
  explicit SampleStore(std::unique_ptr<Impl> impl);
  // Reads the highest stored seq of a device the first time it is written (Impl::max_seq).
  Status LearnMaxSeq(const std::string& device_id);
  std::unique_ptr<Impl> impl_;
};

}  // namespace kd::storage

#endif  // KD_STORAGE_SAMPLE_STORE_H_
