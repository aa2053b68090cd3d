#include "cluster/membership.h"

#include <chrono>
#include <map>
#include <thread>

#include <gtest/gtest.h>

#include "base/clock.h"
#include "base/hex.h"
#include "base/sha256.h"

namespace kd::cluster {
namespace {

constexpr char kSecret[] = "0123456789abcdef-shared-secret";

class MembershipTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = KvStore::Serve({.host = "127.0.0.1", .port = 0, .timeout_s = 5});
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(s).value();
    auto p =
        WorkerPool::Open(*server_, {.secret = kSecret, .generation = 7, .worker_timeout_s = 1.0}, SystemClock::Get());
    ASSERT_TRUE(p.ok()) << p.status().ToString();
    pool_ = std::move(p).value();
    polling_ = std::thread([this] {
      while (!stop_) {
        for (uint64_t id : pool_->Poll()) gone_.push_back(id);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  void TearDown() override {
    stop_ = true;
    if (polling_.joinable()) polling_.join();
  }

  // TCPStore's set() does not wait for the server: another connection sees a value a moment later.
  Result<std::optional<std::string>> AwaitResult(uint64_t id) {
    for (int i = 0; i < 100; ++i) {
      auto r = pool_->TakeResult(id);
      if (!r.ok() || r->has_value()) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return pool_->TakeResult(id);
  }

  std::unique_ptr<KvStore> Client() {
    auto c = KvStore::Connect({.host = "127.0.0.1", .port = server_->port(), .timeout_s = 5});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(c).value() : nullptr;
  }

  std::unique_ptr<KvStore> server_;
  std::unique_ptr<WorkerPool> pool_;
  std::atomic<bool> stop_{false};
  std::thread polling_;
  std::vector<uint64_t> gone_;  // written by the polling thread; read after TearDown-like joins only
};

TEST_F(MembershipTest, AWorkerJoinsTakesAJobAndReturnsAnAuthenticatedResult) {
  auto store = Client();
  auto link = WorkerLink::Join(*store, {.secret = kSecret, .name = "w-a", .heartbeat_s = 0.1});
  ASSERT_TRUE(link.ok()) << link.status().ToString();
  EXPECT_EQ((*link)->generation(), 7u);
  const uint64_t id = (*link)->id();
  ASSERT_TRUE(pool_->Alive(id));

  ASSERT_TRUE(pool_->SendJob(id, "round for group g1").ok());
  EXPECT_EQ(pool_->SendJob(id, "a second one").code(), Status::Code::kFailedPrecondition);  // one at a time
  std::atomic<bool> stop{false};
  auto job = (*link)->NextJob(5, stop);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  ASSERT_TRUE(job->has_value());
  EXPECT_EQ(**job, "round for group g1");
  EXPECT_FALSE(pool_->TakeResult(id)->has_value());  // not yet
  ASSERT_TRUE((*link)->PutResult("trained weights").ok());
  auto result = AwaitResult(id);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_TRUE(result->has_value());
  EXPECT_EQ(**result, "trained weights");

  // The next job flows the same way; a result tampered with in the store is refused.
  ASSERT_TRUE(pool_->SendJob(id, "round 2").ok());
  ASSERT_TRUE((*link)->NextJob(5, stop)->has_value());
  ASSERT_TRUE((*link)->PutResult("weights 2").ok());
  const std::string key = "kd/g7/w/" + std::to_string(id) + "/result/2";
  Result<std::optional<std::string>> sealed = std::optional<std::string>();
  for (int i = 0; i < 100 && sealed.ok() && !sealed->has_value(); ++i) {
    sealed = store->Get(key);
    if (sealed.ok() && !sealed->has_value()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(sealed.ok() && sealed->has_value());
  std::string forged = **sealed;
  forged[0] ^= 1;
  ASSERT_TRUE(store->Set(key, forged).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the forged value reaches the server
  auto bad = pool_->TakeResult(id);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kPermissionDenied);
}

TEST_F(MembershipTest, AWrongSecretOrGenerationIsRefused) {
  auto store = Client();
  auto wrong_secret = WorkerLink::Join(*store, {.secret = "another-secret-of-enough-length", .name = "w-x"});
  ASSERT_FALSE(wrong_secret.ok());
  EXPECT_EQ(wrong_secret.status().code(), Status::Code::kPermissionDenied);
  EXPECT_NE(wrong_secret.status().message().find("wrong shared secret"), std::string::npos)
      << wrong_secret.status().ToString();

  auto old_world = WorkerLink::Join(*store, {.secret = kSecret, .name = "w-y", .generation = 6});
  ASSERT_FALSE(old_world.ok());
  EXPECT_EQ(old_world.status().code(), Status::Code::kPermissionDenied);
  EXPECT_NE(old_world.status().message().find("generation 6"), std::string::npos) << old_world.status().ToString();

  for (const auto& w : pool_->Workers()) ADD_FAILURE() << "admitted: " << w.name;
  EXPECT_EQ(WorkerLink::Join(*store, {.secret = "short", .name = "w-z"}).status().code(),
            Status::Code::kInvalidArgument);
}

TEST_F(MembershipTest, ALabelWorkerJoinsWithItsRoleAndTheRoleIsAuthenticated) {
  auto store = Client();
  auto trainer = WorkerLink::Join(*store, {.secret = kSecret, .name = "w-t", .heartbeat_s = 0.1});
  auto labeller =
      WorkerLink::Join(*store, {.secret = kSecret, .name = "w-l", .role = WorkerRole::kLabel, .heartbeat_s = 0.1});
  ASSERT_TRUE(trainer.ok() && labeller.ok());
  std::map<std::string, WorkerRole> roles;
  for (const auto& w : pool_->Workers()) roles[w.name] = w.role;
  EXPECT_EQ(roles, (std::map<std::string, WorkerRole>{{"w-t", WorkerRole::kTrain}, {"w-l", WorkerRole::kLabel}}));
  EXPECT_EQ(ParseWorkerRole("label"), WorkerRole::kLabel);
  EXPECT_EQ(ParseWorkerRole(WorkerRoleName(WorkerRole::kTrain)), WorkerRole::kTrain);
  EXPECT_FALSE(ParseWorkerRole("boss").has_value());

  // Raw join requests: a role changed after the MAC was made (cluster/PROTOCOL.md: the MAC covers
  // it), and a role nobody knows.
  const std::string challenge = **store->Get("kd/challenge");
  auto raw_join = [&](const std::string& role, const std::string& mac_role) {
    const auto id = static_cast<uint64_t>(*store->Add("kd/next_worker", 1));
    const std::string mac =
        ToHex(HmacSha256(kSecret, "kd-join|" + std::to_string(id) + "|7|" + mac_role + "|" + challenge));
    EXPECT_TRUE(store
                    ->Set("kd/join/" + std::to_string(id),
                          R"({"name":"raw","generation":7,"role":")" + role + R"(","mac":")" + mac + R"("})")
                    .ok());
    for (int i = 0; i < 100; ++i) {
      auto verdict = store->Get("kd/join/" + std::to_string(id) + "/verdict");
      if (verdict.ok() && verdict->has_value()) return **verdict;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return std::string("no verdict");
  };
  EXPECT_EQ(raw_join("label", "label"), "admitted");  // the recipe is right
  EXPECT_EQ(raw_join("label", "train"), "refused: wrong shared secret");
  EXPECT_EQ(raw_join("boss", "boss"), "refused: unknown role \"boss\"");
}

TEST_F(MembershipTest, ASilentWorkerIsDeclaredDeadAndFencedInTheStore) {
  auto store = Client();
  auto link = WorkerLink::Join(*store, {.secret = kSecret, .name = "w-b", .heartbeat_s = 0.1});
  ASSERT_TRUE(link.ok()) << link.status().ToString();
  const uint64_t id = (*link)->id();
  // Beating: alive well past the timeout.
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  ASSERT_TRUE(pool_->Alive(id));
  // Kill its heartbeat (as a SIGSTOP or a partition would) by destroying the link but keeping the
  // store; a second link object stands in for the process that wakes up later.
  const uint64_t generation = (*link)->generation();
  link->reset();
  const auto t0 = std::chrono::steady_clock::now();
  while (pool_->Alive(id) && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_FALSE(pool_->Alive(id));
  EXPECT_LT(took, 3.0) << "declared dead after " << took << " s with a 1 s timeout";
  EXPECT_EQ(pool_->SendJob(id, "x").code(), Status::Code::kFailedPrecondition);
  auto state = store->Get("kd/g" + std::to_string(generation) + "/w/" + std::to_string(id) + "/state");
  ASSERT_TRUE(state.ok() && state->has_value());
  EXPECT_EQ(**state, "dead");
  // A goodbye that comes too late (what WorkerLink::Leave writes) does not undo the verdict.
  const std::string key = "kd/g" + std::to_string(generation) + "/w/" + std::to_string(id) + "/state";
  EXPECT_EQ(store->CompareSet(key, "", "left").value(), "dead");
}

TEST_F(MembershipTest, ALeavingWorkerIsGoneAtOnceAndItsJobIsAbandoned) {
  auto store = Client();
  auto link = WorkerLink::Join(*store, {.secret = kSecret, .name = "w-c", .heartbeat_s = 0.1});
  ASSERT_TRUE(link.ok());
  const uint64_t id = (*link)->id();
  ASSERT_TRUE(pool_->SendJob(id, "job").ok());
  ASSERT_TRUE((*link)->Leave().ok());
  const auto t0 = std::chrono::steady_clock::now();
  while (pool_->Alive(id) && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 0.5);
  auto result = pool_->TakeResult(id);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Status::Code::kUnavailable);
  const auto workers = pool_->Workers();
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].state, WorkerState::kLeft);
}

}  // namespace
}  // namespace kd::cluster
