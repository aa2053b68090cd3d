#include "eval/coco_json.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <system_error>
#include <unistd.h>
#include <utility>

#include <nlohmann/json.hpp>

namespace kd::eval {
namespace {

using Json = nlohmann::json;

// The double nearest to the shortest decimal that reads back as f: the file says "0.1", not
// "0.10000000149011612", and reading it back as a float gives f again.
double ShortDouble(float f) {
  std::array<char, 64> buf{};
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), f);
  double d = f;
  if (ec == std::errc()) std::from_chars(buf.data(), end, d);
  return d;
}

bool IsFinite(const Box& b) {
  return std::isfinite(b.x1) && std::isfinite(b.y1) && std::isfinite(b.x2) && std::isfinite(b.y2);
}

// [x, y, w, h]; x + w reads back as x2.
Json BboxJson(const Box& b, double* area) {
  const double x = ShortDouble(b.x1);
  const double y = ShortDouble(b.y1);
  const double w = std::max(0.0, ShortDouble(b.x2) - x);
  const double h = std::max(0.0, ShortDouble(b.y2) - y);
  if (area != nullptr) *area = w * h;
  return Json::array({x, y, w, h});
}

std::string ErrnoMessage(int err) { return std::error_code(err, std::generic_category()).message(); }

// Writes contents to path + ".tmp", syncs it, then renames it over path.
Status WriteFileAtomically(const std::string& path, const std::string& contents) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return Status::IOError("cannot open " + tmp + " for writing: " + ErrnoMessage(errno));
  int err = 0;
  if (std::fwrite(contents.data(), 1, contents.size(), f) != contents.size()) err = errno;
  if (err == 0 && std::fflush(f) != 0) err = errno;
  if (err == 0 && ::fsync(fileno(f)) != 0) err = errno;
  if (std::fclose(f) != 0 && err == 0) err = errno;
  if (err != 0) {
    std::remove(tmp.c_str());
    return Status::IOError("cannot write " + tmp + ": " + ErrnoMessage(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    return Status::IOError("cannot rename " + tmp + " to " + path + ": " + ErrnoMessage(err));
  }
  return Status::Ok();
}

Status ReadJsonFile(const std::string& path, Json* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return Status::NotFound("no such file: " + path);
    return Status::IOError("cannot open " + path);
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::IOError("cannot read " + path);
  try {
    *out = Json::parse(text.str());
  } catch (const Json::parse_error& e) {
    return Status::Corruption(path + ": malformed JSON: " + e.what());
  }
  return Status::Ok();
}

// Contiguous label of an official COCO category id; -1 when it is not one of the 80.
int LabelOfCategoryId(int64_t id) {
  static const std::array<int, 91> kLabels = [] {
    std::array<int, 91> t{};
    t.fill(-1);
    for (int label = 0; label < kCocoNumClasses; ++label) t[static_cast<size_t>(CocoCategoryId(label))] = label;
    return t;
  }();
  return id >= 0 && id < static_cast<int64_t>(kLabels.size()) ? kLabels[static_cast<size_t>(id)] : -1;
}

// Field readers for one JSON object; `where` names it in error messages ("results.json: result 3").
class ObjectReader {
 public:
  ObjectReader(const Json& obj, std::string where) : obj_(obj), where_(std::move(where)) {}

  Status CheckObject() const { return obj_.is_object() ? Status::Ok() : Error("is not a JSON object"); }

  Status Int(const char* key, int64_t* out) const {
    const auto it = obj_.find(key);
    if (it == obj_.end()) return Error(std::string("has no \"") + key + "\"");
    if (it->is_number_unsigned()) {
      const uint64_t v = it->get<uint64_t>();
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return Error(Field(key) + " is too large");
      *out = static_cast<int64_t>(v);
      return Status::Ok();
    }
    if (!it->is_number_integer()) return Error(Field(key) + " is not an integer");
    *out = it->get<int64_t>();
    return Status::Ok();
  }

  Status Number(const char* key, double* out) const {
    const auto it = obj_.find(key);
    if (it == obj_.end()) return Error(std::string("has no \"") + key + "\"");
    if (!it->is_number()) return Error(Field(key) + " is not a number");
    *out = it->get<double>();
    if (!std::isfinite(*out)) return Error(Field(key) + " is not finite");
    return Status::Ok();
  }

  // "category_id" mapped to a contiguous label.
  Status Label(int* out) const {
    int64_t id = 0;
    KD_RETURN_IF_ERROR(Int("category_id", &id));
    *out = LabelOfCategoryId(id);
    if (*out < 0) return Error("unknown COCO category id " + std::to_string(id) + " (not one of the 80 COCO ids)");
    return Status::Ok();
  }

  // "bbox": [x, y, w, h] with w, h >= 0, as x1 y1 x2 y2.
  Status Bbox(Box* out) const {
    const auto it = obj_.find("bbox");
    if (it == obj_.end()) return Error("has no \"bbox\"");
    if (!it->is_array() || it->size() != 4) return Error("\"bbox\" is not an array of 4 numbers");
    std::array<double, 4> v{};
    for (size_t i = 0; i < 4; ++i) {
      const Json& e = (*it)[i];
      if (!e.is_number()) return Error("\"bbox\" is not an array of 4 numbers");
      v[i] = e.get<double>();
      if (!std::isfinite(v[i])) return Error("\"bbox\" has a value that is not finite");
    }
    if (v[2] < 0 || v[3] < 0) return Error("\"bbox\" has a negative width or height");
    *out = Box{static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[0] + v[2]),
               static_cast<float>(v[1] + v[3])};
    return Status::Ok();
  }

  // Optional "iscrowd": 0/1 or false/true; absent means 0.
  Status Crowd(bool* out) const {
    *out = false;
    const auto it = obj_.find("iscrowd");
    if (it == obj_.end()) return Status::Ok();
    if (it->is_boolean()) {
      *out = it->get<bool>();
    } else if (it->is_number_integer()) {
      *out = it->get<int64_t>() != 0;
    } else {
      return Error("\"iscrowd\" is not 0, 1, false or true");
    }
    return Status::Ok();
  }

 private:
  static std::string Field(const char* key) { return std::string("\"") + key + "\""; }
  Status Error(const std::string& what) const { return Status::Corruption(where_ + " " + what); }

  const Json& obj_;
  std::string where_;
};

