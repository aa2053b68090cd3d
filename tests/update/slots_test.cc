#include "update/slots.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "base/sha256.h"
#include "model/weights_file.h"
#include "tests/update/test_util.h"

namespace kd::update {
namespace {

namespace fs = std::filesystem;
using testing::Kdw;
using testing::ReadAll;
using testing::ScratchDir;
using testing::TinyOptions;

std::string Sha(const std::vector<uint8_t>& b) { return Sha256Hex(b); }

// A model store with the factory model (version 1) committed.
struct Bootstrapped {
  ScratchDir dir;
  std::string store = dir / "models";
  std::vector<uint8_t> factory = Kdw(1);
  Bootstrapped() {
    std::ofstream(dir / "factory.kdw", std::ios::binary)
        .write(reinterpret_cast<const char*>(factory.data()), static_cast<std::streamsize>(factory.size()));
    auto slots = ModelSlots::Open(store);
    EXPECT_TRUE(slots.ok());
    EXPECT_TRUE(slots->Bootstrap(dir / "factory.kdw", 1).ok());
  }
  ModelSlots Open() {
    auto slots = ModelSlots::Open(store);
    EXPECT_TRUE(slots.ok()) << slots.status().ToString();
    return std::move(slots).value();
  }
};

TEST(SlotsTest, BootstrapInstallsTheFactoryModelOnce) {
  Bootstrapped b;
  ModelSlots slots = b.Open();
  EXPECT_EQ(slots.state().committed_version, 1u);
  EXPECT_EQ(slots.state().committed_slot, "a");
  EXPECT_EQ(slots.state().floor_version, 1u);
  EXPECT_EQ(slots.CommittedPath(), b.store + "/slot-a.kdw");
  EXPECT_EQ(slots.ActivePath(), slots.CommittedPath());
  EXPECT_EQ(slots.TrialPath(), "");
  EXPECT_EQ(ReadAll(slots.CommittedPath()), b.factory);
  auto loaded = model::LoadWeights(slots.CommittedPath());
  ASSERT_TRUE(loaded.ok());
  // A second bootstrap (every process start calls it) changes nothing.
  ASSERT_TRUE(slots.Bootstrap(b.dir / "factory.kdw", 5).ok());
  EXPECT_EQ(slots.state().committed_version, 1u);
  // Not a weight file: refused, nothing installed.
  ScratchDir other;
  std::ofstream(other / "junk.kdw") << "junk";
  auto fresh = ModelSlots::Open(other / "models");
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(fresh->Bootstrap(other / "junk.kdw", 1).IsCorruption());
  EXPECT_EQ(fresh->CommittedPath(), "");
}

TEST(SlotsTest, StageCommitRaisesTheFloorAndPersists) {
  Bootstrapped b;
  const std::vector<uint8_t> v2 = Kdw(2);
  {
    ModelSlots slots = b.Open();
    ASSERT_TRUE(slots.StageTrial(2, v2).ok());
    EXPECT_EQ(slots.state().trial_version, 2u);
    EXPECT_EQ(slots.state().trial_slot, "b");
    EXPECT_EQ(slots.ActivePath(), slots.TrialPath());
    EXPECT_EQ(ReadAll(slots.TrialPath()), v2);
    EXPECT_EQ(slots.state().floor_version, 1u);  // not raised before commit
    ASSERT_TRUE(slots.CommitTrial().ok());
  }
  ModelSlots slots = b.Open();  // as after a restart
  EXPECT_EQ(slots.state().committed_version, 2u);
  EXPECT_EQ(slots.state().committed_slot, "b");
  EXPECT_EQ(slots.state().floor_version, 2u);
  EXPECT_EQ(slots.state().trial_version, 0u);
  EXPECT_EQ(ReadAll(slots.CommittedPath()), v2);
  // The next version goes to the other slot, over the old factory model.
  ASSERT_TRUE(slots.StageTrial(3, Kdw(3)).ok());
  EXPECT_EQ(slots.state().trial_slot, "a");
  EXPECT_TRUE(slots.CommitTrial().ok());
  EXPECT_TRUE(slots.CommitTrial().code() == Status::Code::kFailedPrecondition);
}

TEST(SlotsTest, RollbackKeepsTheCommittedModel) {
  Bootstrapped b;
  ModelSlots slots = b.Open();
  ASSERT_TRUE(slots.StageTrial(2, Kdw(2)).ok());
  ASSERT_TRUE(slots.RollbackTrial().ok());
  EXPECT_EQ(slots.state().trial_version, 0u);
  EXPECT_EQ(slots.state().last_rolled_back_version, 2u);
  EXPECT_EQ(slots.state().committed_version, 1u);
  EXPECT_EQ(slots.state().floor_version, 1u);
  EXPECT_EQ(slots.ActivePath(), slots.CommittedPath());
  EXPECT_EQ(ReadAll(slots.CommittedPath()), b.factory);
  EXPECT_TRUE(slots.RollbackTrial().ok());  // idempotent
  ModelSlots reopened = b.Open();
  EXPECT_EQ(reopened.state().trial_version, 0u);
  EXPECT_EQ(reopened.state().committed_slot, "a");
}

TEST(SlotsTest, StagingAtOrBelowTheFloorIsRefused) {
  Bootstrapped b;
  ModelSlots slots = b.Open();
  ASSERT_TRUE(slots.StageTrial(5, Kdw(5)).ok());
  ASSERT_TRUE(slots.CommitTrial().ok());
  EXPECT_EQ(slots.StageTrial(5, Kdw(5)).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(slots.StageTrial(3, Kdw(3)).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(slots.state().trial_version, 0u);
  // Torn or foreign bytes never reach a slot.
  std::vector<uint8_t> torn = Kdw(6);
  torn.resize(torn.size() / 2);
  EXPECT_TRUE(slots.StageTrial(6, torn).IsCorruption());
  EXPECT_EQ(slots.state().trial_version, 0u);
  // A newer trial replaces a pending one.
  ASSERT_TRUE(slots.StageTrial(6, Kdw(6)).ok());
  ASSERT_TRUE(slots.StageTrial(7, Kdw(7)).ok());
  EXPECT_EQ(slots.state().trial_version, 7u);
  EXPECT_EQ(ReadAll(slots.TrialPath()), Kdw(7));
}

TEST(SlotsTest, NoteStartAbandonsTheTrialAfterKStarts) {
  Bootstrapped b;
  {
    ModelSlots slots = b.Open();
    ASSERT_TRUE(slots.StageTrial(2, Kdw(2)).ok());
  }
  for (uint32_t start = 1; start <= 2; ++start) {
    ModelSlots slots = b.Open();  // a process start (the previous one crashed on the trial)
    auto abandon = slots.NoteStart(2);
    ASSERT_TRUE(abandon.ok());
    EXPECT_FALSE(*abandon) << "start " << start;
    EXPECT_EQ(slots.state().trial_starts, start);
    EXPECT_EQ(slots.ActivePath(), slots.TrialPath());
  }
  ModelSlots slots = b.Open();
  auto abandon = slots.NoteStart(2);
  ASSERT_TRUE(abandon.ok());
  EXPECT_TRUE(*abandon);
  EXPECT_EQ(slots.state().trial_version, 0u);
  EXPECT_EQ(slots.state().last_rolled_back_version, 2u);
  EXPECT_EQ(b.Open().ActivePath(), b.Open().CommittedPath());
  // Without a trial a start is not counted.
  EXPECT_FALSE(*slots.NoteStart(0));
}

TEST(SlotsTest, DamagedStateFileIsCorruptionAndLeftAlone) {
  Bootstrapped b;
  const std::string state = b.store + "/state.json";
  for (const std::string& text :
       {std::string("{\"format\": \"kd-slots-v1\", \"committed_ver"), std::string("not json at all"),
        std::string("{\"format\": \"kd-slots-v9\"}"),
        std::string("{\"format\":\"kd-slots-v1\",\"committed_version\":1,\"committed_slot\":\"c\",\"trial_version\":0,"
                    "\"trial_slot\":\"\",\"trial_starts\":0,\"floor_version\":1}"),
        std::string("{\"format\":\"kd-slots-v1\",\"committed_version\":1,\"committed_slot\":\"a\",\"trial_version\":2,"
                    "\"trial_slot\":\"a\",\"trial_starts\":0,\"floor_version\":1}")}) {
    std::ofstream(state, std::ios::trunc) << text;
    auto slots = ModelSlots::Open(b.store);
    EXPECT_TRUE(slots.status().IsCorruption()) << text;
    std::ifstream in(state);
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), text) << "state file was rewritten";
  }
  // A state naming a slot whose file is gone.
  std::ofstream(state, std::ios::trunc)
      << "{\"format\":\"kd-slots-v1\",\"committed_version\":1,\"committed_slot\":\"b\",\"trial_version\":0,"
         "\"trial_slot\":\"\",\"trial_starts\":0,\"floor_version\":1}";
  EXPECT_TRUE(ModelSlots::Open(b.store).status().IsCorruption());
}

TEST(SlotsTest, CrashLeftoversAreIgnored) {
  Bootstrapped b;
  // A crash after writing the temp state file but before the rename: the old state holds.
  std::ofstream(b.store + "/state.json.tmp") << "{half";
  std::ofstream(b.store + "/slot-b.kdw.tmp") << "half a model";
  ModelSlots slots = b.Open();
  EXPECT_EQ(slots.state().committed_version, 1u);
  EXPECT_FALSE(fs::exists(b.store + "/state.json.tmp"));
  EXPECT_FALSE(fs::exists(b.store + "/slot-b.kdw.tmp"));
}

TEST(DownloadTest, ResumesAfterTheProcessDies) {
  ScratchDir dir;
  const std::vector<uint8_t> artefact = Kdw(3);
  const std::string sha = Sha(artefact);
  const size_t chunk = 1000;
  size_t sent = 0;
  {
    auto d = ModelSlots::Download::Begin(dir.path(), sha, artefact.size());
    ASSERT_TRUE(d.ok()) << d.status().ToString();
    EXPECT_EQ(d->have(), 0u);
    for (int i = 0; i < 3; ++i, sent += chunk) {
      ASSERT_TRUE(d->Append(sent, std::span(artefact).subspan(sent, chunk)).ok());
    }
  }  // destroyed mid-way: the link dropped or the process was killed
  auto d = ModelSlots::Download::Begin(dir.path(), sha, artefact.size());
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->have(), sent);
  while (d->have() < artefact.size()) {
    const size_t n = std::min(chunk, artefact.size() - d->have());
    ASSERT_TRUE(d->Append(d->have(), std::span(artefact).subspan(d->have(), n)).ok());
  }
  auto bytes = d->Finish();
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, artefact);
  EXPECT_FALSE(fs::exists(d->path()));
}

