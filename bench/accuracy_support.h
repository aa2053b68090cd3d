// Real accuracy for the benchmarks (bench_accuracy, bench_ablation): student detections scored
// against the human boxes of ../shared/eval with that folder's own scorer (score.py, run as a
// child process). The human boxes are evaluation only: nothing here trains on them. Bench code
// only; header-only.
#ifndef KD_BENCH_ACCURACY_SUPPORT_H_
#define KD_BENCH_ACCURACY_SUPPORT_H_

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/detection.h"

namespace kd::bench {

// True when `eval_dir` holds the scorer (and so the human boxes beside it).
inline bool HaveHumanBoxes(const std::string& eval_dir) { return std::filesystem::exists(eval_dir + "/score.py"); }

// Writes person detections as score.py's CSV and runs the scorer; nullopt (with a message) on failure.
inline std::optional<nlohmann::json> ScoreAgainstHumans(const std::string& eval_dir,
                                                        const std::vector<FrameDetections>& dets,
                                                        const std::string& frames, const std::string& tmp_dir,
                                                        const std::string& name) {
  const std::string csv = tmp_dir + "/" + name + ".csv";
  {
    std::ofstream f(csv, std::ios::trunc);
    for (const auto& fd : dets) {
      for (const auto& d : fd.detections) {
        if (d.label != 0) continue;
        f << fd.frame_index << ",0," << d.score << "," << d.box.x1 << "," << d.box.y1 << "," << d.box.x2 << ","
          << d.box.y2 << "\n";
      }
    }
    if (!f) {
      std::fprintf(stderr, "accuracy: cannot write %s\n", csv.c_str());
      return std::nullopt;
    }
  }
  const std::string out = tmp_dir + "/" + name + ".score.json";
  const std::string cmd =
      "python3 '" + eval_dir + "/score.py' '" + csv + "' --frames " + frames + " --json > '" + out + "'";
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "accuracy: the scorer failed: %s\n", cmd.c_str());
    return std::nullopt;
  }
  std::ifstream in(out);
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    std::fprintf(stderr, "accuracy: unreadable scorer output %s: %s\n", out.c_str(), e.what());
    return std::nullopt;
  }
}

}  // namespace kd::bench

#endif  // KD_BENCH_ACCURACY_SUPPORT_H_
