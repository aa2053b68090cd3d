#include "daemon/kdctl/report.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <utility>

#include "base/file_system.h"
#include "media/chart.h"

namespace kd::kdctl {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// CSV column -> round record key. Column names follow Ultralytics' results.csv (train/, metrics/).
constexpr std::pair<const char*, const char*> kColumns[] = {
    {"round", "round"},
    {"time_unix_s", "time_unix_s"},
    {"frames", "frames"},
    {"steps", "steps"},
    {"train/loss", "loss"},
    {"train/seconds", "seconds"},
    {"metrics/AP(candidate)", "ap_candidate"},
    {"metrics/AP50(candidate)", "ap50_candidate"},
    {"metrics/AP(deployed)", "ap_deployed"},
    {"metrics/AP50(deployed)", "ap50_deployed"},
    {"metrics/AP(full_weights)", "ap_full"},
    {"holdout_frames", "holdout_frames"},
    {"gate", "gate"},
    {"deployed_version", "deployed_version"},
    {"published_version", "published_version"},
    {"uplink_bytes", "uplink_bytes"},
    {"downlink_bytes", "downlink_bytes"},
    {"label_backlog", "label_backlog"},
};

std::string CsvField(const json& v) {
  if (v.is_null()) return "";
  if (v.is_number_float()) {
    // Six significant digits for losses and AP; times (Unix seconds) keep their milliseconds.
    const double d = v.get<double>();
    char buf[48];
    std::snprintf(buf, sizeof buf, std::abs(d) >= 1e6 ? "%.3f" : "%.6g", d);
    return buf;
  }
  if (v.is_number()) return v.dump();
  std::string s = v.is_string() ? v.get<std::string>() : v.dump();
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string quoted = "\"";
  for (char c : s) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + "\"";
}

double Number(const json& r, const char* key) {
  auto it = r.find(key);
  return it != r.end() && it->is_number() ? it->get<double>() : std::numeric_limits<double>::quiet_NaN();
}

Status WritePng(const media::LineChart& chart, const std::string& path, std::vector<std::string>* written) {
  KD_ASSIGN_OR_RETURN(auto png, media::RenderChartPng(chart));
  KD_RETURN_IF_ERROR(WriteFileAtomic(FileSystem::Default(), path, png));
  written->push_back(path);
  return Status::Ok();
}

constexpr media::Rgb kBlue{31, 119, 180}, kOrange{255, 127, 14}, kGreen{44, 160, 44}, kRed{214, 39, 40},
    kGrey{127, 127, 127}, kPurple{148, 103, 189};

}  // namespace

std::string ResultsCsv(const json& rounds) {
  std::string out;
  for (size_t i = 0; i < std::size(kColumns); ++i) {
    if (i) out += ',';
    out += kColumns[i].first;
  }
  out += '\n';
  for (const json& r : rounds) {
    for (size_t i = 0; i < std::size(kColumns); ++i) {
      if (i) out += ',';
      if (auto it = r.find(kColumns[i].second); it != r.end()) out += CsvField(*it);
    }
    out += '\n';
  }
  return out;
}

