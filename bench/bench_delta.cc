// bench_delta: what each rung of the learner's update ladder (learner/gate.h, ClimbUpdateLadder)
// costs in bytes for one real pair of versions. Encodes the delta from --base to --target at each
// --fractions value (top-k per tensor, q8, --min-abs-change as publish.delta_min_abs_change),
// prints its size against the fp32 and fp16 weights and how far its reconstruction is from the
// target, and with --out-dir writes each reconstruction as a weights file (fp16: the delta keeps the
// state fp16-representable), to score with `kdedge detect --coco-out` and ../shared/eval/score.py.
// The target here is a published version's fp16 weights; the learner encodes from the round's fp32
// weights, so sizes are close to, not equal to, what it ships.
//   bench_delta --base v4.kdw --target v5.kdw [--fractions 0.2,0.5,1] [--min-abs-change 1e-3]
//               [--out-dir DIR] [--json out.json]
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "model/weights_file.h"
#include "update/delta.h"
#include "update/state.h"

int main(int argc, char** argv) {
  CLI::App app{"bench_delta: bytes and fidelity of the update ladder's deltas between two weights files"};
  std::string base_path, target_path, out_dir, json_path;
  std::vector<double> fractions = {0.2, 0.5, 1.0};
  double min_abs_change = 1e-3;
  app.add_option("--base", base_path, "Weights the device runs")->required();
  app.add_option("--target", target_path, "Weights to ship")->required();
  app.add_option("--fractions", fractions, "Top-k fractions per tensor")->delimiter(',')->capture_default_str();
  app.add_option("--min-abs-change", min_abs_change, "publish.delta_min_abs_change")->capture_default_str();
  app.add_option("--out-dir", out_dir, "Write each reconstruction here as delta_<fraction>.kdw");
  app.add_option("--json", json_path, "Write the results as JSON here");
  CLI11_PARSE(app, argc, argv);

  auto base = kd::model::LoadWeights(base_path);
  auto target = kd::model::LoadWeights(target_path);
  if (!base.ok() || !target.ok()) {
    std::fprintf(stderr, "bench_delta: %s\n", (!base.ok() ? base.status() : target.status()).ToString().c_str());
    return 2;
  }
  const kd::update::TensorMap base_state = kd::update::StateOf(*base->student);
  const kd::update::TensorMap target_state = kd::update::StateOf(*target->student);
  const auto params = kd::update::ParameterNames(*target->student);
  auto f32 = kd::model::EncodeWeights(*target->student, target->meta, kd::model::WeightDtype::kF32);
  auto f16 = kd::model::EncodeWeights(*target->student, target->meta, kd::model::WeightDtype::kF16);
  if (!f32.ok() || !f16.ok()) {
    std::fprintf(stderr, "bench_delta: %s\n", (!f32.ok() ? f32.status() : f16.status()).ToString().c_str());
    return 1;
  }
  std::printf("base %s -> target %s: fp32 %zu B, fp16 %zu B\n", base_path.c_str(), target_path.c_str(), f32->size(),
              f16->size());
  std::printf("%-9s %10s %10s %10s %14s %16s\n", "fraction", "bytes", "/ fp32", "/ fp16", "elements",
              "max |err| param");
  nlohmann::json rows = nlohmann::json::array();
  if (!out_dir.empty()) std::filesystem::create_directories(out_dir);
  for (double f : fractions) {
    kd::update::DeltaOptions o;
    o.min_abs_change = static_cast<float>(min_abs_change);
    o.max_fraction = f;
    auto d = kd::update::EncodeDelta(base_state, target_state, params, o);
    if (!d.ok()) {
      std::fprintf(stderr, "bench_delta: fraction %g: %s\n", f, d.status().ToString().c_str());
      return 1;
    }
    double max_err = 0;
    for (const auto& name : params) {
      max_err = std::max(max_err, (d->reconstructed.at(name) - target_state.at(name)).abs().max().item<double>());
    }
    const double bytes = static_cast<double>(d->bytes.size());
    std::printf("%-9g %10zu %9.1f%% %9.1f%% %14llu %16.2e\n", f, d->bytes.size(), 100 * bytes / f32->size(),
                100 * bytes / f16->size(), static_cast<unsigned long long>(d->stats.elements_shipped), max_err);
    nlohmann::json row = {{"fraction", f},
                          {"bytes", d->bytes.size()},
                          {"of_fp32", bytes / f32->size()},
                          {"of_fp16", bytes / f16->size()},
                          {"elements_shipped", d->stats.elements_shipped},
                          {"elements", d->stats.elements},
                          {"max_abs_error_parameters", max_err}};
    if (!out_dir.empty()) {
      kd::model::Student s(target->student->options());
      if (auto st = kd::update::LoadState(*s, d->reconstructed); !st.ok()) {
        std::fprintf(stderr, "bench_delta: %s\n", st.ToString().c_str());
        return 1;
      }
      char name[64];
      std::snprintf(name, sizeof name, "delta_%g.kdw", f);
      const std::string path = (std::filesystem::path(out_dir) / name).string();
      if (auto st = kd::model::SaveWeights(path, *s, target->meta, kd::model::WeightDtype::kF16); !st.ok()) {
        std::fprintf(stderr, "bench_delta: %s\n", st.ToString().c_str());
        return 1;
      }
      row["weights"] = path;
    }
    rows.push_back(row);
  }
  if (!json_path.empty()) {
    std::ofstream(json_path) << nlohmann::json{{"base", base_path},
                                               {"target", target_path},
                                               {"fp32_bytes", f32->size()},
                                               {"fp16_bytes", f16->size()},
                                               {"min_abs_change", min_abs_change},
                                               {"deltas", rows}}
                                    .dump(2)
                             << "\n";
  }
  return 0;
}
