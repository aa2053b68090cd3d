#include "config/distill_options.h"

#include <cstdint>
#include <fstream>
#include <set>
#include <sstream>

#include <toml++/toml.h>

namespace kd::config {
namespace {

// Reads one typed key from a table, recording it as known; wrong types are errors.
class TableReader {
 public:
  TableReader(const toml::table& t, std::string prefix) : table_(t), prefix_(std::move(prefix)) {}

  template <typename T>
  Status Get(const char* key, T* out) {
    known_.insert(key);
    const toml::node* n = table_.get(key);
    if (!n) return Status::Ok();
    if constexpr (std::is_same_v<T, bool>) {
      if (auto v = n->value_exact<bool>()) {
        *out = *v;
        return Status::Ok();
      }
    } else if constexpr (std::is_integral_v<T>) {
      if (auto v = n->value_exact<int64_t>()) {
        *out = static_cast<T>(*v);
        return Status::Ok();
      }
    } else if constexpr (std::is_floating_point_v<T>) {
      if (auto v = n->value<double>()) {
        *out = *v;
        return Status::Ok();
      }
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (auto v = n->value_exact<std::string>()) {
        *out = *v;
        return Status::Ok();
      }
    } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
      if (const auto* arr = n->as_array()) {
        out->clear();
        for (const auto& e : *arr) {
          auto s = e.value<std::string>();
          if (!s) return Status::InvalidArgument(prefix_ + key + ": expected an array of strings");
          out->push_back(*s);
        }
        return Status::Ok();
      }
    } else if constexpr (std::is_same_v<T, std::vector<int>>) {
      if (const auto* arr = n->as_array()) {
        out->clear();
        for (const auto& e : *arr) {
          auto v = e.value_exact<int64_t>();
          if (!v || *v < INT32_MIN || *v > INT32_MAX) {
            return Status::InvalidArgument(prefix_ + key + ": expected an array of integers");
          }
          out->push_back(static_cast<int>(*v));
        }
        return Status::Ok();
      }
    }
    return Status::InvalidArgument(prefix_ + key + ": wrong type");
  }

  Status CheckUnknown(const std::set<std::string>& subtables = {}) const {
    for (const auto& [k, _] : table_) {
      const std::string key(k.str());
      if (!known_.contains(key) && !subtables.contains(key))
        return Status::InvalidArgument("unknown config key '" + prefix_ + key + "'");
    }
    return Status::Ok();
  }

 private:
  const toml::table& table_;
  std::string prefix_;
  std::set<std::string> known_;
};

}  // namespace

Status DistillOptions::Validate() const {
  auto range = [](bool ok, const char* what) { return ok ? Status::Ok() : Status::InvalidArgument(what); };
  KD_RETURN_IF_ERROR(range(student.width >= 8 && student.width <= 64, "student.width must be in 8..64"));
  KD_RETURN_IF_ERROR(
      range(student.head_channels >= 8 && student.head_channels <= 256, "student.head_channels must be in 8..256"));
  KD_RETURN_IF_ERROR(range(!student.classes.empty(), "student.classes must not be empty"));
  KD_RETURN_IF_ERROR(
      range(student.input_long_side >= 64 && student.input_long_side <= 2048 && student.input_long_side % 32 == 0,
            "student.input_long_side must be a multiple of 32 in 64..2048"));
  KD_RETURN_IF_ERROR(range(teacher_long_side >= 64 && teacher_long_side <= 2048 && teacher_long_side % 32 == 0,
                           "teacher_long_side must be a multiple of 32 in 64..2048"));
  KD_RETURN_IF_ERROR(range(iterations >= 1, "iterations must be >= 1"));
  KD_RETURN_IF_ERROR(range(batch_size >= 1 && batch_size <= 256, "batch_size must be in 1..256"));
  KD_RETURN_IF_ERROR(range(lr > 0 && lr < 1, "lr must be in (0,1)"));
  KD_RETURN_IF_ERROR(range(weight_decay >= 0, "weight_decay must be >= 0"));
  KD_RETURN_IF_ERROR(range(warmup >= 0, "warmup must be >= 0"));
  KD_RETURN_IF_ERROR(range(continual_lr_scale > 0 && continual_lr_scale <= 1, "continual_lr_scale must be in (0,1]"));
  KD_RETURN_IF_ERROR(
      range(continual_ema_decay >= 0 && continual_ema_decay < 1, "continual_ema_decay must be in [0,1)"));
  KD_RETURN_IF_ERROR(range(grad_clip > 0, "grad_clip must be > 0"));
  KD_RETURN_IF_ERROR(range(pseudo_threshold > 0 && pseudo_threshold < 1, "pseudo_threshold must be in (0,1)"));
  KD_RETURN_IF_ERROR(range(ignore_threshold >= 0 && ignore_threshold <= pseudo_threshold,
                           "ignore_threshold must be in [0, pseudo_threshold]"));
  KD_RETURN_IF_ERROR(range(cakd_alpha >= 0 && cakd_beta >= 0, "cakd_alpha and cakd_beta must be >= 0"));
  KD_RETURN_IF_ERROR(range(!cakd || crosskd, "cakd assigns on cross-head predictions: it needs crosskd = true"));
  KD_RETURN_IF_ERROR(
      range(crosskd_tap == "tower" || crosskd_tap == "neck", "crosskd_tap must be \"tower\" or \"neck\""));
  KD_RETURN_IF_ERROR(range(cakd_topk >= 1 && cakd_topk <= 64, "cakd_topk must be in 1..64"));
  KD_RETURN_IF_ERROR(range(cakd_stride == 4 || cakd_stride == 8, "cakd_stride must be 4 or 8"));
  KD_RETURN_IF_ERROR(
      range(pseudo_labels || mimic || crosskd, "at least one of pseudo_labels, mimic, crosskd must be on"));
  for (int side : refine.extra_long_sides) {
    KD_RETURN_IF_ERROR(range(side >= 64 && side <= 2048 && side % 32 == 0,
                             "refine.extra_long_sides must be multiples of 32 in 64..2048"));
  }
  KD_RETURN_IF_ERROR(range(refine.extra_long_sides.size() <= 8, "refine.extra_long_sides: at most 8 sizes"));
  KD_RETURN_IF_ERROR(range(refine.wbf_iou > 0 && refine.wbf_iou < 1, "refine.wbf_iou must be in (0,1)"));
  KD_RETURN_IF_ERROR(
      range(refine.smooth_radius >= 0 && refine.smooth_radius <= 16, "refine.smooth_radius must be in 0..16"));
  KD_RETURN_IF_ERROR(range(refine.track_iou > 0 && refine.track_iou < 1, "refine.track_iou must be in (0,1)"));
  KD_RETURN_IF_ERROR(
      range(refine.track_min_score >= 0 && refine.track_min_score < 1, "refine.track_min_score must be in [0,1)"));
  KD_RETURN_IF_ERROR(
      range(refine.min_track_length >= 1 && refine.min_track_length <= 64, "refine.min_track_length must be in 1..64"));
  KD_RETURN_IF_ERROR(
      range(refine.max_gap_ms >= 1 && refine.max_gap_ms <= 10000, "refine.max_gap_ms must be in 1..10000"));
  return Status::Ok();
}

