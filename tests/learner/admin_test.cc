#include "learner/admin.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/learner/stage_fixture.h"
#include "wire/admin_commands.h"

namespace kd::learner {
namespace {
using json = nlohmann::json;
using testing::StageFixture;

struct AdminFixture : StageFixture {
  std::atomic<bool> draining{false};
  AdminStage stage{state, *catalogue, *publisher, nullptr, StatusSources{store.get(), nullptr, nullptr, &draining},
                   clock};
  json Ask(const json& request) { return json::parse(stage.HandleRequest(request.dump())); }
};

TEST(AdminStageTest, StatusListsDevicesGroupsVersionsAndTheStore) {
  AdminFixture f;
  f.MakeGroup("cam-a");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  {
    std::lock_guard lock(f.state.mu);
    f.state.devices.at("cam-a").last_seen_us = f.clock.WallMicros();
    f.state.devices.at("cam-a").frames_stored = 12;
  }
  const json j = f.Ask({{"cmd", "status"}});
  EXPECT_TRUE(j.at("ok").get<bool>());
  EXPECT_TRUE(j.at("devices").at("cam-a").at("online").get<bool>());
  EXPECT_EQ(j.at("devices").at("cam-a").at("frames_stored"), 12);
  EXPECT_EQ(j.at("groups").at("cam-a").at("latest"), 1);
  EXPECT_EQ(j.at("groups").at("cam-a").at("versions").size(), 1u);
  EXPECT_EQ(j.at("groups").at("cam-a").at("rollout").at("stage"), "canary");
  EXPECT_TRUE(j.at("store").contains("max_bytes"));
  EXPECT_FALSE(j.at("draining").get<bool>());
  // Offline once not heard from for three heartbeat timeouts.
  f.clock.AdvanceNanos(3LL * f.options.server.timeout_ms * 1'000'000 + 1'000'000);
  EXPECT_FALSE(f.Ask({{"cmd", "status"}}).at("devices").at("cam-a").at("online").get<bool>());
}

TEST(AdminStageTest, EnrollAndRevokeArePersistedAndValidated) {
  AdminFixture f;
  EXPECT_FALSE(f.Ask({{"cmd", "enroll"}, {"device", "cam-a"}}).at("ok").get<bool>());  // no key
  EXPECT_TRUE(f.Ask({{"cmd", "enroll"}, {"device", "cam-a"}, {"key", "k"}}).at("ok").get<bool>());
  EXPECT_EQ(f.catalogue->LoadDevices().value().size(), 1u);
  EXPECT_TRUE(f.Ask({{"cmd", "revoke"}, {"device", "cam-a"}}).at("ok").get<bool>());
  EXPECT_TRUE(f.catalogue->LoadDevices().value()[0].revoked);
  const json again = f.Ask({{"cmd", "revoke"}, {"device", "cam-a"}});
  EXPECT_FALSE(again.at("ok").get<bool>());
  EXPECT_EQ(again.at("error"), "unknown device 'cam-a'");
}

TEST(AdminStageTest, RolloutStartAndRollback) {
  AdminFixture f;
  f.MakeGroup("cam-a");
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(1), {}).ok());
  ASSERT_TRUE(f.publisher->Publish("cam-a", StageFixture::Weights(2), {}).ok());
  EXPECT_FALSE(f.Ask({{"cmd", "rollout"}, {"group", "nope"}, {"action", "start"}}).at("ok").get<bool>());
  EXPECT_FALSE(
      f.Ask({{"cmd", "rollout"}, {"group", "cam-a"}, {"action", "start"}, {"version", 1}}).at("ok").get<bool>());
  const json started = f.Ask({{"cmd", "rollout"}, {"group", "cam-a"}, {"action", "start"}});
  EXPECT_TRUE(started.at("ok").get<bool>());
  EXPECT_EQ(started.at("version"), 2);
  EXPECT_TRUE(f.Ask({{"cmd", "rollout"}, {"group", "cam-a"}, {"action", "rollback"}}).at("ok").get<bool>());
  std::lock_guard lock(f.state.mu);
  EXPECT_EQ(f.state.groups.at("cam-a").latest, 3u);
  EXPECT_EQ(f.state.groups.at("cam-a").versions.at(3).revert_of, 1u);
}

TEST(AdminStageTest, MalformedRequestsGetAClearErrorNeverAThrow) {
  AdminFixture f;
  for (const std::string bad :
       {"", "{", "[1,2]", "42", R"({"cmd":7})", R"({"cmd":"enroll","device":[1]})", R"({"cmd":"what"})"}) {
    const json j = json::parse(f.stage.HandleRequest(bad));
    EXPECT_FALSE(j.at("ok").get<bool>()) << bad;
    EXPECT_FALSE(j.at("error").get<std::string>().empty()) << bad;
  }
}

}  // namespace
}  // namespace kd::learner
