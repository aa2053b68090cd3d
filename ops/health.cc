#include "ops/health.h"

#include <algorithm>
#include <cstdio>

namespace kd::ops {

bool HealthReport::ok() const {
  return std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.ok; });
}

HealthReport& HealthReport::Add(std::string name, bool ok, std::string detail) {
  checks.push_back({std::move(name), ok, std::move(detail)});
  return *this;
}

std::string HealthReport::Text(bool verbose) const {
  std::string out;
  if (verbose) {
    for (const Check& c : checks) {
      out += (c.ok ? "[+]" : "[-]") + c.name + (c.ok ? " ok" : " failed");
      if (!c.detail.empty()) out += ": " + c.detail;
      out += "\n";
    }
  }
  out += ok() ? "ok\n" : "failed\n";
  return out;
}

namespace {
int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void Heartbeat::Beat() { last_ns_.store(SteadyNanos(), std::memory_order_relaxed); }

Check Heartbeat::Fresh(const std::string& name, double max_age_s) const {
  const int64_t last = last_ns();
  if (last < 0) return {name, false, "has not started"};
  const double age_s = static_cast<double>(SteadyNanos() - last) * 1e-9;
  char buf[96];
  std::snprintf(buf, sizeof buf, "last beat %.1f s ago (limit %.0f s)", age_s, max_age_s);
  return {name, age_s <= max_age_s, buf};
}

}  // namespace kd::ops