Result<DistillOptions> ParseDistillOptions(const std::string& toml_text, DistillOptions defaults) {
  DistillOptions o = std::move(defaults);
  toml::table root;
  try {
    root = toml::parse(toml_text);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "TOML parse error at line " << e.source().begin.line << ": " << e.description();
    return Status::InvalidArgument(msg.str());
  }
  TableReader r(root, "");
  KD_RETURN_IF_ERROR(r.Get("teacher_long_side", &o.teacher_long_side));
  KD_RETURN_IF_ERROR(r.Get("iterations", &o.iterations));
  KD_RETURN_IF_ERROR(r.Get("batch_size", &o.batch_size));
  KD_RETURN_IF_ERROR(r.Get("lr", &o.lr));
  KD_RETURN_IF_ERROR(r.Get("weight_decay", &o.weight_decay));
  KD_RETURN_IF_ERROR(r.Get("warmup", &o.warmup));
  KD_RETURN_IF_ERROR(r.Get("continual_lr_scale", &o.continual_lr_scale));
  KD_RETURN_IF_ERROR(r.Get("continual_ema_decay", &o.continual_ema_decay));
  KD_RETURN_IF_ERROR(r.Get("grad_clip", &o.grad_clip));
  KD_RETURN_IF_ERROR(r.Get("hflip", &o.hflip));
  KD_RETURN_IF_ERROR(r.Get("seed", &o.seed));
  KD_RETURN_IF_ERROR(r.Get("pseudo_labels", &o.pseudo_labels));
  KD_RETURN_IF_ERROR(r.Get("pseudo_threshold", &o.pseudo_threshold));
  KD_RETURN_IF_ERROR(r.Get("ignore_threshold", &o.ignore_threshold));
  KD_RETURN_IF_ERROR(r.Get("mimic", &o.mimic));
  KD_RETURN_IF_ERROR(r.Get("crosskd", &o.crosskd));
  KD_RETURN_IF_ERROR(r.Get("crosskd_teacher_scale", &o.crosskd_teacher_scale));
  KD_RETURN_IF_ERROR(r.Get("cakd", &o.cakd));
  KD_RETURN_IF_ERROR(r.Get("cakd_alpha", &o.cakd_alpha));
  KD_RETURN_IF_ERROR(r.Get("cakd_beta", &o.cakd_beta));
  KD_RETURN_IF_ERROR(r.Get("crosskd_tap", &o.crosskd_tap));
  KD_RETURN_IF_ERROR(r.Get("cakd_consistent", &o.cakd_consistent));
  KD_RETURN_IF_ERROR(r.Get("cakd_topk", &o.cakd_topk));
  KD_RETURN_IF_ERROR(r.Get("cakd_iou_targets", &o.cakd_iou_targets));
  KD_RETURN_IF_ERROR(r.Get("cakd_stride", &o.cakd_stride));
  KD_RETURN_IF_ERROR(r.Get("lad", &o.lad));
  KD_RETURN_IF_ERROR(r.Get("adaptive", &o.adaptive));
  KD_RETURN_IF_ERROR(r.Get("adaptive_lambda", &o.adaptive_lambda));
  KD_RETURN_IF_ERROR(r.Get("w_det_cls", &o.w_det_cls));
  KD_RETURN_IF_ERROR(r.Get("w_det_box", &o.w_det_box));
  KD_RETURN_IF_ERROR(r.Get("w_kd_cls", &o.w_kd_cls));
  KD_RETURN_IF_ERROR(r.Get("w_kd_box", &o.w_kd_box));
  KD_RETURN_IF_ERROR(r.Get("w_o2o", &o.w_o2o));
  if (const toml::node* s = root.get("student")) {
    const toml::table* st = s->as_table();
    if (!st) return Status::InvalidArgument("student: expected a table");
    TableReader sr(*st, "student.");
    KD_RETURN_IF_ERROR(sr.Get("width", &o.student.width));
    KD_RETURN_IF_ERROR(sr.Get("head_channels", &o.student.head_channels));
    KD_RETURN_IF_ERROR(sr.Get("classes", &o.student.classes));
    KD_RETURN_IF_ERROR(sr.Get("input_long_side", &o.student.input_long_side));
    KD_RETURN_IF_ERROR(sr.CheckUnknown());
  }
  if (const toml::node* s = root.get("refine")) {
    const toml::table* rt = s->as_table();
    if (!rt) return Status::InvalidArgument("refine: expected a table");
    TableReader rr(*rt, "refine.");
    KD_RETURN_IF_ERROR(rr.Get("enabled", &o.refine.enabled));
    KD_RETURN_IF_ERROR(rr.Get("extra_long_sides", &o.refine.extra_long_sides));
    KD_RETURN_IF_ERROR(rr.Get("wbf_iou", &o.refine.wbf_iou));
    KD_RETURN_IF_ERROR(rr.Get("smooth", &o.refine.smooth));
    KD_RETURN_IF_ERROR(rr.Get("smooth_radius", &o.refine.smooth_radius));
    KD_RETURN_IF_ERROR(rr.Get("track_iou", &o.refine.track_iou));
    KD_RETURN_IF_ERROR(rr.Get("track_min_score", &o.refine.track_min_score));
    KD_RETURN_IF_ERROR(rr.Get("min_track_length", &o.refine.min_track_length));
    KD_RETURN_IF_ERROR(rr.Get("max_gap_ms", &o.refine.max_gap_ms));
    KD_RETURN_IF_ERROR(rr.CheckUnknown());
  }
  KD_RETURN_IF_ERROR(r.CheckUnknown({"student", "refine"}));
  KD_RETURN_IF_ERROR(o.Validate());
  return o;
}