Status CheckLabels(const std::vector<int>& labels) {
  if (labels.empty()) return Status::InvalidArgument("no labels to include");
  for (int label : labels) {
    if (label < 0 || label >= kCocoNumClasses) {
      return Status::InvalidArgument("label " + std::to_string(label) + " is not in [0, " +
                                     std::to_string(kCocoNumClasses) + ")");
    }
  }
  return Status::Ok();
}

std::string FileName(int64_t frame_index) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "frame_%06" PRId64 ".jpg", frame_index);
  return buf;
}

Result<std::vector<FrameDetections>> ParseResults(const Json& root, const std::string& path) {
  if (!root.is_array()) return Status::Corruption(path + ": a results file is a JSON array of detections");
  std::map<int64_t, FrameDetections> frames;
  for (size_t i = 0; i < root.size(); ++i) {
    const ObjectReader r(root[i], path + ": result " + std::to_string(i));
    KD_RETURN_IF_ERROR(r.CheckObject());
    int64_t image_id = 0;
    double score = 0;
    Detection d;
    KD_RETURN_IF_ERROR(r.Int("image_id", &image_id));
    KD_RETURN_IF_ERROR(r.Label(&d.label));
    KD_RETURN_IF_ERROR(r.Bbox(&d.box));
    KD_RETURN_IF_ERROR(r.Number("score", &score));
    d.score = static_cast<float>(score);
    FrameDetections& f = frames[image_id];
    f.frame_index = image_id;
    f.detections.push_back(d);
  }
  std::vector<FrameDetections> out;
  out.reserve(frames.size());
  for (auto& [id, f] : frames) out.push_back(std::move(f));
  return out;
}