Result<std::vector<std::string>> WriteRunReport(const json& reply, const std::string& out_dir) {
  if (!reply.is_object() || !reply.contains("groups") || !reply["groups"].is_object()) {
    return Status::Corruption("the learner's rounds reply has no groups object");
  }
  std::vector<std::string> written;
  for (const auto& [group, g] : reply["groups"].items()) {
    const json rounds = g.value("rounds", json::array());
    const json versions = g.value("versions", json::array());
    if (!rounds.is_array() || !versions.is_array()) return Status::Corruption("group " + group + ": malformed");
    const std::string dir = (fs::path(out_dir) / group).string();
    KD_RETURN_IF_ERROR(FileSystem::Default().CreateDirs(dir));
    const std::string csv = (fs::path(dir) / "results.csv").string();
    const std::string text = ResultsCsv(rounds);
    KD_RETURN_IF_ERROR(WriteFileAtomic(FileSystem::Default(), csv,
                                       std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
    written.push_back(csv);

    // Time axis: minutes since the first round (or version) of the group.
    double t0 = std::numeric_limits<double>::infinity();
    for (const json& r : rounds) t0 = std::min(t0, Number(r, "time_unix_s"));
    for (const json& v : versions) t0 = std::min(t0, Number(v, "created_unix_s"));
    if (!std::isfinite(t0)) t0 = 0;
    auto minutes = [t0](double unix_s) { return (unix_s - t0) / 60.0; };

    std::vector<double> t;
    media::ChartSeries ap_c{"AP candidate", {}, {}, kBlue, false}, ap_d{"AP deployed", {}, {}, kOrange, false},
        ap50_c{"AP50 candidate", {}, {}, kBlue, true}, ap50_d{"AP50 deployed", {}, {}, kOrange, true};
    media::ChartSeries up{"uplink kbit/s", {}, {}, kBlue, false}, down{"downlink kbit/s", {}, {}, kGreen, false};
    media::ChartSeries backlog{"label backlog (frames)", {}, {}, kPurple, false};
    double prev_t = std::numeric_limits<double>::quiet_NaN(), prev_up = 0, prev_down = 0;
    for (const json& r : rounds) {
      const double ts = Number(r, "time_unix_s");
      const double m = minutes(ts);
      for (auto [series, key] : {std::pair{&ap_c, "ap_candidate"}, std::pair{&ap_d, "ap_deployed"},
                                 std::pair{&ap50_c, "ap50_candidate"}, std::pair{&ap50_d, "ap50_deployed"}}) {
        const double v = Number(r, key);
        series->x.push_back(m);
        series->y.push_back(v >= 0 ? v : std::numeric_limits<double>::quiet_NaN());  // -1: not measured
      }
      backlog.x.push_back(m);
      backlog.y.push_back(Number(r, "label_backlog"));
      // Traffic between two rounds: the counters are cumulative per learner process; a drop means
      // the learner restarted, and that interval has no rate.
      const double u = Number(r, "uplink_bytes"), d = Number(r, "downlink_bytes");
      if (std::isfinite(prev_t) && ts > prev_t && u >= prev_up && d >= prev_down) {
        up.x.push_back(m), down.x.push_back(m);
        up.y.push_back((u - prev_up) * 8 / 1e3 / (ts - prev_t));
        down.y.push_back((d - prev_down) * 8 / 1e3 / (ts - prev_t));
      }
      prev_t = ts, prev_up = u, prev_down = d;
    }
    std::vector<media::ChartMarker> markers;
    for (const json& v : versions) {
      const double c = Number(v, "created_unix_s");
      const auto ver = v.value("version", uint64_t{0});
      const auto revert_of = v.value("revert_of", uint64_t{0});
      if (!std::isfinite(c)) continue;
      markers.push_back({minutes(c),
                         revert_of ? "v" + std::to_string(ver) + "=v" + std::to_string(revert_of) + " rollback"
                                   : "v" + std::to_string(ver),
                         revert_of ? kRed : kGrey});
    }
    auto chart = [&](std::string title, std::string y_label, std::vector<media::ChartSeries> series) {
      media::LineChart c;
      c.title = "group " + group + ": " + std::move(title);
      c.x_label = "minutes since the first round";
      c.y_label = std::move(y_label);
      c.series = std::move(series);
      c.markers = markers;
      return c;
    };
    media::LineChart accuracy = chart("held-out accuracy per round (the gate decides on AP .50:.95)",
                                      "AP vs refined labels", {ap_c, ap_d, ap50_c, ap50_d});
    accuracy.y_min = 0.0, accuracy.y_max = 1.0;
    KD_RETURN_IF_ERROR(WritePng(accuracy, (fs::path(dir) / "accuracy.png").string(), &written));
    KD_RETURN_IF_ERROR(WritePng(chart("traffic between rounds (all cameras of the group)", "kbit/s", {up, down}),
                                (fs::path(dir) / "traffic.png").string(), &written));
    KD_RETURN_IF_ERROR(WritePng(chart("frames stored but not yet labelled by the teacher", "frames", {backlog}),
                                (fs::path(dir) / "label_backlog.png").string(), &written));
  }
  return written;
}

}  // namespace kd::kdctl
