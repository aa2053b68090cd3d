// bench_speed: teacher vs student inference time on the same vtest.avi frames, at 1 and 2
// threads (teacher: forward at 512x384; student: forward + decode at 384x288). Prints a table and writes JSON (--json).
// Not a test: timings are measurements.
//   bench_speed [--frames 20] [--weights student.kdw] [--teacher-batches 1,2,4,8] [--json out/bench_speed.json]
// Then the teacher's ms/frame per batch size (teacher.batch) at 512 and 768 long side, 2 threads.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "base/assets.h"
#include "base/clock.h"
#include "media/image_ops.h"
#include "media/video_source.h"
#include "model/frame_tensor.h"
#include "model/inference.h"
#include "model/teacher.h"
#include "model/threads.h"
#include "model/weights_file.h"

namespace {

torch::Tensor ToInput(const kd::media::Frame& f, int w, int h) {
  return kd::model::FrameToTensor(kd::media::ResizeRgb(f, w, h)).unsqueeze(0);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  kd::model::TuneAllocatorForTensors();
  CLI::App app{"Teacher vs student inference speed on the sample video"};
  int frames = 20;
  std::string weights, json_path;
  app.add_option("--frames", frames, "Frames timed per configuration")->capture_default_str();
  app.add_option("--weights", weights, "Student weights (default: a fresh student of the default architecture)");
  app.add_option("--json", json_path, "Write the results as JSON here");
  std::vector<int> teacher_batches{1, 2, 4, 8};
  app.add_option("--teacher-batches", teacher_batches, "Frames per teacher forward to time (2 threads)")
      ->delimiter(',')
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto teacher = kd::model::CenterNetTeacher::Load(kd::AssetPath("centernet.json"));
  if (!teacher.ok()) {
    std::fprintf(stderr, "bench_speed: %s\n", teacher.status().ToString().c_str());
    return 1;
  }
  kd::model::StudentOptions sopt;
  sopt.one_to_one = true;  // the default recipe (arm e) is NMS-free
  kd::model::Student student(sopt);
  if (!weights.empty()) {
    auto l = kd::model::LoadWeights(weights);
    if (!l.ok()) {
      std::fprintf(stderr, "bench_speed: %s\n", l.status().ToString().c_str());
      return 1;
    }
    student = l->student;
  }
  student->eval();
  const kd::model::FusedStudent fused(*student);  // what kdedge runs
  kd::media::SourceOptions so;
  so.begin = 300;
  so.end = 300 + frames;
  auto src = kd::media::OpenSource(kd::AssetPath("vtest.avi"), so);
  if (!src.ok()) {
    std::fprintf(stderr, "bench_speed: %s\n", src.status().ToString().c_str());
    return 1;
  }
  std::vector<kd::media::Frame> video;
  while (true) {
    auto f = (*src)->Next();
    if (!f.ok() || !f->has_value()) break;
    video.push_back(**f);
  }
  const auto [tw, th] = kd::media::FitSize(video[0].width, video[0].height, 512, 32);
  const auto& so_ = student->options();
  nlohmann::json results = nlohmann::json::array();
  std::printf("%-8s %-10s %10s %10s %10s\n", "threads", "model", "input", "ms/frame", "fps");
  for (int threads : {1, 2}) {
    kd::model::SetComputeThreads(threads);
    // Each model runs in its own loop over the same frames (as in deployment, where the teacher
    // and the student never share a machine), after one warm-up frame; 3 passes, median.
    std::vector<double> t_ms, s_ms;
    for (int pass = 0; pass < 3; ++pass) {
      for (size_t i = 0; i < video.size(); ++i) {
        auto tin = ToInput(video[i], tw, th).to(torch::kFloat);
        kd::Stopwatch a;
        auto out = (*teacher)->Forward(tin);
        if (pass > 0 || i > 0) t_ms.push_back(a.ElapsedMillis());
      }
      for (size_t i = 0; i < video.size(); ++i) {
        auto sin = ToInput(video[i], so_.input_width, so_.input_height);
        kd::Stopwatch b;
        auto dets = kd::model::DetectBatch(fused, sin, video[i].width, video[i].height);
        if (pass > 0 || i > 0) s_ms.push_back(b.ElapsedMillis());
      }
    }
    const double tm = Median(t_ms), sm = Median(s_ms);
    std::printf("%-8d %-10s %6dx%-4d %10.2f %10.1f\n", threads, "teacher", tw, th, tm, 1000 / tm);
    std::printf("%-8d %-10s %6dx%-4d %10.2f %10.1f\n", threads, "student", so_.input_width, so_.input_height, sm,
                1000 / sm);
    std::printf("%-8d %-10s %10s %10.1fx\n", threads, "ratio", "", tm / sm);
    results.push_back({{"threads", threads},
                       {"teacher_ms", tm},
                       {"student_ms", sm},
                       {"speedup", tm / sm},
                       {"teacher_input", std::to_string(tw) + "x" + std::to_string(th)},
                       {"student_input", std::to_string(so_.input_width) + "x" + std::to_string(so_.input_height)},
                       {"frames", t_ms.size()}});
  }
  // The labeller's question: how many frames per teacher forward (teacher.batch) on this CPU, at
  // the base scale and at the refine scale the demo adds. Larger batches make activations of
  // hundreds of MB (8 frames at 768x576: the first feature map alone is 113 MB), which glibc serves
  // with fresh mmap'd pages on every forward: page faults, not arithmetic.
  nlohmann::json batches = nlohmann::json::array();
  std::printf("\n%-8s %-10s %-6s %10s %10s\n", "threads", "teacher", "batch", "ms/frame", "fps");
  kd::model::SetComputeThreads(2);
  for (int side : {512, 768}) {
    const auto [bw, bh] = kd::media::FitSize(video[0].width, video[0].height, side, 32);
    for (int batch : teacher_batches) {
      std::vector<double> per_frame;
      for (int pass = 0; pass < 2; ++pass) {  // pass 0 warms up
        for (size_t i = 0; i + static_cast<size_t>(batch) <= video.size(); i += static_cast<size_t>(batch)) {
          std::vector<torch::Tensor> ins;
          for (int b = 0; b < batch; ++b) ins.push_back(ToInput(video[i + static_cast<size_t>(b)], bw, bh));
          auto tin = torch::cat(ins).to(torch::kFloat);
          kd::Stopwatch a;
          auto out = (*teacher)->Forward(tin);
          if (pass > 0) per_frame.push_back(a.ElapsedMillis() / batch);
        }
      }
      if (per_frame.empty()) continue;
      const double ms = Median(per_frame);
      std::printf("%-8d %4dx%-5d %-6d %10.2f %10.1f\n", 2, bw, bh, batch, ms, 1000 / ms);
      batches.push_back({{"threads", 2},
                         {"teacher_input", std::to_string(bw) + "x" + std::to_string(bh)},
                         {"batch", batch},
                         {"ms_per_frame", ms},
                         {"forwards", per_frame.size()}});
    }
  }
  if (!json_path.empty()) {
    std::ofstream(json_path)
        << nlohmann::json{{"bench", "speed"}, {"results", results}, {"teacher_batches", batches}}.dump(2) << "\n";
  }
  return 0;
}
