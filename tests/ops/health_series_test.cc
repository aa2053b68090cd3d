#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ops/health.h"
#include "ops/series.h"

namespace kd::ops {
namespace {
using json = nlohmann::json;

TEST(HealthTest, AReportPassesWhenEveryCheckPasses) {
  HealthReport r;
  EXPECT_TRUE(r.ok());  // nothing to fail
  r.Add("store", true, "open").Add("teacher", true);
  EXPECT_TRUE(r.ok());
  EXPECT_EQ(r.Text(false), "ok\n");
  EXPECT_EQ(r.Text(true), "[+]store ok: open\n[+]teacher ok\nok\n");
  r.Add("sockets", false, "not bound");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.Text(false), "failed\n");
  EXPECT_EQ(r.Text(true), "[+]store ok: open\n[+]teacher ok\n[-]sockets failed: not bound\nfailed\n");
}

TEST(HealthTest, AHeartbeatIsFreshOnlyAfterABeatAndWithinItsLimit) {
  Heartbeat beat;
  EXPECT_FALSE(beat.Fresh("loop", 10).ok);
  EXPECT_EQ(beat.Fresh("loop", 10).detail, "has not started");
  beat.Beat();
  EXPECT_TRUE(beat.Fresh("loop", 10).ok);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  const Check stale = beat.Fresh("loop", 0.01);
  EXPECT_FALSE(stale.ok);
  EXPECT_EQ(stale.name, "loop");
  EXPECT_NE(stale.detail.find("last beat"), std::string::npos) << stale.detail;
}

TEST(SeriesTest, GaugesAreKeptCountersBecomeRatesAndPathsNest) {
  SeriesRing ring(10, 5);
  ring.Append(100, {{"learner/backlog", 3}}, {{"learner/ingest_fps", 1000}, {"cameras/cam-1/uplink_bits", 0}});
  ring.Append(105, {{"learner/backlog", 4}}, {{"learner/ingest_fps", 1050}, {"cameras/cam-1/uplink_bits", 50000}});
  const json j = json::parse(ring.Json());
  EXPECT_EQ(j.at("interval_s"), 5.0);
  EXPECT_EQ(j.at("t"), json::array({100.0, 105.0}));
  EXPECT_EQ(j.at("learner").at("backlog"), json::array({3.0, 4.0}));
  // The first sample of a counter has no rate yet: null.
  EXPECT_TRUE(j.at("learner").at("ingest_fps")[0].is_null());
  EXPECT_DOUBLE_EQ(j.at("learner").at("ingest_fps")[1].get<double>(), 10.0);
  EXPECT_DOUBLE_EQ(j.at("cameras").at("cam-1").at("uplink_bits")[1].get<double>(), 10000.0);
}

TEST(SeriesTest, ACounterThatWentDownHasNoRateAndOldPointsAreDropped) {
  SeriesRing ring(3, 1);
  ring.Append(1, {}, {{"c", 10}});
  ring.Append(2, {}, {{"c", 5}});  // a restart: no negative rate
  ring.Append(3, {{"g", 1}}, {{"c", 7}});
  ring.Append(4, {}, {{"c", 8}});
  EXPECT_EQ(ring.size(), 3u);
  const json j = json::parse(ring.Json());
  EXPECT_EQ(j.at("t"), json::array({2.0, 3.0, 4.0}));
  EXPECT_TRUE(j.at("c")[0].is_null());
  EXPECT_DOUBLE_EQ(j.at("c")[1].get<double>(), 2.0);
  // A series present in some samples only: null elsewhere, every array as long as "t".
  EXPECT_EQ(j.at("g"), json::array({nullptr, 1.0, nullptr}));
}

}  // namespace
}  // namespace kd::ops
