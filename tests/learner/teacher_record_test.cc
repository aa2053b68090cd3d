#include "learner/teacher_record.h"

#include <random>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace kd::learner {
namespace {

// A two-row dataset with random teacher targets (no teacher needed).
DistillDataset SmallDataset() {
  DistillDataset d;
  d.labels = {0, 2};
  d.orig_width = 64, d.orig_height = 48;
  d.student_width = 32, d.student_height = 24;
  d.teacher_width = 64, d.teacher_height = 48;
  d.frame_indices = {10, 11};
  d.images = torch::randint(0, 255, {2, 3, 24, 32}, torch::kUInt8);
  d.teacher_heat = torch::rand({2, 2, 6, 8}).to(torch::kHalf);
  d.teacher_box = (torch::rand({2, 4, 6, 8}) * 10).to(torch::kHalf);
  d.feat_mean = torch::rand({2, 128});
  d.feat_sqmean = torch::rand({2, 128});
  d.pseudo = {{Detection{{1, 2, 3, 4}, 0.9f, 1}}, {}};
  d.teacher_dets = {{10, {Detection{{2, 4, 6, 8}, 0.8f, 2}, Detection{{0, 0, 5, 5}, 0.4f, 0}}}, {11, {}}};
  return d;
}

media::Frame Gray(int w, int h) {
  media::Frame f;
  f.width = w, f.height = h;
  f.rgb.assign(static_cast<size_t>(w * h * 3), 128);
  return f;
}

TEST(TeacherRecordTest, RoundTripIsExact) {
  auto d = SmallDataset();
  auto blob = EncodeTeacherRow(d, 0);
  auto row = DecodeTeacherRow(blob);
  ASSERT_TRUE(row.ok()) << row.status().ToString();
  EXPECT_EQ(row->labels, d.labels);
  EXPECT_EQ(row->student_width, 32);
  EXPECT_TRUE(torch::equal(row->heat, d.teacher_heat[0]));
  EXPECT_TRUE(torch::equal(row->box, d.teacher_box[0]));
  EXPECT_TRUE(torch::equal(row->feat_mean, d.feat_mean[0]));
  ASSERT_EQ(row->pseudo.size(), 1u);
  EXPECT_EQ(row->pseudo[0].label, 1);
  ASSERT_EQ(row->teacher.size(), 2u);
  EXPECT_FLOAT_EQ(row->teacher[1].score, 0.4f);
}

TEST(TeacherRecordTest, DamagedBlobsAreCorruptionNeverACrash) {
  auto blob = EncodeTeacherRow(SmallDataset(), 1);
  EXPECT_TRUE(DecodeTeacherRow({}).status().IsCorruption());
  for (size_t cut : {size_t{3}, size_t{20}, blob.size() / 2, blob.size() - 1}) {
    EXPECT_TRUE(DecodeTeacherRow(std::span(blob.data(), cut)).status().IsCorruption()) << cut;
  }
  auto longer = blob;
  longer.push_back(0);
  EXPECT_TRUE(DecodeTeacherRow(longer).status().IsCorruption());
  auto bad_magic = blob;
  bad_magic[0] ^= 0xff;
  EXPECT_TRUE(DecodeTeacherRow(bad_magic).status().IsCorruption());
  std::mt19937 rng(1);
  for (int i = 0; i < 500; ++i) {  // random byte flips: a value or a Corruption, never a crash
    auto m = blob;
    m[rng() % m.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
    (void)DecodeTeacherRow(m);
  }
}

// Found by fuzz/teacher_record_fuzz.cc (fuzz/corpus/teacher_record/regress-huge-dims): a short blob
// whose header claims the largest sizes (student 16384 x 16384, 80 classes) made the decoder
// allocate its 2.7 GB of tensors before finding the blob truncated. Now it is refused first.
TEST(TeacherRecordTest, AShortBlobClaimingHugeTensorsIsRefusedBeforeAllocating) {
  std::vector<uint8_t> blob;
  auto put = [&](uint32_t v) {
    for (int i = 0; i < 4; ++i) blob.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  put(0x3154444b);  // "KDT1"
  for (uint32_t d : {64u, 48u, 16384u, 16384u, 64u, 64u}) put(d);
  put(80);
  for (uint32_t l = 0; l < 80; ++l) put(l);
  for (size_t extra : {size_t{0}, size_t{1} << 20}) {  // no tensor bytes, or 1 MiB of them
    std::vector<uint8_t> b = blob;
    b.resize(b.size() + extra, 0);
    auto row = DecodeTeacherRow(b);
    ASSERT_TRUE(row.status().IsCorruption()) << row.status().ToString();
    EXPECT_NE(row.status().message().find("truncated tensors"), std::string::npos) << row.status().ToString();
  }
}

TEST(TeacherRecordTest, AssemblerRebuildsADatasetAndRefusesMismatches) {
  auto d = SmallDataset();
  DatasetAssembler as;
  ASSERT_TRUE(as.Add(Gray(64, 48), DecodeTeacherRow(EncodeTeacherRow(d, 0)).value()).ok());
  ASSERT_TRUE(as.Add(Gray(64, 48), DecodeTeacherRow(EncodeTeacherRow(d, 1)).value()).ok());
  EXPECT_TRUE(as.Add(Gray(80, 48), DecodeTeacherRow(EncodeTeacherRow(d, 1)).value()).IsInvalidArgument());
  auto out = std::move(as).Finish();
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->size(), 2u);
  EXPECT_EQ(out->images.sizes(), (torch::IntArrayRef{2, 3, 24, 32}));
  EXPECT_TRUE(torch::equal(out->teacher_heat, d.teacher_heat));
  EXPECT_EQ(out->frame_indices, (std::vector<int64_t>{0, 1}));  // rows, not seqs
  EXPECT_EQ(out->teacher_dets[0].detections.size(), 2u);
  EXPECT_TRUE(DatasetAssembler().Finish().status().IsInvalidArgument());
}

TEST(TeacherRecordTest, DisagreementIsLowForAgreementAndHighForMisses) {
  model::StudentOptions so;
  so.width = 8, so.head_channels = 8, so.labels = {0, 2}, so.input_width = 32, so.input_height = 32;
  model::Student s(so);
  s->eval();
  model::FusedStudent fused(*s);
  auto d = SmallDataset();
  d.images = torch::randint(0, 255, {2, 3, 32, 32}, torch::kUInt8);  // the student's 32x32 input
  torch::NoGradGuard ng;
  auto probs = torch::sigmoid(fused.Forward(d.images.to(torch::kFloat)).cls);
  d.teacher_heat = probs.to(torch::kHalf);  // row agrees with the student
  auto agree = StudentDisagreement(fused, d, {0, 1});
  d.teacher_heat = torch::ones_like(probs).to(torch::kHalf);  // the teacher sees objects everywhere
  auto miss = StudentDisagreement(fused, d, {0, 1});
  ASSERT_EQ(agree.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_LT(agree[i], 0.01f);
    EXPECT_GT(miss[i], agree[i] + 0.1f);
    EXPECT_LE(miss[i], 1.f);
  }
}

// A one-to-one student at stride 8 is compared with the teacher's stride-4 map pooled 2x2 (its
// strongest probability per block), not written off as unknown (1).
TEST(TeacherRecordTest, DisagreementOfAStride8OneToOneStudentUsesThePooledTeacherMap) {
  model::StudentOptions so;
  so.width = 8, so.head_channels = 8, so.labels = {0, 2}, so.input_width = 32, so.input_height = 32;
  so.one_to_one = true;
  so.one_to_one_stride = 8;
  model::Student s(so);
  s->eval();
  model::FusedStudent fused(*s);
  auto d = SmallDataset();
  d.images = torch::randint(0, 255, {2, 3, 32, 32}, torch::kUInt8);
  torch::NoGradGuard ng;
  auto probs = torch::sigmoid(fused.Forward(d.images.to(torch::kFloat)).cls_o2o);  // [2,2,4,4]
  // The teacher's 8x8 map whose 2x2 maxima are the student's: agreement.
  d.teacher_heat =
      torch::nn::functional::interpolate(
          probs,
          torch::nn::functional::InterpolateFuncOptions().scale_factor(std::vector<double>{2, 2}).mode(torch::kNearest))
          .to(torch::kHalf);
  auto agree = StudentDisagreement(fused, d, {0, 1});
  d.teacher_heat = torch::ones_like(d.teacher_heat);
  auto miss = StudentDisagreement(fused, d, {0, 1});
  ASSERT_EQ(agree.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    EXPECT_LT(agree[i], 0.01f);
    EXPECT_GT(miss[i], agree[i] + 0.1f);
    EXPECT_LT(miss[i], 1.f);  // measured, not "unknown"
  }
}

}  // namespace
}  // namespace kd::learner
