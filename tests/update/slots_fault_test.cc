// Fault injection through the FileSystem seam (base/file_system.h): every operation of an atomic
// write, of staging and committing a model, and of a resumable download is failed in turn, with
// ENOSPC, EIO, a short write, a crash and a torn write followed by a crash. After each, the
// directory is reopened with the real file system, as a restarted edge would: nothing committed
// is lost, and what is named or loaded is always one whole version, never a half-written file.
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/file_system.h"
#include "base/sha256.h"
#include "model/weights_file.h"
#include "tests/support/faulty_file_system.h"
#include "tests/update/test_util.h"
#include "update/slots.h"

namespace kd::update {
namespace {

namespace fs = std::filesystem;
using kd::testing::AllFaults;
using kd::testing::Fault;
using kd::testing::FaultName;
using kd::testing::FaultyFileSystem;
using testing::Kdw;
using testing::ReadAll;
using testing::ScratchDir;
using testing::TinyOptions;

void WriteAll(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// The loop bound: no protocol here takes anywhere near this many operations.
constexpr int kMaxOperations = 200;

TEST(FileSystemFaultTest, AnAtomicWriteLeavesTheOldOrTheNewContent) {
  ScratchDir dir;
  const std::string path = dir / "state.json";
  const std::vector<uint8_t> old_bytes(3000, 'o'), new_bytes(5000, 'n');
  int protocols = 0;
  for (Fault fault : AllFaults()) {
    for (int i = 0; i < kMaxOperations; ++i) {
      WriteAll(path, old_bytes);
      fs::remove(path + ".tmp");
      FaultyFileSystem faulty(FileSystem::Default(), fault, i);
      const Status st = WriteFileAtomic(faulty, path, new_bytes);
      if (!faulty.triggered()) {
        ASSERT_TRUE(st.ok()) << st.ToString();
        EXPECT_EQ(ReadAll(path), new_bytes);
        protocols = std::max(protocols, i);
        break;
      }
      const auto now = ReadAll(path);
      EXPECT_TRUE(now == old_bytes || now == new_bytes) << FaultName(fault) << " at op " << i;
      if (!st.ok() && fault != Fault::kCrash && fault != Fault::kTornCrash) {
        // A reported failure before the rename leaves the old content; only the final directory
        // sync comes after it.
        if (now == new_bytes) {
          EXPECT_NE(st.message().find("sync dir"), std::string::npos) << st.ToString();
        }
      }
    }
  }
  EXPECT_GE(protocols, 5) << "open, append, sync, close, rename, sync dir";
}

// A model store with the factory model (version 1) committed, written with the real FileSystem.
struct Store {
  ScratchDir dir;
  std::string path = dir / "models";
  std::vector<uint8_t> v1 = Kdw(1), v2 = Kdw(2);
  void Reset() {
    fs::remove_all(path);
    WriteAll(dir / "factory.kdw", v1);
    auto slots = ModelSlots::Open(path);
    ASSERT_TRUE(slots.ok());
    ASSERT_TRUE(slots->Bootstrap(dir / "factory.kdw", 1).ok());
  }
  // What a restarted edge finds: the store opens, the committed slot holds exactly the committed
  // version's bytes, a named trial exactly v2's, and no temp file is left to be mistaken.
  void ExpectConsistent(const std::string& where, uint64_t min_committed) {
    auto slots = ModelSlots::Open(path);
    ASSERT_TRUE(slots.ok()) << where << ": " << slots.status().ToString();
    const SlotState& s = slots->state();
    ASSERT_TRUE(s.committed_version == 1 || s.committed_version == 2) << where;
    EXPECT_GE(s.committed_version, min_committed) << where << ": a commit that returned OK was lost";
    EXPECT_EQ(ReadAll(slots->CommittedPath()), s.committed_version == 1 ? v1 : v2) << where;
    if (s.trial_version != 0) {
      EXPECT_EQ(s.trial_version, 2u) << where;
      EXPECT_EQ(ReadAll(slots->TrialPath()), v2) << where << ": the trial slot is not whole";
    }
    for (const auto& e : fs::directory_iterator(path)) {
      EXPECT_NE(e.path().extension(), ".tmp") << where << ": " << e.path();
    }
  }
};

TEST(SlotsFaultTest, StagingAndCommittingSurviveAFaultAtEveryOperation) {
  Store store;
  int cases = 0;
  for (Fault fault : AllFaults()) {
    for (int i = 0; i < kMaxOperations; ++i) {
      store.Reset();
      FaultyFileSystem faulty(FileSystem::Default(), fault, i);
      uint64_t min_committed = 1;
      bool staged = false;
      auto slots = ModelSlots::Open(store.path, faulty);
      if (slots.ok()) {
        staged = slots->StageTrial(2, store.v2).ok();
        if (staged && slots->CommitTrial().ok()) min_committed = 2;
      }
      const std::string where = std::string(FaultName(fault)) + " at operation " + std::to_string(i);
      store.ExpectConsistent(where, min_committed);
      if (staged && min_committed == 1) {
        // Staged but not committed: a restart runs v2 on trial or, if the state write after the
        // rename reported an error, still names it; never a mix.
        auto reopened = ModelSlots::Open(store.path);
        ASSERT_TRUE(reopened.ok());
        EXPECT_TRUE(reopened->state().trial_version == 2 || reopened->state().committed_version == 2) << where;
      }
      ++cases;
      if (!faulty.triggered()) {
        EXPECT_EQ(min_committed, 2u) << "without a fault, v2 is committed";
        break;
      }
    }
  }
  std::cout << "[ faults ] staging + commit: " << cases << " runs, every operation failed once per fault kind\n";
  EXPECT_GT(cases, 5 * 10);
}

TEST(SlotsFaultTest, ADownloadSurvivesAFaultAtEveryOperation) {
  ScratchDir dir;
  std::vector<uint8_t> artefact(10000);
  for (size_t i = 0; i < artefact.size(); ++i) artefact[i] = static_cast<uint8_t>((i * 131) % 251);
  const std::string sha = Sha256Hex(artefact);
  constexpr size_t kChunk = 2500;
  int cases = 0;
  for (Fault fault : AllFaults()) {
    for (int i = 0; i < kMaxOperations; ++i) {
      fs::remove_all(dir / "dl");
      const std::string where = std::string(FaultName(fault)) + " at operation " + std::to_string(i);
      FaultyFileSystem faulty(FileSystem::Default(), fault, i);
      bool finished = false;
      {
        auto d = ModelSlots::Download::Begin(dir / "dl", sha, artefact.size(), faulty);
        if (d.ok()) {
          bool failed = false;
          while (!failed && !d->complete()) {
            const size_t n = std::min(kChunk, artefact.size() - d->have());
            failed = !d->Append(d->have(), std::span<const uint8_t>(artefact).subspan(d->have(), n)).ok();
          }
          if (!failed) {
            auto bytes = d->Finish();
            if (bytes.ok()) {
              EXPECT_EQ(*bytes, artefact) << where;
              finished = true;
            }
          }
        }
      }
      // A restarted edge resumes: what is on disk is a prefix of the artefact, and finishing the
      // download gives exactly the artefact (or, after a finish that returned it, nothing to do).
      if (!finished) {
        auto d = ModelSlots::Download::Begin(dir / "dl", sha, artefact.size());
        ASSERT_TRUE(d.ok()) << where << ": " << d.status().ToString();
        const auto partial = fs::exists(d->path()) ? ReadAll(d->path()) : std::vector<uint8_t>{};
        ASSERT_EQ(partial.size(), d->have()) << where;
        EXPECT_TRUE(std::equal(partial.begin(), partial.end(), artefact.begin())) << where << ": not a prefix";
        while (!d->complete()) {
          const size_t n = std::min(kChunk, artefact.size() - d->have());
          ASSERT_TRUE(d->Append(d->have(), std::span<const uint8_t>(artefact).subspan(d->have(), n)).ok()) << where;
        }
        auto bytes = d->Finish();
        ASSERT_TRUE(bytes.ok()) << where << ": " << bytes.status().ToString();
        EXPECT_EQ(*bytes, artefact) << where;
      }
      ++cases;
      if (!faulty.triggered()) break;
    }
  }
  std::cout << "[ faults ] download: " << cases << " runs\n";
  EXPECT_GT(cases, 5 * 10);
}

}  // namespace
}  // namespace kd::update