TEST(DownloadTest, WrongOffsetsAndOversizeAreRefused) {
  ScratchDir dir;
  const std::vector<uint8_t> artefact(5000, 7);
  auto d = ModelSlots::Download::Begin(dir.path(), Sha(artefact), artefact.size());
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(d->Append(0, std::span(artefact).first(1000)).ok());
  EXPECT_TRUE(d->Append(0, std::span(artefact).first(1000)).IsInvalidArgument());     // repeated chunk
  EXPECT_TRUE(d->Append(2000, std::span(artefact).first(1000)).IsInvalidArgument());  // gap
  EXPECT_TRUE(d->Append(1000, std::vector<uint8_t>(4001, 7)).IsInvalidArgument());    // past the end
  EXPECT_EQ(d->have(), 1000u);
  EXPECT_EQ(d->Finish().status().code(), Status::Code::kFailedPrecondition);  // incomplete
  EXPECT_TRUE(ModelSlots::Download::Begin(dir.path(), "../../etc/passwd", 10).status().IsInvalidArgument());
  EXPECT_TRUE(ModelSlots::Download::Begin(dir.path(), Sha(artefact), 0).status().IsInvalidArgument());
}

TEST(DownloadTest, ShaMismatchIsCorruptionAndDeletesThePartial) {
  ScratchDir dir;
  std::vector<uint8_t> artefact(3000, 1);
  const std::string sha = Sha(artefact);
  auto d = ModelSlots::Download::Begin(dir.path(), sha, artefact.size());
  ASSERT_TRUE(d.ok());
  artefact[1234] ^= 0x10;  // a bit flip in transit
  ASSERT_TRUE(d->Append(0, artefact).ok());
  EXPECT_TRUE(d->Finish().status().IsCorruption());
  EXPECT_FALSE(fs::exists(d->path()));
  auto again = ModelSlots::Download::Begin(dir.path(), sha, artefact.size());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->have(), 0u);
}

TEST(DownloadTest, OnlyOnePartialIsKept) {
  ScratchDir dir;
  const std::vector<uint8_t> one(100, 1), two(100, 2);
  auto a = ModelSlots::Download::Begin(dir.path(), Sha(one), one.size());
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(a->Append(0, std::span(one).first(50)).ok());
  auto b = ModelSlots::Download::Begin(dir.path(), Sha(two), two.size());
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(b->Append(0, std::span(two).first(10)).ok());
  EXPECT_FALSE(fs::exists(a->path()));
  EXPECT_TRUE(fs::exists(b->path()));
  // Resuming the first one starts over.
  auto a2 = ModelSlots::Download::Begin(dir.path(), Sha(one), one.size());
  ASSERT_TRUE(a2.ok());
  EXPECT_EQ(a2->have(), 0u);
  EXPECT_FALSE(fs::exists(b->path()));
}

}  // namespace
}  // namespace kd::update
