// The frame journal (storage/frame_journal.h, FORMAT.md "Frame journal"): its record format and
// parser (torn tails, damaged records), rotation and release, and every file-operation fault of
// an append/sync sequence (nothing whose Append and Sync returned OK is missing afterwards).
#include "storage/frame_journal.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "storage/record_codec.h"
#include "tests/support/faulty_file_system.h"
#include "tests/support/scratch_dir.h"

namespace kd::storage {
namespace {

namespace fs = std::filesystem;
using kd::testing::AllFaults;
using kd::testing::FaultName;
using kd::testing::FaultyFileSystem;
using kd::testing::ScratchDir;

// A frame of `size` JPEG bytes as the store would journal it: key and value parts.
struct Frame {
  std::string key;
  FrameValueParts parts;
  std::vector<uint8_t> jpeg;
  JournalRecord record() const { return {key, parts.head, jpeg, parts.tail}; }
  std::string value() const { return parts.head + std::string(jpeg.begin(), jpeg.end()) + parts.tail; }
};

Frame MakeFrame(uint64_t seq, size_t size = 300) {
  Frame f;
  f.key = SampleKey("cam-j", seq);
  f.jpeg.resize(size);
  for (size_t i = 0; i < size; ++i) f.jpeg[i] = static_cast<uint8_t>(seq * 31 + i * 7);
  FrameRef ref{.device_id = "cam-j",
               .seq = seq,
               .capture_time_us = 1000 + static_cast<int64_t>(seq),
               .received_time_us = 2000,
               .jpeg = f.jpeg};
  f.parts = EncodeFrameValueParts(f.key, ref);
  return f;
}

std::string Encode(const Frame& f) {
  const std::string value = f.value();
  return EncodeJournalHeader(static_cast<uint32_t>(f.key.size()), static_cast<uint32_t>(value.size())) + f.key + value;
}

std::vector<uint64_t> SeqsIn(std::string_view bytes, JournalParse* parse = nullptr) {
  std::vector<uint64_t> seqs;
  const JournalParse p = ParseJournal(bytes, [&](std::string_view key, std::string_view value) {
    ParsedKey k;
    EXPECT_TRUE(ParseSampleKey(key, &k));
    FrameRecord decoded;
    EXPECT_TRUE(DecodeFrameValue(key, value, &decoded).ok());
    seqs.push_back(k.seq);
  });
  if (parse != nullptr) *parse = p;
  return seqs;
}

TEST(FrameJournalTest, RecordsParseBackInOrder) {
  std::string bytes;
  for (uint64_t s = 1; s <= 3; ++s) bytes += Encode(MakeFrame(s, 100 * s));
  JournalParse parse;
  EXPECT_EQ(SeqsIn(bytes, &parse), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(parse.records, 3u);
  EXPECT_EQ(parse.damaged_records, 0u);
  EXPECT_EQ(parse.tail_bytes, 0u);
  EXPECT_EQ(parse.first_problem, "");
  EXPECT_EQ(EncodeJournalHeader(1, 2).size(), kJournalHeaderBytes);
}

TEST(FrameJournalTest, EveryCutGivesTheWholeRecordsBeforeItAndATail) {
  std::vector<size_t> ends;
  std::string bytes;
  for (uint64_t s = 1; s <= 3; ++s) {
    bytes += Encode(MakeFrame(s, 50));
    ends.push_back(bytes.size());
  }
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    size_t whole = 0;
    while (whole < ends.size() && ends[whole] <= cut) ++whole;
    JournalParse parse;
    const std::vector<uint64_t> seqs = SeqsIn(std::string_view(bytes).substr(0, cut), &parse);
    ASSERT_EQ(seqs.size(), whole) << "cut at " << cut;
    EXPECT_EQ(parse.damaged_records, 0u);
    EXPECT_EQ(parse.tail_bytes, cut - (whole == 0 ? 0 : ends[whole - 1])) << "cut at " << cut;
  }
}

TEST(FrameJournalTest, ADamagedValueIsSkippedAndTheRecordsBehindItStillRead) {
  const std::string r1 = Encode(MakeFrame(1)), r2 = Encode(MakeFrame(2)), r3 = Encode(MakeFrame(3));
  std::string bytes = r1 + r2 + r3;
  bytes[r1.size() + r2.size() / 2] ^= 0x10;  // inside record 2's JPEG: its value CRC fails
  JournalParse parse;
  EXPECT_EQ(SeqsIn(bytes, &parse), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(parse.damaged_records, 1u);
  EXPECT_EQ(parse.tail_bytes, 0u);
  EXPECT_NE(parse.first_problem.find("CRC32C"), std::string::npos) << parse.first_problem;

  // A damaged header cannot be trusted for its length: the parse ends there.
  bytes = r1 + r2 + r3;
  bytes[r1.size() + 5] ^= 0x01;
  EXPECT_EQ(SeqsIn(bytes, &parse), (std::vector<uint64_t>{1}));
  EXPECT_EQ(parse.tail_bytes, r2.size() + r3.size());
  // A value under the wrong key (its CRC covers the key) is damage too.
  Frame moved = MakeFrame(4);
  moved.key = SampleKey("cam-j", 5);
  bytes = r1 + Encode(moved) + r3;
  EXPECT_EQ(SeqsIn(bytes, &parse), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(parse.damaged_records, 1u);
}

TEST(FrameJournalTest, FilesRotateAndGoOnceRocksDbHasFlushedEverythingInThem) {
  ScratchDir dir;
  auto j = FrameJournal::Open(FileSystem::Default(), dir.path() + "/journal", /*rotate_bytes=*/1000);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  FrameJournal& journal = **j;
  EXPECT_TRUE(journal.found().empty());
  uint64_t seqno = 0;
  for (uint64_t s = 1; s <= 9; ++s) {
    const Frame f = MakeFrame(s, 400);  // ~450 B a record: a file rotates after its third
    const JournalRecord r = f.record();
    ASSERT_TRUE(journal.Append({&r, 1}).ok());
    ASSERT_TRUE(journal.Sync().ok());
    journal.Written(seqno += 10);
    journal.MaybeRotate();
  }
  EXPECT_EQ(journal.files(), 3u);  // three closed, none current
  auto files = journal.ListFiles();
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 3u);
  journal.Release(30);  // the first file's writes end at 30
  EXPECT_EQ(journal.files(), 2u);
  journal.Release(55);  // the second's at 60: it stays
  EXPECT_EQ(journal.files(), 2u);
  journal.Release(90);
  EXPECT_EQ(journal.files(), 0u);
  files = journal.ListFiles();
  ASSERT_TRUE(files.ok());
  EXPECT_TRUE(files->empty());

  // A current file is never released, whatever RocksDB has flushed.
  const Frame f = MakeFrame(10);
  const JournalRecord r = f.record();
  ASSERT_TRUE(journal.Append({&r, 1}).ok());
  journal.Written(100);
  journal.Release(1000);
  EXPECT_EQ(journal.files(), 1u);
}

TEST(FrameJournalTest, FilesLeftByAnEarlierRunAreFoundInOrderAndNumberingGoesOn) {
  ScratchDir dir;
  const std::string jdir = dir.path() + "/journal";
  {
    auto j = FrameJournal::Open(FileSystem::Default(), jdir, 1);
    ASSERT_TRUE(j.ok());
    for (uint64_t s = 1; s <= 3; ++s) {
      const Frame f = MakeFrame(s);
      const JournalRecord r = f.record();
      ASSERT_TRUE((*j)->Append({&r, 1}).ok());
      (*j)->MaybeRotate();  // one file per record
    }
  }
  std::ofstream(jdir + "/notes.txt") << "not a journal file";
  auto j = FrameJournal::Open(FileSystem::Default(), jdir, 1);
  ASSERT_TRUE(j.ok());
  ASSERT_EQ((*j)->found().size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    auto bytes = FileSystem::Default().ReadFile((*j)->found()[i]);
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(SeqsIn(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size())),
              (std::vector<uint64_t>{i + 1}));
  }
  const std::string last = (*j)->found().back();
  ASSERT_TRUE((*j)->RemoveFound().ok());
  const Frame f = MakeFrame(4);
  const JournalRecord r = f.record();
  ASSERT_TRUE((*j)->Append({&r, 1}).ok());
  auto files = (*j)->ListFiles();
  ASSERT_TRUE(files.ok());
  ASSERT_EQ(files->size(), 1u);
  EXPECT_GT(files->front(), last);  // a new number, never a found file's
  EXPECT_TRUE(fs::exists(jdir + "/notes.txt"));
}

// Batches of frames appended and synced as the store does, with one file operation failing (each
// operation in turn, each fault): every batch whose Append and Sync returned OK is read back from
// the files afterwards (with the real file system, after a "crash" too), and writing goes on after
// a failure that was not a crash.
TEST(FrameJournalTest, NoAcknowledgedBatchIsLostWhateverFileOperationFails) {
  constexpr int kBatches = 6;
  for (const auto fault : AllFaults()) {
    for (int fail_at = 0;; ++fail_at) {
      ScratchDir dir;
      const std::string jdir = dir.path() + "/journal";
      FaultyFileSystem faulty(FileSystem::Default(), fault, fail_at);
      std::vector<uint64_t> acked;
      {
        auto j = FrameJournal::Open(faulty, jdir, /*rotate_bytes=*/1500);
        if (!j.ok()) {
          ASSERT_TRUE(faulty.triggered());
          continue;
        }
        uint64_t seq = 0;
        for (int b = 0; b < kBatches; ++b) {
          std::vector<Frame> frames;
          for (int i = 0; i < 3; ++i) frames.push_back(MakeFrame(++seq, 200));
          std::vector<JournalRecord> records;
          for (const Frame& f : frames) records.push_back(f.record());
          Status st = (*j)->Append(records);
          if (st.ok()) st = (*j)->Sync();
          if (st.ok()) {
            (*j)->Written(seq);
            (*j)->MaybeRotate();
            for (const Frame& f : frames) {
              ParsedKey k;
              ASSERT_TRUE(ParseSampleKey(f.key, &k));
              acked.push_back(k.seq);
            }
          }
        }
      }
      // Read back every file with the real file system, as the next Open would.
      auto j = FrameJournal::Open(FileSystem::Default(), jdir, 1500);
      ASSERT_TRUE(j.ok()) << j.status().ToString();
      std::map<uint64_t, int> found;
      for (const std::string& file : (*j)->found()) {
        auto bytes = FileSystem::Default().ReadFile(file);
        ASSERT_TRUE(bytes.ok());
        JournalParse parse;
        for (uint64_t s :
             SeqsIn(std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()), &parse)) {
          ++found[s];
        }
        EXPECT_EQ(parse.damaged_records, 0u) << FaultName(fault) << " at op " << fail_at;
      }
      for (uint64_t s : acked) {
        EXPECT_EQ(found.count(s), 1u) << "acknowledged frame " << s << " lost: " << FaultName(fault) << " at op "
                                      << fail_at;
      }
      if (!faulty.crashed() && faulty.triggered()) {
        // One failed batch at most (the one that met the fault); the others went on.
        EXPECT_GE(acked.size(), static_cast<size_t>(3 * (kBatches - 1))) << FaultName(fault) << " at op " << fail_at;
      }
      if (!faulty.triggered()) break;  // every operation of the sequence has failed once
    }
  }
}

}  // namespace
}  // namespace kd::storage