Result<DistillOptions> LoadDistillOptions(const std::string& path, DistillOptions defaults) {
  std::ifstream f(path);
  if (!f) return Status::NotFound("cannot open config '" + path + "'");
  std::stringstream ss;
  ss << f.rdbuf();
  auto r = ParseDistillOptions(ss.str(), std::move(defaults));
  if (!r.ok()) return r.status().WithContext(path);
  return r;
}

Result<DistillOptions> AblationArm(char arm, DistillOptions base) {
  DistillOptions o = std::move(base);
  o.pseudo_labels = true;
  o.mimic = o.crosskd = o.cakd = o.adaptive = o.lad = false;
  // c, f, g, h set the CrossKD tap and scale themselves; d and e take the base's.
  switch (arm) {
    case 'a':
      break;
    case 'b':
      o.mimic = true;
      break;
    case 'c':
      o.crosskd = true;
      o.crosskd_tap = "tower";
      o.crosskd_teacher_scale = false;
      break;
    case 'd':
      o.crosskd = o.cakd = true;
      o.cakd_stride = 4;
      break;
    case 'e':
      o.crosskd = o.cakd = o.adaptive = true;
      o.cakd_stride = 4;
      break;
    case 'f':
      o.crosskd = true;
      o.crosskd_tap = "neck";
      o.crosskd_teacher_scale = false;
      break;
    case 'g':
      o.crosskd = o.crosskd_teacher_scale = true;
      o.crosskd_tap = "tower";
      break;
    case 'h':
      o.crosskd = o.crosskd_teacher_scale = true;
      o.crosskd_tap = "neck";
      break;
    case 'i':  // d with the one-to-one branch at stride 8
      o.crosskd = o.cakd = true;
      o.cakd_stride = 8;
      break;
    case 'j':  // i (the shipped recipe's losses) + adaptive hard samples: e on the winner
      o.crosskd = o.cakd = o.adaptive = true;
      o.cakd_stride = 8;
      break;
    default:
      return Status::InvalidArgument(std::string("unknown ablation arm '") + arm + "' (a..j)");
  }
  return o;
}

}  // namespace kd::config
