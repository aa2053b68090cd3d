#include "learner/observe.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "learner/admin.h"
#include "learner/gate.h"
#include "tests/learner/stage_fixture.h"

#include "ops/metrics.h"

namespace kd::learner {
namespace {
using json = nlohmann::json;
using testing::StageFixture;

struct ObserveFixture : StageFixture {
  std::atomic<bool> draining{false};
  StatusSources sources = Sources();

  StatusSources Sources() {
    StatusSources s;
    s.store = store.get();
    s.draining = &draining;
    s.teacher_loaded = true;
    return s;
  }

  std::string Metrics() { return ops::RenderPrometheus(LearnerMetrics(state, sources, clock.WallMicros())); }
};

bool Contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(ObserveTest, MetricsCoverCamerasGroupsTheGateTheStoreAndTraining) {
  ObserveFixture f;
  f.MakeGroup("cam-a");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  {
    std::lock_guard lock(f.state.mu);
    DeviceInfo& d = f.state.devices.at("cam-a");
    d.last_seen_us = f.clock.WallMicros();
    d.frames_stored = 12;
    d.frames_out_of_credit = 2;
    d.frames_unlabelled = 5;
    d.uplink_bytes = 4096;
    d.status.running_version = 1;
    d.status.mean_inference_ms = 4;
    d.status.uplink_budget_kbps = 200;
    Group& g = f.state.groups.at("cam-a");
    g.rounds = 3;
    g.gate_decisions[GateVerdictName(GateVerdict::kFail)] = 2;
    g.gate_decisions[GateVerdictName(GateVerdict::kPass)] = 1;
    g.last_round_json = R"({"ap_candidate":0.41,"ap50_candidate":0.8,"ap_deployed":0.39,"ap50_deployed":0.79})";
    f.state.train_steps = 60;
    f.state.train_step_seconds.Observe(0.2);
  }
  const std::string m = f.Metrics();
  EXPECT_TRUE(Contains(m, "kd_learner_frames_stored_total{camera=\"cam-a\"} 12\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_frames_refused_total{camera=\"cam-a\",reason=\"out_of_credit\"} 2\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_label_backlog_frames{camera=\"cam-a\"} 5\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_device_online{camera=\"cam-a\"} 1\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_device_model_version{camera=\"cam-a\",slot=\"running\"} 1\n")) << m;
  uint64_t desired = 0;
  {
    std::lock_guard lock(f.state.mu);
    desired = f.state.groups.at("cam-a").rollout.Desired("cam-a");
  }
  EXPECT_TRUE(Contains(
      m, "kd_learner_device_model_version{camera=\"cam-a\",slot=\"desired\"} " + std::to_string(desired) + "\n"))
      << m;
  EXPECT_TRUE(Contains(m, "kd_learner_device_inference_seconds{camera=\"cam-a\"} 0.004\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_device_uplink_budget_bytes_per_second{camera=\"cam-a\"} 25000\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_device_uplink_bytes_total{camera=\"cam-a\"} 4096\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_gate_decisions_total{group=\"cam-a\",decision=\"fail\"} 2\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_gate_decisions_total{group=\"cam-a\",decision=\"pass\"} 1\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_gate_decisions_total{group=\"cam-a\",decision=\"waiting\"} 0\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_heldout_ap_ratio{group=\"cam-a\",model=\"candidate\"} 0.41\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_heldout_ap50_ratio{group=\"cam-a\",model=\"deployed\"} 0.79\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_publishes_total{group=\"cam-a\"} 1\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_rollout_stage{group=\"cam-a\",stage=\"canary\"} 1\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_train_steps_total 60\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_background_yield_seconds_total 0\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_train_step_duration_seconds_count 1\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_store_budget_bytes ")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_draining 0\n")) << m;
  // Offline after three heartbeat timeouts.
  f.clock.AdvanceNanos(3LL * f.options.server.timeout_ms * 1'000'000 + 1'000'000);
  EXPECT_TRUE(Contains(f.Metrics(), "kd_learner_device_online{camera=\"cam-a\"} 0\n"));
}

TEST(ObserveTest, TheScheduleAndTheWorkersAreMetrics) {
  ObserveFixture f;
  EXPECT_FALSE(Contains(f.Metrics(), "kd_learner_group_trainer_seconds_total"));  // no schedule source
  f.sources.schedule = [] {
    return std::string(R"({"groups":{"cam-a":{"trainer_seconds":12.5,"share":3.0,"drift":0.5,"backoff_s":0}},)"
                       R"("workers":[{"id":1,"state":"alive"},{"id":2,"state":"dead"},{"id":3,"state":"alive"}]})");
  };
  const std::string m = f.Metrics();
  EXPECT_TRUE(Contains(m, "kd_learner_group_trainer_seconds_total{group=\"cam-a\"} 12.5\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_group_schedule_share{group=\"cam-a\"} 3\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_group_drift{group=\"cam-a\"} 0.5\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_cluster_workers{state=\"alive\"} 2\n")) << m;
  EXPECT_TRUE(Contains(m, "kd_learner_cluster_workers{state=\"dead\"} 1\n")) << m;
}

TEST(ObserveTest, LivenessNeedsEveryLoopToBeat) {
  ObserveFixture f;
  ops::HealthReport live = LearnerLiveness(f.state);
  EXPECT_FALSE(live.ok());  // nothing has started
  EXPECT_EQ(live.checks.size(), 5u);
  for (ops::Heartbeat* b :
       {&f.state.beats.ingest, &f.state.beats.control, &f.state.beats.admin, &f.state.beats.labeller}) {
    b->Beat();
  }
  EXPECT_FALSE(LearnerLiveness(f.state).ok());  // the trainer has not beaten
  f.state.beats.trainer.Beat();
  EXPECT_TRUE(LearnerLiveness(f.state).ok()) << LearnerLiveness(f.state).Text(true);
}

TEST(ObserveTest, ReadinessNeedsTheStoreTheTeacherTheSocketsAndNoDrain) {
  ObserveFixture f;
  for (ops::Heartbeat* b : {&f.state.beats.ingest, &f.state.beats.control, &f.state.beats.admin,
                            &f.state.beats.labeller, &f.state.beats.trainer}) {
    b->Beat();
  }
  ops::HealthReport r = LearnerReadiness(f.state, f.sources);
  EXPECT_FALSE(r.ok());  // no frame socket in this fixture
  EXPECT_NE(r.Text(true).find("[-]sockets failed: not bound"), std::string::npos) << r.Text(true);
  EXPECT_NE(r.Text(true).find("[+]store ok: open and writable"), std::string::npos) << r.Text(true);
  f.sources.teacher_loaded = false;
  f.draining = true;
  const std::string text = LearnerReadiness(f.state, f.sources).Text(true);
  EXPECT_NE(text.find("[-]teacher failed"), std::string::npos) << text;
  EXPECT_NE(text.find("[-]not-draining failed: draining for a stop"), std::string::npos) << text;
  f.sources.store = nullptr;
  EXPECT_NE(LearnerReadiness(f.state, f.sources).Text(true).find("[-]store failed: not open"), std::string::npos);
}

TEST(ObserveTest, NoticesNameOfflineCamerasWrongVersionsRollbacksAndHaltedRollouts) {
  ObserveFixture f;
  f.MakeGroup("cam-a");
  f.MakeGroup("cam-b");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(2), {}).ok());
  {
    std::lock_guard lock(f.state.mu);
    for (const char* id : {"cam-a", "cam-b"}) f.state.devices.at(id).enrolled = true;
    DeviceInfo& a = f.state.devices.at("cam-a");
    a.last_seen_us = f.clock.WallMicros();
    a.status.running_version = 1;  // the canary rollout wants v2
    a.status.state = "downloading";
    a.reports = {"v1 committed", "v2 rolled back: inference 234 ms vs 23 ms before"};
  }
  json n = LearnerNotices(f.state, f.sources, f.clock.WallMicros());
  ASSERT_TRUE(n.is_array());
  auto has = [&](const std::string& kind, const std::string& subject) {
    for (const auto& x : n) {
      if (x.at("kind") == kind && x.at("subject") == subject) return true;
    }
    return false;
  };
  EXPECT_TRUE(has("camera_offline", "cam-b")) << n.dump(2);  // enrolled, never connected
  EXPECT_TRUE(has("rollback", "cam-a")) << n.dump(2);
  EXPECT_EQ(n[0].at("level"), "error");  // most severe first
  {
    std::lock_guard lock(f.state.mu);
    f.state.devices.at("cam-a").reports.push_back("v2 committed");
    f.state.devices.at("cam-a").status.running_version = 1;
  }
  n = LearnerNotices(f.state, f.sources, f.clock.WallMicros());
  EXPECT_FALSE(has("rollback", "cam-a")) << n.dump(2);  // the latest report is fine
  const std::string desired = std::to_string(f.state.groups.at("cam-a").rollout.Desired("cam-a"));
  if (desired != "1") {
    EXPECT_TRUE(has("version_mismatch", "cam-a")) << n.dump(2);
  }
}

TEST(ObserveTest, SeriesSamplesCamerasAndTheLearner) {
  ObserveFixture f;
  f.MakeGroup("cam-a");
  {
    std::lock_guard lock(f.state.mu);
    f.state.devices.at("cam-a").uplink_kbps = 120;
    f.state.devices.at("cam-a").frames_unlabelled = 7;
    f.state.frames_received = 30;
  }
  std::map<std::string, double> gauges, counters;
  LearnerSeriesSample(f.state, f.sources, &gauges, &counters);
  EXPECT_EQ(gauges.at("cameras/cam-a/uplink_kbps"), 120);
  EXPECT_EQ(gauges.at("learner/label_backlog"), 7);
  EXPECT_EQ(counters.at("learner/ingest_fps"), 30);
  EXPECT_TRUE(gauges.count("learner/store_budget_bytes"));
}

TEST(ObserveTest, StatusCarriesTheDashboardsFieldsAndTheRoundLog) {
  ObserveFixture f;
  f.MakeGroup("cam-a");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  ASSERT_TRUE(f.catalogue->AppendRound("cam-a", 2'000'000, R"({"round":1,"gate":"fail"})").ok());
  ASSERT_TRUE(f.catalogue->AppendRound("cam-a", 1'000'000, R"({"round":0,"gate":"pass"})").ok());
  AdminStage admin{f.state, *f.catalogue, *f.publisher, nullptr, f.sources, f.clock};
  const json status = json::parse(admin.StatusJson());
  EXPECT_EQ(status.at("daemon"), "kdlearnd");
  EXPECT_EQ(status.at("version"), ops::ProjectVersion());
  EXPECT_TRUE(status.at("notices").is_array());
  EXPECT_TRUE(status.at("learner").contains("label_backlog"));
  EXPECT_TRUE(status.at("devices").at("cam-a").contains("desired_version"));
  EXPECT_TRUE(status.at("devices").at("cam-a").contains("uplink_budget_kbps"));
  // Rounds come back in time order, with the versions beside them, over admin and directly.
  const json rounds = json::parse(admin.RoundsJson("", 0));
  const json& g = rounds.at("groups").at("cam-a");
  ASSERT_EQ(g.at("rounds").size(), 2u);
  EXPECT_EQ(g.at("rounds")[0].at("round"), 0);
  EXPECT_EQ(g.at("versions").size(), 1u);
  EXPECT_EQ(json::parse(admin.RoundsJson("cam-a", 1)).at("groups").at("cam-a").at("rounds").size(), 1u);
  EXPECT_TRUE(json::parse(admin.RoundsJson("nope", 0)).at("groups").empty());
  const json reply = json::parse(admin.HandleRequest(R"({"cmd":"rounds","group":"cam-a"})"));
  EXPECT_TRUE(reply.at("ok").get<bool>());
  EXPECT_EQ(reply.at("groups").at("cam-a").at("rounds").size(), 2u);
  EXPECT_FALSE(json::parse(admin.HandleRequest(R"({"cmd":"rounds","limit":-1})")).at("ok").get<bool>());
}

TEST(CatalogueRoundsTest, TheRoundLogSurvivesAReopenAndKeepsTheNewest) {
  ObserveFixture f;
  for (int i = 0; i < 120; ++i) {
    ASSERT_TRUE(f.catalogue->AppendRound("g", 1'000 + i, "{\"round\":" + std::to_string(i) + "}").ok());
  }
  ASSERT_TRUE(f.catalogue->AppendRound("g2", 5, "{}").ok());
  auto all = f.catalogue->LoadRounds("g");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 120u);  // far below kMaxRoundsPerGroup
  EXPECT_EQ(all->front(), "{\"round\":0}");
  EXPECT_EQ(all->back(), "{\"round\":119}");
  auto last = f.catalogue->LoadRounds("g", 3);
  ASSERT_EQ(last->size(), 3u);
  EXPECT_EQ(last->front(), "{\"round\":117}");
  // "g" is not a prefix match for "g2".
  EXPECT_EQ(f.catalogue->LoadRounds("g2")->size(), 1u);
}

}  // namespace
}  // namespace kd::learner
