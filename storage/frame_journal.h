// FrameJournal: the write-ahead log of the `frames` column family (storage/FORMAT.md, "Frame
// journal"). SampleStore writes frame values to RocksDB without RocksDB's WAL and appends them here
// instead, synced once per group commit: Debian's RocksDB computes the WAL's CRC32C with tables
// (no SSE4.2 path), which cost a third of the learner's ingest thread, while every journal record
// is covered by the CRC32C the frame value already carries (base/crc32c.h, hardware). Files are
// appended one at a time, rotated at a size, and deleted once RocksDB has flushed every frame they
// hold into table files (Release, from RocksDB's flush listener). At Open the store replays the
// files left by the previous run, then removes them.
// Ownership: SampleStore::Impl owns the journal; the journal owns its open file.
// Threading: Append, Sync, Written, MaybeRotate come from one writer at a time (the store's write
// mutex); Release may run concurrently on RocksDB's flush thread. Both take mu_, never across
// file I/O other than a close or a removal.
#ifndef KD_STORAGE_FRAME_JOURNAL_H_
#define KD_STORAGE_FRAME_JOURNAL_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/file_system.h"
#include "base/status.h"

namespace kd::storage {

// "KDJ1" read as a little-endian u32: the first 4 bytes of every journal record.
inline constexpr uint32_t kJournalMagic = 0x314a444b;
inline constexpr size_t kJournalHeaderBytes = 16;
// Keys are the frames' keys (FORMAT.md, "Keys"): 1 + 1..255 + 8 bytes.
inline constexpr uint32_t kJournalMaxKeyBytes = 264;

// The 16-byte header of a record with a key of `key_bytes` and a value of `value_bytes`:
// magic, key length, value length (u32 each), CRC32C of those 12 bytes.
std::string EncodeJournalHeader(uint32_t key_bytes, uint32_t value_bytes);

// One record to append: the key and the value in three parts (the frame value's head, its JPEG
// where the caller holds it, and its CRC tail), so the JPEG is written without being copied.
struct JournalRecord {
  std::string_view key;
  std::string_view head;
  std::span<const uint8_t> body;
  std::string_view tail;
};

// What ParseJournal found in one file.
struct JournalParse {
  uint64_t records = 0;          // valid records handed to the callback
  uint64_t damaged_records = 0;  // whole records whose key or value failed its check (skipped)
  uint64_t tail_bytes = 0;       // bytes after the last whole record: a torn write (ignored)
  std::string first_problem;     // why the first damaged record or the tail was not read ("" if none)
};

// Parses the bytes of one journal file and calls fn(key, value) for every record whose header
// CRC, key (FORMAT.md, "Keys") and frame value (record_codec's reading rules) are valid, in file
// order. A record with a valid header but a bad key or value is skipped (its length is known); a
// header that is short, has the wrong magic, fails its CRC or announces more bytes than remain
// ends the parse (the tail). Never throws, never reads outside `bytes`.
JournalParse ParseJournal(std::string_view bytes,
                          const std::function<void(std::string_view key, std::string_view value)>& fn);

class FrameJournal {
 public:
  // The journal in `dir` (created when missing). Files already there are found(), oldest first:
  // the caller replays them and then calls RemoveFound() before the first Append. A new file is
  // started at the first Append; files are rotated once they hold `rotate_bytes`.
  static Result<std::unique_ptr<FrameJournal>> Open(FileSystem& fs, std::string dir, uint64_t rotate_bytes);
  ~FrameJournal();
  FrameJournal(const FrameJournal&) = delete;
  FrameJournal& operator=(const FrameJournal&) = delete;

  const std::vector<std::string>& found() const { return found_; }
  // Deletes the found files (their frames are in table files now) and syncs the directory.
  Status RemoveFound();

  // Appends the records to the current file (starting one when there is none). On an error the
  // file is cut back to where it was, or, when that fails too, closed and left to replay as it
  // is (its torn tail is ignored there), and the next Append starts a new file.
  Status Append(std::span<const JournalRecord> records);
  // fdatasync of the current file. On an error the file is closed the same way (after a failed
  // fsync the page cache cannot be trusted) and the error returned.
  Status Sync();
  // The RocksDB write of what was last appended is done, with sequence numbers up to `seqno`.
  void Written(uint64_t seqno);
  // Closes the current file when it holds rotate_bytes or more (the next Append starts another).
  void MaybeRotate();
  // Closes the current file, if any, whatever it holds (the store's clean close).
  void CloseFile();
  // RocksDB's table files now hold every frame written with a sequence number up to `seqno`:
  // closed files whose writes are all at or below it are deleted.
  void Release(uint64_t flushed_seqno);

  // Journal files (closed and current) and their bytes.
  size_t files() const;
  uint64_t bytes() const;
  // Every file in the directory (found, closed and current), oldest first: for Verify.
  Result<std::vector<std::string>> ListFiles() const;

 private:
  struct Closed {
    std::string path;
    uint64_t bytes = 0;
    uint64_t max_seqno = 0;  // 0: nothing written to RocksDB from it
  };
  FrameJournal(FileSystem& fs, std::string dir, uint64_t rotate_bytes);
  Status StartFile();
  void CloseCurrent();  // REQUIRES: a current file

  FileSystem& fs_;
  const std::string dir_;
  const uint64_t rotate_bytes_;
  std::vector<std::string> found_;
  uint64_t next_number_ = 1;

  mutable std::mutex mu_;  // guards the fields below (not file_'s I/O, which is the writer's)
  std::unique_ptr<WritableFile> file_;
  std::string path_;
  uint64_t size_ = 0;
  uint64_t max_seqno_ = 0;
  std::vector<Closed> closed_;
};

}  // namespace kd::storage

#endif  // KD_STORAGE_FRAME_JOURNAL_H_
