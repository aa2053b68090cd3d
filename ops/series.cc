#include "ops/series.h"

#include <set>
#include <vector>

#include <nlohmann/json.hpp>

namespace kd::ops {

SeriesRing::SeriesRing(size_t capacity, double interval_s)
    : capacity_(capacity < 1 ? 1 : capacity), interval_s_(interval_s) {}

void SeriesRing::Append(double t_unix_s, const std::map<std::string, double>& gauges,
                        const std::map<std::string, double>& counters) {
  std::lock_guard lock(mu_);
  Point p{t_unix_s, gauges};
  const double dt = last_t_ >= 0 ? t_unix_s - last_t_ : 0;
  for (const auto& [name, value] : counters) {
    auto prev = last_counters_.find(name);
    // The first sample of a counter has no rate; a counter that went down was reset (a restart).
    if (dt > 0 && prev != last_counters_.end() && value >= prev->second) p.values[name] = (value - prev->second) / dt;
  }
  last_counters_ = counters;
  last_t_ = t_unix_s;
  points_.push_back(std::move(p));
  while (points_.size() > capacity_) points_.pop_front();
}

size_t SeriesRing::size() const {
  std::lock_guard lock(mu_);
  return points_.size();
}

std::string SeriesRing::Json() const {
  std::deque<Point> points;
  {
    std::lock_guard lock(mu_);
    points = points_;
  }
  nlohmann::json j;
  j["interval_s"] = interval_s_;
  nlohmann::json t = nlohmann::json::array();
  std::set<std::string> names;
  for (const Point& p : points) {
    t.push_back(p.t);
    for (const auto& [name, v] : p.values) names.insert(name);
  }
  j["t"] = std::move(t);
  for (const std::string& name : names) {
    nlohmann::json values = nlohmann::json::array();
    for (const Point& p : points) {
      auto it = p.values.find(name);
      values.push_back(it == p.values.end() ? nlohmann::json() : nlohmann::json(it->second));
    }
    // "a/b/c" -> j["a"]["b"]["c"]; a JSON pointer escapes '~' and '/' inside a part, not needed here
    // (device ids and metric names use [A-Za-z0-9._-]).
    j[nlohmann::json::json_pointer("/" + name)] = std::move(values);
  }
  return j.dump();
}

}  // namespace kd::ops
