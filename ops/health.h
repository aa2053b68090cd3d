// Health: the answers of /livez and /readyz (Kubernetes semantics, docs/OPERATIONS.md). A report
// is a list of named checks; the HTTP status is 200 when all pass and 503 otherwise (machines read
// only the code); `?verbose` lists them as `[+]name ok` / `[-]name failed: detail` for people.
// Liveness must never depend on a model loading or on the network; readiness says whether the
// daemon does its job now.
#ifndef KD_OPS_HEALTH_H_
#define KD_OPS_HEALTH_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace kd::ops {

struct Check {
  std::string name;
  bool ok = true;
  std::string detail;  // why it failed (or a fact worth showing when it passed)
};

struct HealthReport {
  std::vector<Check> checks;

  bool ok() const;
  HealthReport& Add(std::string name, bool ok, std::string detail = "");
  // "ok\n" / "failed\n"; verbose: one line per check, then the verdict.
  std::string Text(bool verbose) const;
};

// A loop's last sign of life on the steady clock (real time: liveness is about the real process,
// whatever clock the engine's logic runs on). Beat() from the loop, Fresh() from anywhere.
// Lock-free.
class Heartbeat {
 public:
  void Beat();
  // -1 before the first beat.
  int64_t last_ns() const { return last_ns_.load(std::memory_order_relaxed); }
  // A check named `name` that fails when the loop has not beaten within `max_age_s` seconds.
  Check Fresh(const std::string& name, double max_age_s) const;

 private:
  std::atomic<int64_t> last_ns_{-1};
};

}  // namespace kd::ops

#endif  // KD_OPS_HEALTH_H_
