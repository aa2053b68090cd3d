// SeriesRing: the recent history of a daemon's numbers for the dashboard's charts (/api/v1/series):
// one sample every `interval_s` seconds, the newest `capacity` kept. Gauges are stored as given;
// counters become per-second rates since the previous sample. Names are paths ("learner/ingest_fps",
// "cameras/cam-1/uplink_kbps") that the JSON nests: {"interval_s", "t": [...], "learner": {...},
// "cameras": {"cam-1": {...}}}, every array as long as "t", null where a series has no value.
//
// Threading: thread-safe (one mutex; Append and Json copy small maps only).
#ifndef KD_OPS_SERIES_H_
#define KD_OPS_SERIES_H_

#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <string>

namespace kd::ops {

class SeriesRing {
 public:
  // Default: 720 samples of 5 s, an hour.
  explicit SeriesRing(size_t capacity = 720, double interval_s = 5);

  // One sample at `t_unix_s` (seconds since the Unix epoch, increasing).
  void Append(double t_unix_s, const std::map<std::string, double>& gauges,
              const std::map<std::string, double>& counters);
  std::string Json() const;
  size_t size() const;
  double interval_s() const { return interval_s_; }

 private:
  struct Point {
    double t = 0;
    std::map<std::string, double> values;
  };
  const size_t capacity_;
  const double interval_s_;
  mutable std::mutex mu_;
  std::deque<Point> points_;
  double last_t_ = -1;
  std::map<std::string, double> last_counters_;
};

}  // namespace kd::ops

#endif  // KD_OPS_SERIES_H_
