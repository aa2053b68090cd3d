// The edge's on-disk model store: two weight slots (A/B), a persisted state file naming the
// committed slot, the slot on trial and the version floor, and one resumable download. Every state
// change is atomic (temp file, fsync, rename, fsync dir), so a crash or power cut at any point
// leaves the committed model or the new one fully installed, never a mix. Directory layout and the
// install sequence: docs/UPDATE_FORMAT.md ("Slots").
// Ownership/threading: one ModelSlots per directory and process (no file locking); an instance is
// not thread-safe (use it from the update thread only). Movable, not copyable.
#ifndef KD_UPDATE_SLOTS_H_
#define KD_UPDATE_SLOTS_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/file_system.h"
#include "base/status.h"

namespace kd::update {

struct SlotState {
  uint64_t committed_version = 0;         // the version the edge returns to on rollback / restart
  std::string committed_slot;             // "a" or "b"; empty before the first install
  uint64_t trial_version = 0;             // 0 = none on trial
  std::string trial_slot;                 // the slot that is not committed, while a trial is pending
  uint32_t trial_starts = 0;              // process starts while the trial was uncommitted
  uint64_t floor_version = 0;             // never install <= floor (persisted; raised on commit)
  uint64_t last_rolled_back_version = 0;  // the last trial abandoned (informational; 0 = none)
};

class ModelSlots {
 public:
  // Creates dir if needed; reads dir/state.json (absent = empty state). Corruption for a damaged
  // state file (clear message; nothing is overwritten), IOError when dir cannot be created.
  // Every file operation goes through `fs` (a seam: tests inject failures); it must outlive the
  // ModelSlots and its Downloads.
  static Result<ModelSlots> Open(const std::string& dir, FileSystem& fs = FileSystem::Default());

  const SlotState& state() const { return state_; }
  const std::string& dir() const { return dir_; }

  // Installs the factory model (a .kdw file, copied and checksum-checked) as committed version
  // `version` in slot a, with floor = version, when nothing is installed yet; OK and a no-op if
  // something is. Corruption if the file is not a valid .kdw.
  Status Bootstrap(const std::string& kdw_path, uint64_t version);

  std::string SlotPath(const std::string& slot) const;  // dir/slot-a.kdw; KD_CHECKs slot is "a"/"b"
  std::string CommittedPath() const;                    // "" when none
  std::string TrialPath() const;                        // "" when no trial is pending
  // What a starting process should load: the trial if one is pending (call NoteStart first),
  // else the committed slot; "" when nothing is installed.
  std::string ActivePath() const;

  // Writes full .kdw bytes of `version` into the slot that is not committed (atomically) and
  // marks it on trial, replacing any pending trial. FailedPrecondition if version <= floor or
  // version <= committed_version; Corruption if the bytes are not a .kdw with a valid checksum.
  Status StageTrial(uint64_t version, std::span<const uint8_t> kdw_bytes);
  // committed <- trial; floor <- max(floor, version); trial cleared. FailedPrecondition without a
  // pending trial.
  Status CommitTrial();
  // Trial cleared (the slot file stays but is never loaded); remembered in
  // last_rolled_back_version. OK and a no-op without a pending trial.
  Status RollbackTrial();
  // Call once per process start: if a trial is pending, counts the start (persisted); returns true
  // if the trial should be abandoned (trial_starts > max_trial_starts), and then rolls it back.
  Result<bool> NoteStart(uint32_t max_trial_starts);

  // Resumable download of an artefact into dir/download-<sha256>.partial. Only one is kept:
  // beginning another removes older partials. Each Append is fsynced, so after a crash have()
  // never counts bytes that did not reach the disk. Movable; not thread-safe.
  class Download {
   public:
    // InvalidArgument unless artifact_sha256 is 64 lowercase hex and size > 0. A partial longer
    // than `size` (not ours) is discarded.
    static Result<Download> Begin(const std::string& dir, const std::string& artifact_sha256, uint64_t size,
                                  FileSystem& fs = FileSystem::Default());
    uint64_t have() const { return have_; }  // bytes already on disk (resume point)
    uint64_t size() const { return size_; }
    bool complete() const { return have_ == size_; }
    const std::string& path() const { return path_; }
    // offset must equal have() and offset + bytes.size() must not exceed size (InvalidArgument).
    Status Append(uint64_t offset, std::span<const uint8_t> bytes);
    // When complete (else FailedPrecondition): reads back, checks sha256 (Corruption and the
    // partial deleted on mismatch), removes the partial and returns the bytes.
    Result<std::vector<uint8_t>> Finish();
    // Deletes the partial (e.g. after the manifest was withdrawn).
    Status Abandon();

   private:
    Download() = default;
    FileSystem* fs_ = nullptr;
    std::string dir_, path_, sha256_;
    uint64_t size_ = 0, have_ = 0;
  };

 private:
  ModelSlots(std::string dir, FileSystem& fs) : fs_(&fs), dir_(std::move(dir)) {}
  Status Persist(const SlotState& next);  // writes state.json atomically, then adopts `next`
  FileSystem* fs_;
  std::string dir_;
  SlotState state_;
};

}  // namespace kd::update

#endif  // KD_UPDATE_SLOTS_H_
