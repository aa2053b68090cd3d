#include "learner/remote_teacher.h"

#include <thread>

#include "base/log.h"
#include "base/text.h"
#include "learner/teacher_record.h"
#include "media/image_ops.h"

namespace kd::learner {
namespace {

// How often the labeller looks for a label worker's result (a store read on the learner network).
constexpr std::chrono::milliseconds kResultPoll{20};

}  // namespace

RemoteTeacherPass::RemoteTeacherPass(cluster::WorkerPool& workers, TeacherPass& local,
                                     std::chrono::milliseconds timeout, std::chrono::milliseconds retry_after_failure)
    : workers_(workers), local_(local), timeout_(timeout), retry_after_failure_(retry_after_failure) {}

void RemoteTeacherPass::DrainAbandoned() {
  for (auto it = abandoned_.begin(); it != abandoned_.end();) {
    auto late = workers_.TakeResult(*it);
    if (late.ok() && !late->has_value()) {
      ++it;  // still working on it
    } else {
      it = abandoned_.erase(it);  // answered (dropped), or gone
    }
  }
}

Result<DistillDataset> RemoteTeacherPass::Label(const std::vector<media::Frame>& frames,
                                                const std::vector<std::vector<uint8_t>>& jpegs,
                                                const DatasetOptions& options, const std::atomic<bool>& cancel) {
  DrainAbandoned();
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(failed_until_, [&](const auto& kv) { return kv.second <= now; });
  if (jpegs.size() == frames.size() && !frames.empty()) {
    for (const auto& w : workers_.Workers()) {
      if (w.role != cluster::WorkerRole::kLabel || w.state != cluster::WorkerState::kAlive || w.busy ||
          failed_until_.count(w.id)) {
        continue;
      }
      auto rows = LabelOn(w.id, frames, jpegs, options, cancel);
      if (rows.ok()) {
        frames_remote_ += frames.size();
        return rows;
      }
      if (cancel) return Status::Unavailable("stopping: the label job was abandoned");
      failed_until_[w.id] = std::chrono::steady_clock::now() + retry_after_failure_;
      KD_LOG(kWarn) << "labeller: label worker " << w.id << " (" << w.name << "): " << rows.status().ToString()
                    << "; labelling " << frames.size() << " frames here (no batch for it for "
                    << retry_after_failure_.count() / 1000.0 << " s)";
      break;  // one try per batch: the next batch looks for a worker again
    }
  }
  auto rows = local_.Label(frames, jpegs, options, cancel);
  if (rows.ok()) frames_local_ += frames.size();
  return rows;
}

Result<DistillDataset> RemoteTeacherPass::LabelOn(uint64_t worker, const std::vector<media::Frame>& frames,
                                                  const std::vector<std::vector<uint8_t>>& jpegs,
                                                  const DatasetOptions& options, const std::atomic<bool>& cancel) {
  if (options.teacher_width != 0 || options.teacher_height != 0) {
    return Status::FailedPrecondition("an exact teacher input size does not travel in a label job");
  }
  LabelJob job;
  job.student_long_side = options.student_long_side;
  job.teacher_long_side = options.teacher_long_side;
  job.teacher_min_score = options.teacher_min_score;
  job.labels = options.labels;
  job.refine = options.refine;
  job.jpegs.reserve(jpegs.size());
  for (const auto& j : jpegs) job.jpegs.emplace_back(j.begin(), j.end());
  KD_RETURN_IF_ERROR(workers_.SendJob(worker, EncodeLabelJob(job)));
  const auto deadline = std::chrono::steady_clock::now() + timeout_;
  std::optional<std::string> bytes;
  while (!bytes) {
    if (cancel || std::chrono::steady_clock::now() > deadline) {
      abandoned_.insert(worker);
      if (cancel) return Status::Unavailable("stopping");
      return Status::Unavailable("no answer within " + std::to_string(timeout_.count()) + " ms");
    }
    KD_ASSIGN_OR_RETURN(bytes, workers_.TakeResult(worker));
    if (!bytes) std::this_thread::sleep_for(kResultPoll);
  }
  KD_ASSIGN_OR_RETURN(LabelResult result, DecodeLabelResult(*bytes));
  if (!result.error.empty()) return Status::Internal("the worker's teacher: " + result.error);
  if (result.rows.size() != frames.size()) {
    return Status::Corruption("the worker labelled " + std::to_string(result.rows.size()) + " of " +
                              std::to_string(frames.size()) + " frames");
  }
  DatasetAssembler assembler;
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto& blob = result.rows[i];
    KD_ASSIGN_OR_RETURN(TeacherRow row, DecodeTeacherRow(std::span<const uint8_t>(
                                            reinterpret_cast<const uint8_t*>(blob.data()), blob.size())));
    if (row.labels != options.labels) return Status::Corruption("the worker's rows have other labels");
    KD_RETURN_IF_ERROR(assembler.Add(frames[i], std::move(row)));
  }
  KD_ASSIGN_OR_RETURN(DistillDataset data, std::move(assembler).Finish());
  for (size_t i = 0; i < frames.size(); ++i) data.frame_indices[i] = frames[i].index;  // as the builder sets them
  return data;
}

LabelResult AnswerLabelJob(const LabelJob& job, TeacherPass& teacher, const std::atomic<bool>& cancel) {
  LabelResult out;
  const auto start = std::chrono::steady_clock::now();
  try {
    std::vector<media::Frame> frames;
    std::vector<std::vector<uint8_t>> jpegs;
    for (size_t i = 0; i < job.jpegs.size(); ++i) {
      jpegs.emplace_back(job.jpegs[i].begin(), job.jpegs[i].end());
      auto frame = media::DecodeJpeg(jpegs.back());
      if (!frame.ok()) {
        out.error = "frame " + std::to_string(i) + ": " + frame.status().ToString();
        return out;
      }
      frame->index = static_cast<int64_t>(i);
      if (!frames.empty() && (frame->width != frames[0].width || frame->height != frames[0].height)) {
        out.error = "frame " + std::to_string(i) + " is not the size of the first";
        return out;
      }
      frames.push_back(std::move(frame).value());
    }
    if (frames.empty()) {
      out.error = "no frames";
      return out;
    }
    DatasetOptions options;
    options.student_long_side = job.student_long_side;
    options.teacher_long_side = job.teacher_long_side;
    options.teacher_min_score = job.teacher_min_score;
    options.labels = job.labels;
    options.refine.enabled = job.refine.enabled;
    options.refine.extra_long_sides = job.refine.extra_long_sides;
    options.refine.wbf_iou = job.refine.wbf_iou;
    auto data = teacher.Label(frames, jpegs, options, cancel);
    if (!data.ok()) {
      out.error = data.status().ToString();
      return out;
    }
    if (data->size() != frames.size()) {
      out.error = "the teacher labelled " + std::to_string(data->size()) + " of " + std::to_string(frames.size());
      return out;
    }
    for (size_t i = 0; i < data->size(); ++i) {
      const auto blob = EncodeTeacherRow(*data, i);
      out.rows.emplace_back(blob.begin(), blob.end());
    }
  } catch (const std::exception& e) {
    out.rows.clear();
    out.error = "LibTorch: " + FirstLine(e.what());
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return out;
}

}  // namespace kd::learner