Result<std::vector<GroundTruthFrame>> ParseGroundTruth(const Json& root, const std::string& path) {
  if (!root.is_object()) return Status::Corruption(path + ": a ground-truth file is a JSON object");
  const auto images = root.find("images");
  if (images == root.end() || !images->is_array()) {
    return Status::Corruption(path + ": has no \"images\" array");
  }
  std::map<int64_t, GroundTruthFrame> frames;
  for (size_t i = 0; i < images->size(); ++i) {
    const ObjectReader r((*images)[i], path + ": image " + std::to_string(i));
    KD_RETURN_IF_ERROR(r.CheckObject());
    int64_t id = 0;
    KD_RETURN_IF_ERROR(r.Int("id", &id));
    GroundTruthFrame f;
    f.frame_index = id;
    if (!frames.emplace(id, std::move(f)).second) {
      return Status::Corruption(path + ": image id " + std::to_string(id) + " appears twice");
    }
  }
  const auto annotations = root.find("annotations");
  if (annotations != root.end()) {
    if (!annotations->is_array()) return Status::Corruption(path + ": \"annotations\" is not an array");
    for (size_t i = 0; i < annotations->size(); ++i) {
      const std::string where = path + ": annotation " + std::to_string(i);
      const ObjectReader r((*annotations)[i], where);
      KD_RETURN_IF_ERROR(r.CheckObject());
      int64_t image_id = 0;
      GroundTruthBox g;
      KD_RETURN_IF_ERROR(r.Int("image_id", &image_id));
      KD_RETURN_IF_ERROR(r.Label(&g.label));
      KD_RETURN_IF_ERROR(r.Bbox(&g.box));
      KD_RETURN_IF_ERROR(r.Crowd(&g.iscrowd));
      const auto it = frames.find(image_id);
      if (it == frames.end()) {
        return Status::Corruption(where + " is on image " + std::to_string(image_id) + ", which is not in \"images\"");
      }
      it->second.boxes.push_back(g);
    }
  }
  std::vector<GroundTruthFrame> out;
  out.reserve(frames.size());
  for (auto& [id, f] : frames) out.push_back(std::move(f));
  return out;
}

// Runs a reader, turning any exception from the JSON library (or an allocation) into a Status.
template <typename T, typename Fn>
Result<T> Guarded(const std::string& path, Fn fn) {
  try {
    return fn();
  } catch (const Json::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  } catch (const std::exception& e) {
    return Status::Internal(path + ": " + e.what());
  }
}

Status GuardedStatus(const std::string& path, const std::function<Status()>& fn) {
  try {
    return fn();
  } catch (const std::exception& e) {
    return Status::Internal(path + ": " + e.what());
  }
}

}  // namespace

Status WriteCocoResults(const std::string& path, const std::vector<FrameDetections>& frames) {
  return GuardedStatus(path, [&]() -> Status {
    Json results = Json::array();
    for (const FrameDetections& f : frames) {
      for (const Detection& d : f.detections) {
        if (d.label < 0 || d.label >= kCocoNumClasses) {
          return Status::InvalidArgument("WriteCocoResults: label " + std::to_string(d.label) + " in frame " +
                                         std::to_string(f.frame_index) + " is not a COCO-80 label");
        }
        if (!IsFinite(d.box) || !std::isfinite(d.score)) {
          return Status::InvalidArgument("WriteCocoResults: non-finite box or score in frame " +
                                         std::to_string(f.frame_index));
        }
        results.push_back({{"image_id", f.frame_index},
                           {"category_id", CocoCategoryId(d.label)},
                           {"bbox", BboxJson(d.box, nullptr)},
                           {"score", ShortDouble(d.score)}});
      }
    }
    return WriteFileAtomically(path, results.dump());
  });
}

