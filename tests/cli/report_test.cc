#include "daemon/kdctl/report.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/support/scratch_dir.h"

namespace kd::kdctl {
namespace {
using json = nlohmann::json;

json Reply() {
  json rounds = json::array();
  for (int i = 0; i < 4; ++i) {
    rounds.push_back({{"round", i},
                      {"time_unix_s", 1000.0 + 30 * i},
                      {"frames", 100 + i},
                      {"steps", 60},
                      {"loss", 1.5 - 0.1 * i},
                      {"ap_candidate", 0.3 + 0.02 * i},
                      {"ap_deployed", 0.3},
                      {"ap50_candidate", 0.7},
                      {"ap50_deployed", 0.68},
                      {"gate", i == 2 ? "pass" : "fail"},
                      {"deployed_version", i > 2 ? 2 : 1},
                      {"uplink_bytes", 10000 * i},
                      {"downlink_bytes", 500 * i},
                      {"label_backlog", 3 - i}});
  }
  rounds[2]["published_version"] = 2;
  rounds[3]["delta"] = "dropped: it lost 0.02 AP, \"see\" log";
  json versions = json::array({{{"version", 1}, {"created_unix_s", 990}, {"revert_of", 0}},
                               {{"version", 2}, {"created_unix_s", 1061}, {"revert_of", 0}},
                               {{"version", 3}, {"created_unix_s", 1095}, {"revert_of", 1}}});
  return {{"groups", {{"lobby", {{"rounds", rounds}, {"versions", versions}}}}}};
}

TEST(ReportTest, ResultsCsvHasOneRowPerRoundUnderUltralyticsStyleColumns) {
  const std::string csv = ResultsCsv(Reply()["groups"]["lobby"]["rounds"]);
  std::istringstream in(csv);
  std::string header, line;
  std::getline(in, header);
  EXPECT_EQ(header.rfind("round,time_unix_s,frames,steps,train/loss,train/seconds,metrics/AP(candidate)", 0), 0u)
      << header;
  int rows = 0;
  std::string third;
  while (std::getline(in, line)) {
    if (++rows == 3) third = line;
  }
  EXPECT_EQ(rows, 4);
  EXPECT_NE(third.find(",pass,1,2,"), std::string::npos) << third;  // gate, deployed, published
  // Times keep their precision (a %g of a Unix time would round it to 10 s).
  EXPECT_NE(ResultsCsv(json::array({{{"time_unix_s", 1796080123.25}}})).find("\n,1796080123.250,"), std::string::npos);
}

TEST(ReportTest, WritesTheCsvAndThreePlotsPerGroup) {
  kd::testing::ScratchDir dir;
  const std::filesystem::path root(dir.path());
  auto written = WriteRunReport(Reply(), (root / "report").string());
  ASSERT_TRUE(written.ok()) << written.status().ToString();
  ASSERT_EQ(written->size(), 4u);
  for (const char* name : {"results.csv", "accuracy.png", "traffic.png", "label_backlog.png"}) {
    const auto path = root / "report" / "lobby" / name;
    EXPECT_TRUE(std::filesystem::exists(path)) << path;
    EXPECT_GT(std::filesystem::file_size(path), 100u) << path;
  }
}

TEST(ReportTest, AMalformedReplyIsCorruption) {
  kd::testing::ScratchDir dir;
  EXPECT_TRUE(WriteRunReport(json::array(), dir.path()).status().IsCorruption());
  EXPECT_TRUE(WriteRunReport(json{{"groups", {{"g", {{"rounds", 3}}}}}}, dir.path()).status().IsCorruption());
  // No groups: nothing to write, not an error.
  EXPECT_TRUE(WriteRunReport(json{{"groups", json::object()}}, dir.path())->empty());
}

}  // namespace
}  // namespace kd::kdctl
