#include "learner/label_job.h"

#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace kd::learner {
namespace {

LabelJob SampleJob() {
  LabelJob job;
  job.student_long_side = 384;
  job.teacher_long_side = 512;
  job.teacher_min_score = 0.05f;
  job.labels = {0, 1, 2, 3, 5, 7};
  job.refine.enabled = true;
  job.refine.extra_long_sides = {640, 768};
  job.refine.wbf_iou = 0.55;
  job.jpegs = {std::string("\xff\xd8\x00jpeg", 7), ""};
  return job;
}

TEST(LabelJobTest, AJobAndAResultRoundTrip) {
  const LabelJob job = SampleJob();
  auto back = DecodeLabelJob(EncodeLabelJob(job));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->student_long_side, 384);
  EXPECT_EQ(back->teacher_long_side, 512);
  EXPECT_FLOAT_EQ(back->teacher_min_score, 0.05f);
  EXPECT_EQ(back->labels, job.labels);
  EXPECT_TRUE(back->refine.enabled);
  EXPECT_EQ(back->refine.extra_long_sides, (std::vector<int>{640, 768}));
  EXPECT_DOUBLE_EQ(back->refine.wbf_iou, 0.55);
  EXPECT_EQ(back->jpegs, job.jpegs);

  LabelResult r;
  r.seconds = 2.5;
  r.rows = {"row one", std::string("\0\1", 2)};
  auto rb = DecodeLabelResult(EncodeLabelResult(r));
  ASSERT_TRUE(rb.ok()) << rb.status().ToString();
  EXPECT_TRUE(rb->error.empty());
  EXPECT_DOUBLE_EQ(rb->seconds, 2.5);
  EXPECT_EQ(rb->rows, r.rows);
  r.error = "LibTorch: out of memory";
  r.rows.clear();
  EXPECT_EQ(DecodeLabelResult(EncodeLabelResult(r))->error, "LibTorch: out of memory");
}

TEST(LabelJobTest, EveryTruncationAndTrailingByteIsCorruption) {
  const std::string bytes = EncodeLabelJob(SampleJob());
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto r = DecodeLabelJob(std::string_view(bytes).substr(0, n));
    ASSERT_FALSE(r.ok()) << "decoded from " << n << " of " << bytes.size() << " bytes";
    EXPECT_TRUE(r.status().IsCorruption());
  }
  EXPECT_TRUE(DecodeLabelJob(bytes + "x").status().IsCorruption());
  EXPECT_TRUE(DecodeLabelResult(bytes).status().IsCorruption());  // a job is not a result
  LabelResult r;
  r.rows = {"a", "bc"};
  const std::string result = EncodeLabelResult(r);
  for (size_t n = 0; n < result.size(); ++n) {
    EXPECT_TRUE(DecodeLabelResult(std::string_view(result).substr(0, n)).status().IsCorruption()) << n;
  }
}

// A worker runs what it decodes: options outside what a recipe may say are refused by the decoder.
TEST(LabelJobTest, OptionsOutsideTheirRangesAreRefused) {
  auto refused = [](auto change) {
    LabelJob job = SampleJob();
    change(job);
    auto r = DecodeLabelJob(EncodeLabelJob(job));
    return !r.ok() && r.status().IsCorruption();
  };
  EXPECT_TRUE(refused([](LabelJob& j) { j.student_long_side = 8; }));
  EXPECT_TRUE(refused([](LabelJob& j) { j.teacher_long_side = 500; }));   // not a multiple of 32
  EXPECT_TRUE(refused([](LabelJob& j) { j.teacher_long_side = 4096; }));  // beyond 2048
  EXPECT_TRUE(refused([](LabelJob& j) { j.teacher_min_score = 1.5f; }));
  EXPECT_TRUE(refused([](LabelJob& j) { j.labels = {}; }));
  EXPECT_TRUE(refused([](LabelJob& j) { j.labels = {0, 80}; }));
  EXPECT_TRUE(refused([](LabelJob& j) { j.refine.extra_long_sides = {640, 700}; }));
  EXPECT_TRUE(refused([](LabelJob& j) { j.refine.extra_long_sides = std::vector<int>(9, 640); }));
  EXPECT_TRUE(refused([](LabelJob& j) { j.refine.wbf_iou = 1.0; }));
  EXPECT_FALSE(refused([](LabelJob&) {}));
}

// Found by the round_job fuzz target: a header number no int can hold was converted with
// undefined behaviour; it is Corruption now, in label jobs and round jobs alike.
TEST(LabelJobTest, AHeaderNumberOutsideItsTypeIsCorruption) {
  std::string bytes = EncodeLabelJob(SampleJob());
  const std::string from = "\"teacher_long_side\":512", to = "\"teacher_long_side\":5e42";
  const size_t at = bytes.find(from);
  ASSERT_NE(at, std::string::npos);
  bytes.replace(at, from.size(), to);
  // The header's length prefix (bytes 8..11) grows by the same amount.
  uint32_t len = 0;
  std::memcpy(&len, bytes.data() + 8, 4);
  len += static_cast<uint32_t>(to.size() - from.size());
  std::memcpy(bytes.data() + 8, &len, 4);
  EXPECT_TRUE(DecodeLabelJob(bytes).status().IsCorruption());
  LabelJob big = SampleJob();
  big.teacher_min_score = 2.f;  // the range check runs on the double before the float cast
  EXPECT_TRUE(DecodeLabelJob(EncodeLabelJob(big)).status().IsCorruption());
}

TEST(LabelJobTest, AFrameCountBeyondTheBytesIsRefusedBeforeAllocating) {
  LabelJob job = SampleJob();
  job.jpegs.clear();
  std::string bytes = EncodeLabelJob(job);
  for (size_t i = bytes.size() - 4; i < bytes.size(); ++i) bytes[i] = '\xff';  // the count: 2^32 - 1
  auto r = DecodeLabelJob(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().IsCorruption());
}

}  // namespace
}  // namespace kd::learner
