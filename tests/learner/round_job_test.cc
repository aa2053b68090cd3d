#include "learner/round_job.h"

#include <string>

#include <gtest/gtest.h>

namespace kd::learner {
namespace {

RoundJob SampleJob() {
  RoundJob job;
  job.group = "lobby";
  job.epoch = 7;
  job.token = 7000022;
  job.iterations = 100;
  job.seed = 3;
  job.anchor = 5;
  job.update_fraction = 0.2;
  job.start_kdw = std::string("KDW\0weights", 11);
  job.frames.push_back({.device_id = "cam-1", .seq = 41, .jpeg = {0xff, 0xd8, 0x00}, .teacher_blob = {1, 2}});
  job.frames.push_back({.device_id = "cam-2", .seq = 9, .jpeg = {}, .teacher_blob = {3}});
  return job;
}

TEST(RoundJobTest, AJobAndAResultRoundTrip) {
  const RoundJob job = SampleJob();
  auto back = DecodeRoundJob(EncodeRoundJob(job));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->group, "lobby");
  EXPECT_EQ(back->epoch, 7u);
  EXPECT_EQ(back->token, 7000022u);
  EXPECT_EQ(back->iterations, 100);
  EXPECT_EQ(back->seed, 3u);
  EXPECT_EQ(back->anchor, 5u);
  EXPECT_DOUBLE_EQ(back->update_fraction, 0.2);
  EXPECT_EQ(back->start_kdw, job.start_kdw);
  ASSERT_EQ(back->frames.size(), 2u);
  EXPECT_EQ(back->frames[0].device_id, "cam-1");
  EXPECT_EQ(back->frames[0].seq, 41u);
  EXPECT_EQ(back->frames[0].jpeg, job.frames[0].jpeg);
  EXPECT_EQ(back->frames[1].teacher_blob, job.frames[1].teacher_blob);

  RoundResult r;
  r.group = "lobby";
  r.epoch = 7;
  r.round = 12;
  r.frames = 256;
  r.steps = 99;
  r.loss = 1.25;
  r.seconds = 42.5;
  r.trained_kdw = "weights";
  auto rb = DecodeRoundResult(EncodeRoundResult(r));
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_EQ(rb->group, "lobby");
  EXPECT_EQ(rb->round, 12u);
  EXPECT_EQ(rb->steps, 99);
  EXPECT_DOUBLE_EQ(rb->seconds, 42.5);
  EXPECT_TRUE(rb->error.empty());
  EXPECT_EQ(rb->trained_kdw, "weights");
}

// A job from a coordinator that predates sparse rounds: no "anchor", no "update_fraction".
std::string JobWithHeader(const std::string& header) {
  std::string out = "KDRJ";
  auto le32 = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  le32(1);
  le32(static_cast<uint32_t>(header.size()));
  out += header;
  le32(0);  // no start weights
  le32(0);  // no frames
  return out;
}

TEST(RoundJobTest, SparseRoundFieldsDefaultToDenseAndAreRangeChecked) {
  auto old = DecodeRoundJob(JobWithHeader(R"({"group":"g","epoch":1,"token":2,"iterations":3,"seed":0})"));
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->anchor, 0u);
  EXPECT_DOUBLE_EQ(old->update_fraction, 1.0);
  for (const char* bad : {"0", "-0.5", "1.5", "\"half\""}) {
    auto r = DecodeRoundJob(JobWithHeader(std::string(R"({"group":"g","epoch":1,"token":2,"iterations":3,"seed":0,)") +
                                          R"("update_fraction":)" + bad + "}"));
    EXPECT_TRUE(r.status().IsCorruption()) << bad;
  }
  auto neg = DecodeRoundJob(JobWithHeader(R"({"group":"g","epoch":1,"token":2,"iterations":3,"seed":0,"anchor":-1})"));
  EXPECT_TRUE(neg.status().IsCorruption());
}

TEST(RoundJobTest, EveryTruncationAndTrailingByteIsCorruption) {
  const std::string bytes = EncodeRoundJob(SampleJob());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = DecodeRoundJob(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r.ok()) << "decoded from " << n << " of " << bytes.size() << " bytes";
    EXPECT_TRUE(r.status().IsCorruption());
  }
  EXPECT_TRUE(DecodeRoundJob(bytes + "x").status().IsCorruption());
  std::string wrong_magic = bytes;
  wrong_magic[0] = 'X';
  EXPECT_TRUE(DecodeRoundJob(wrong_magic).status().IsCorruption());
  EXPECT_TRUE(DecodeRoundResult(bytes).status().IsCorruption());  // a job is not a result
}

TEST(RoundJobTest, AFrameCountBeyondTheBytesIsRefusedBeforeAllocating) {
  std::string bytes = EncodeRoundJob(SampleJob());
  // The frame count follows the header and the start weights; set it to 2^32 - 1.
  RoundJob empty = SampleJob();
  empty.frames.clear();
  const size_t count_at = EncodeRoundJob(empty).size() - 4;
  for (int i = 0; i < 4; ++i) bytes[count_at + static_cast<size_t>(i)] = '\xff';
  auto r = DecodeRoundJob(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("frame count"), std::string::npos) << r.status().ToString();
}

}  // namespace
}  // namespace kd::learner