Status WriteCocoGroundTruth(const std::string& path, const std::vector<FrameDetections>& frames, int image_width,
                            int image_height, const std::vector<int>& labels_to_include) {
  KD_RETURN_IF_ERROR(CheckLabels(labels_to_include).WithContext("WriteCocoGroundTruth"));
  if (image_width <= 0 || image_height <= 0) {
    return Status::InvalidArgument("WriteCocoGroundTruth: image size " + std::to_string(image_width) + "x" +
                                   std::to_string(image_height) + " is not positive");
  }
  std::vector<int> labels = labels_to_include;
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  std::array<bool, kCocoNumClasses> included{};
  for (int label : labels) included[static_cast<size_t>(label)] = true;

  return GuardedStatus(path, [&]() -> Status {
    Json images = Json::array();
    Json annotations = Json::array();
    std::map<int64_t, bool> seen;
    int64_t next_id = 1;
    for (const FrameDetections& f : frames) {
      if (!seen.emplace(f.frame_index, true).second) {
        return Status::InvalidArgument("WriteCocoGroundTruth: frame " + std::to_string(f.frame_index) +
                                       " appears twice");
      }
      images.push_back({{"id", f.frame_index},
                        {"width", image_width},
                        {"height", image_height},
                        {"file_name", FileName(f.frame_index)}});
      for (const Detection& d : f.detections) {
        if (d.label < 0 || d.label >= kCocoNumClasses || !included[static_cast<size_t>(d.label)]) continue;
        if (!IsFinite(d.box)) {
          return Status::InvalidArgument("WriteCocoGroundTruth: non-finite box in frame " +
                                         std::to_string(f.frame_index));
        }
        double area = 0;
        Json bbox = BboxJson(d.box, &area);
        annotations.push_back({{"id", next_id++},
                               {"image_id", f.frame_index},
                               {"category_id", CocoCategoryId(d.label)},
                               {"bbox", std::move(bbox)},
                               {"area", area},
                               {"iscrowd", 0}});
      }
    }
    Json categories = Json::array();
    for (int label : labels) {
      categories.push_back({{"id", CocoCategoryId(label)}, {"name", std::string(CocoClassName(label))}});
    }
    const Json root = {
        {"images", std::move(images)}, {"annotations", std::move(annotations)}, {"categories", std::move(categories)}};
    return WriteFileAtomically(path, root.dump());
  });
}

Result<std::vector<FrameDetections>> ReadCocoResults(const std::string& path) {
  return Guarded<std::vector<FrameDetections>>(path, [&]() -> Result<std::vector<FrameDetections>> {
    Json root;
    KD_RETURN_IF_ERROR(ReadJsonFile(path, &root));
    return ParseResults(root, path);
  });
}

Result<std::vector<GroundTruthFrame>> ReadCocoGroundTruthWithCrowd(const std::string& path) {
  return Guarded<std::vector<GroundTruthFrame>>(path, [&]() -> Result<std::vector<GroundTruthFrame>> {
    Json root;
    KD_RETURN_IF_ERROR(ReadJsonFile(path, &root));
    return ParseGroundTruth(root, path);
  });
}

Result<std::vector<FrameDetections>> ReadCocoGroundTruth(const std::string& path) {
  KD_ASSIGN_OR_RETURN(std::vector<GroundTruthFrame> gt, ReadCocoGroundTruthWithCrowd(path));
  std::vector<FrameDetections> out;
  out.reserve(gt.size());
  for (const GroundTruthFrame& g : gt) {
    FrameDetections f;
    f.frame_index = g.frame_index;
    for (const GroundTruthBox& b : g.boxes) {
      if (!b.iscrowd) f.detections.push_back(Detection{b.box, 1.f, b.label});
    }
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace kd::eval
