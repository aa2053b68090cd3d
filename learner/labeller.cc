#include "learner/labeller.h"

#include <algorithm>
#include <utility>

#include "base/log.h"
#include "base/text.h"
#include "learner/deployed_model.h"
#include "learner/refine.h"
#include "learner/teacher_record.h"
#include "media/image_ops.h"
#include "model/threads.h"

namespace kd::learner {

namespace {
// How long an idle labeller sleeps before looking at the store again when nobody wakes it.
constexpr std::chrono::milliseconds kIdleWait{500};

}  // namespace

CenterNetTeacherPass::CenterNetTeacherPass(const model::CenterNetTeacher& teacher, size_t chunk_frames,
                                           std::function<void()> before_forward)
    : teacher_(teacher), chunk_frames_(std::max<size_t>(1, chunk_frames)), before_forward_(std::move(before_forward)) {}

Result<DistillDataset> CenterNetTeacherPass::Label(const std::vector<media::Frame>& frames,
                                                   const std::vector<std::vector<uint8_t>>& /*jpegs*/,
                                                   const DatasetOptions& options, const std::atomic<bool>& cancel) {
  DatasetBuilder builder(teacher_, options, before_forward_);
  for (size_t begin = 0; begin < frames.size(); begin += chunk_frames_) {
    if (cancel) return Status::Unavailable("stopping: the teacher pass was cancelled");
    const size_t end = std::min(frames.size(), begin + chunk_frames_);
    KD_RETURN_IF_ERROR(builder.AddBatch(std::vector<media::Frame>(frames.begin() + static_cast<std::ptrdiff_t>(begin),
                                                                  frames.begin() + static_cast<std::ptrdiff_t>(end))));
  }
  return std::move(builder).Finish();
}

const std::atomic<bool> LabelStage::kNever{false};

LabelStage::LabelStage(LoopState& state, storage::SampleStore& store, Catalogue& catalogue, TeacherPass& teacher,
                       config::LabelRefineOptions refine)
    : state_(state), store_(store), catalogue_(catalogue), teacher_(teacher), refine_(std::move(refine)) {}

void LabelStage::Wake() { wake_.notify_one(); }

void LabelStage::Run(const std::atomic<bool>& stopping) {
  // teacher.threads: the labeller's own team size (0 = training.threads, set for the process).
  if (state_.options.teacher.threads > 0) model::SetThisThreadsComputeThreads(state_.options.teacher.threads);
  while (!stopping) {
    state_.beats.labeller.Beat();
    bool did_work = false;
    auto devs = store_.ListDevices();
    if (devs.ok()) {
      for (const auto& dev : *devs) {
        if (stopping) break;
        Status st;
        state_.beats.labeller.Beat();
        try {
          st = LabelNext(dev, &did_work, stopping);
        } catch (const std::exception& e) {  // a LibTorch failure: logged, never the end of the daemon
          st = Status::Internal(FirstLine(e.what()));
        }
        if (!st.ok() && !stopping) {
          KD_LOG(kWarn) << "labeller: " << dev << ": " << st.ToString();
        }
      }
    }
    if (!did_work && !stopping) {
      std::unique_lock lock(wake_mu_);
      wake_.wait_for(lock, kIdleWait);
    }
  }
}

Status LabelStage::LabelNext(const std::string& dev, bool* did_work, const std::atomic<bool>& cancel) {
  const auto& opt = state_.options;
  uint64_t wm = 0;
  std::shared_ptr<const DeployedModel> deployed;
  {
    std::lock_guard lock(state_.mu);
    wm = state_.label_wm[dev];
    deployed = state_.GroupFor(dev).deployed;
  }
  std::vector<media::Frame> frames_batch;
  std::vector<std::vector<uint8_t>> jpegs;  // what each frame was decoded from (a label worker gets these)
  std::vector<uint64_t> seqs;
  // Position in time of each frame: consecutive values = consecutive frames of one run.
  std::vector<int64_t> timeline;
  int64_t last_capture_us = 0;
  const auto batch = static_cast<size_t>(opt.teacher.batch);
  const int64_t max_gap_us = int64_t{refine_.max_gap_ms} * 1000;
  uint64_t last = wm;
  uint64_t scanned = 0;  // frames this call moves the watermark over (labelled or skipped)
  KD_RETURN_IF_ERROR(store_.ScanFrames(dev, wm + 1, batch + kMaxRunExtension, [&](const storage::FrameRecord& f) {
    const int64_t gap = f.capture_time_us - last_capture_us;
    const bool continues_run = !timeline.empty() && gap > 0 && gap <= max_gap_us;
    if (frames_batch.size() >= batch && !continues_run) return false;  // the batch ends with its run
    last = f.seq;
    ++scanned;
    auto frame = media::DecodeJpeg(f.jpeg);
    if (!frame.ok()) {
      KD_LOG(kWarn) << "labeller: " << dev << " seq " << f.seq << " is not a decodable JPEG; skipped";
      return true;
    }
    frame->index = static_cast<int64_t>(f.seq);
    if (!frames_batch.empty() && (frame->width != frames_batch[0].width || frame->height != frames_batch[0].height)) {
      last = seqs.back();  // a size change starts the next batch
      --scanned;
      return false;
    }
    frames_batch.push_back(std::move(frame).value());
    jpegs.push_back(f.jpeg);
    seqs.push_back(f.seq);
    timeline.push_back(timeline.empty() ? 0 : timeline.back() + (continues_run ? 1 : 2));
    last_capture_us = f.capture_time_us;
    return true;
  }));
  if (last == wm) return Status::Ok();
  *did_work = true;
  if (!frames_batch.empty()) {
    DatasetOptions dopt;
    dopt.student_long_side = opt.training.student_long_side;
    dopt.teacher_long_side = opt.teacher.long_side;
    dopt.teacher_min_score = static_cast<float>(opt.teacher.min_score);
    if (deployed) {
      // The teacher targets live on the deployed student's grid.
      const auto& so = deployed->fused.options();
      dopt.labels = so.labels;
      dopt.student_long_side = std::max(so.input_width, so.input_height);
    }
    dopt.refine = refine_;
    KD_ASSIGN_OR_RETURN(auto data, teacher_.Label(frames_batch, jpegs, dopt, cancel));
    if (data.size() != seqs.size()) {
      return Status::Internal("teacher labelled " + std::to_string(data.size()) + " of " + std::to_string(seqs.size()) +
                              " frames");
    }
    if (refine_.enabled && refine_.smooth) SmoothDatasetLabels(&data, refine_, &timeline);
    std::vector<size_t> rows(data.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
    const std::vector<float> difficulty =
        deployed ? StudentDisagreement(deployed->fused, data, rows) : std::vector<float>(rows.size(), 1.f);
    for (size_t i = 0; i < rows.size(); ++i) {
      KD_RETURN_IF_ERROR(store_.PutTeacher(dev, seqs[i], EncodeTeacherRow(data, i), difficulty[i], kTeacherBlobSchema));
    }
    std::lock_guard lock(state_.mu);
    for (size_t i = 0; i < rows.size(); ++i) state_.AddLabelled(dev, seqs[i], difficulty[i]);
    state_.frames_labelled += rows.size();
  }
  {
    std::lock_guard lock(state_.mu);
    state_.label_wm[dev] = last;
    uint64_t& pending = state_.Device(dev).frames_unlabelled;
    pending -= std::min(pending, scanned);
  }
  return catalogue_.PersistLabelWatermark(dev, last);
}

}  // namespace kd::learner
