#include "eval/coco_json.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "eval/coco_eval.h"

namespace kd::eval {
namespace {

namespace fs = std::filesystem;

Detection Det(float x1, float y1, float x2, float y2, float score, int label) {
  return Detection{Box{x1, y1, x2, y2}, score, label};
}

class CocoJsonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("kd_eval_test_" + std::to_string(::getpid()) + "_" + std::string(info->name()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  std::string WriteText(const std::string& name, const std::string& text) const {
    const std::string p = Path(name);
    std::ofstream(p) << text;
    return p;
  }
  static std::string ReadText(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
  }

  fs::path dir_;
};

void ExpectSameDetection(const Detection& a, const Detection& b) {
  EXPECT_EQ(a.box.x1, b.box.x1);
  EXPECT_EQ(a.box.y1, b.box.y1);
  EXPECT_EQ(a.box.x2, b.box.x2);
  EXPECT_EQ(a.box.y2, b.box.y2);
  EXPECT_EQ(a.label, b.label);
}

TEST_F(CocoJsonTest, ResultsRoundTripExactly) {
  // Odd float values on purpose: boxes and scores must come back bit for bit.
  const std::vector<FrameDetections> frames = {
      {5, {Det(0.1f, 100.3f, 1919.9f, 1079.7f, 0.87654f, 0), Det(12.25f, 3, 40.5f, 9, 0.1f, 79)}},
      {2, {Det(1.0f / 3.0f, 2.0f / 3.0f, 640.123f, 480.456f, 0.999999f, 7)}},
      {3, {}},
  };
  const std::string path = Path("results.json");
  ASSERT_TRUE(WriteCocoResults(path, frames).ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const std::string text = ReadText(path);
  EXPECT_NE(text.find("\"category_id\":90"), std::string::npos) << text;  // label 79 = toothbrush = id 90
  EXPECT_NE(text.find("\"category_id\":8"), std::string::npos) << text;   // label 7 = truck = id 8
  EXPECT_NE(text.find("0.1,"), std::string::npos) << text;                // short numbers, not 0.100000001

  Result<std::vector<FrameDetections>> r = ReadCocoResults(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // One entry per image with detections, ascending, detections in file order.
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].frame_index, 2);
  EXPECT_EQ((*r)[1].frame_index, 5);
  ASSERT_EQ((*r)[0].detections.size(), 1u);
  ASSERT_EQ((*r)[1].detections.size(), 2u);
  ExpectSameDetection((*r)[0].detections[0], frames[1].detections[0]);
  ExpectSameDetection((*r)[1].detections[0], frames[0].detections[0]);
  ExpectSameDetection((*r)[1].detections[1], frames[0].detections[1]);
  EXPECT_EQ((*r)[1].detections[0].score, 0.87654f);
  EXPECT_EQ((*r)[0].detections[0].score, 0.999999f);
}

TEST_F(CocoJsonTest, GroundTruthKeepsEveryFrameAndOnlyTheIncludedLabels) {
  const std::vector<FrameDetections> frames = {
      {0, {Det(10, 20, 30, 60, 0.3f, 0), Det(1, 1, 2, 2, 1, 9)}},  // label 9 (traffic light) is not included
      {1, {}},
      {2, {Det(100.5f, 50.25f, 200.75f, 90, 1, 2)}},
  };
  const std::string path = Path("gt.json");
  ASSERT_TRUE(WriteCocoGroundTruth(path, frames, 640, 480, {2, 0}).ok());
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const std::string text = ReadText(path);
  EXPECT_NE(text.find("\"file_name\":\"frame_000001.jpg\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"width\":640"), std::string::npos) << text;
  EXPECT_NE(text.find("\"name\":\"person\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"name\":\"car\""), std::string::npos) << text;
  EXPECT_EQ(text.find("traffic light"), std::string::npos) << text;
  EXPECT_NE(text.find("\"area\":800"), std::string::npos) << text;  // 20 x 40
  EXPECT_NE(text.find("\"iscrowd\":0"), std::string::npos) << text;
  EXPECT_NE(text.find("\"bbox\":[10.0,20.0,20.0,40.0]"), std::string::npos) << text;
  EXPECT_NE(text.find("\"id\":2,\"image_id\":2"), std::string::npos) << text;  // annotation ids 1, 2

  Result<std::vector<FrameDetections>> r = ReadCocoGroundTruth(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0].frame_index, 0);
  EXPECT_EQ((*r)[1].frame_index, 1);
  EXPECT_EQ((*r)[2].frame_index, 2);
  ASSERT_EQ((*r)[0].detections.size(), 1u);
  EXPECT_TRUE((*r)[1].detections.empty());
  ASSERT_EQ((*r)[2].detections.size(), 1u);
  ExpectSameDetection((*r)[0].detections[0], frames[0].detections[0]);
  ExpectSameDetection((*r)[2].detections[0], frames[2].detections[0]);
}

TEST_F(CocoJsonTest, MetricsThroughTheFilesEqualTheDirectOnes) {
  const std::vector<FrameDetections> gt = {
      {0, {Det(0, 0, 10, 10, 1, 0), Det(20, 0, 30, 10, 1, 0), Det(5, 5, 50, 60, 1, 2)}},
      {1, {Det(0.5f, 0.25f, 10.1f, 10.3f, 1, 2)}},
      {2, {}},
  };
  const std::vector<FrameDetections> dets = {
      {0, {Det(0, 0, 10, 10, 0.9f, 0), Det(0, 0, 10, 10, 0.8f, 0), Det(6, 5, 50, 58, 0.7f, 2)}},
      {1, {Det(0.5f, 0.3f, 10, 10.3f, 0.6f, 2)}},
      {2, {Det(1, 1, 5, 5, 0.95f, 0)}},
  };
  const std::string gt_path = Path("gt.json");
  const std::string dt_path = Path("dt.json");
  ASSERT_TRUE(WriteCocoGroundTruth(gt_path, gt, 64, 64, {0, 2}).ok());
  ASSERT_TRUE(WriteCocoResults(dt_path, dets).ok());
  Result<std::vector<FrameDetections>> gt2 = ReadCocoGroundTruth(gt_path);
  Result<std::vector<FrameDetections>> dets2 = ReadCocoResults(dt_path);
  ASSERT_TRUE(gt2.ok() && dets2.ok());
  Result<CocoMetrics> direct = EvaluateCoco(gt, dets, {0, 2});
  Result<CocoMetrics> via_files = EvaluateCoco(*gt2, *dets2, {0, 2});
  ASSERT_TRUE(direct.ok() && via_files.ok());
  EXPECT_GT(direct->ap, 0.1);
  EXPECT_LT(direct->ap, 0.9);
  EXPECT_EQ(direct->ap, via_files->ap);
  EXPECT_EQ(direct->ap50, via_files->ap50);
  EXPECT_EQ(direct->ap75, via_files->ap75);
  EXPECT_EQ(direct->ar100, via_files->ar100);
  EXPECT_EQ(direct->num_gt, via_files->num_gt);
  EXPECT_EQ(direct->num_dets, via_files->num_dets);
}

TEST_F(CocoJsonTest, WritesReplaceAtomicallyAndReportFileSystemErrors) {
  const std::string path = WriteText("out.json", "old contents");
  ASSERT_TRUE(WriteCocoResults(path, {{1, {Det(0, 0, 1, 1, 0.5f, 0)}}}).ok());
  EXPECT_NE(ReadText(path).find("\"image_id\":1"), std::string::npos);
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  const Status s = WriteCocoResults(Path("no/such/dir/out.json"), {});
  EXPECT_EQ(s.code(), Status::Code::kIOError) << s.ToString();
  // An empty result list is a valid file: "[]".
  ASSERT_TRUE(WriteCocoResults(path, {}).ok());
  Result<std::vector<FrameDetections>> r = ReadCocoResults(path);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST_F(CocoJsonTest, InvalidWritesAreRejected) {
  const std::string path = Path("x.json");
  EXPECT_TRUE(WriteCocoResults(path, {{0, {Det(0, 0, 1, 1, 0.5f, 80)}}}).IsInvalidArgument());
  EXPECT_TRUE(WriteCocoGroundTruth(path, {{0, {}}}, 640, 480, {}).IsInvalidArgument());
  EXPECT_TRUE(WriteCocoGroundTruth(path, {{0, {}}}, 640, 480, {80}).IsInvalidArgument());
  EXPECT_TRUE(WriteCocoGroundTruth(path, {{0, {}}}, 0, 480, {0}).IsInvalidArgument());
  EXPECT_TRUE(WriteCocoGroundTruth(path, {{0, {}}, {0, {}}}, 640, 480, {0}).IsInvalidArgument());
  EXPECT_FALSE(fs::exists(path));
}

TEST_F(CocoJsonTest, MissingAndMalformedFilesAreClearErrors) {
  EXPECT_TRUE(ReadCocoResults(Path("absent.json")).status().IsNotFound());
  EXPECT_TRUE(ReadCocoGroundTruth(Path("absent.json")).status().IsNotFound());

  const Status truncated = ReadCocoResults(WriteText("t.json", "[{\"image_id\": 1, \"bbox\": [1,")).status();
  EXPECT_TRUE(truncated.IsCorruption());
  EXPECT_NE(truncated.message().find("malformed JSON"), std::string::npos) << truncated.ToString();
  EXPECT_TRUE(ReadCocoResults(WriteText("e.json", "")).status().IsCorruption());
  EXPECT_TRUE(ReadCocoGroundTruth(WriteText("g.json", "{\"images\": [")).status().IsCorruption());

  // Well-formed JSON of the wrong shape.
  EXPECT_TRUE(ReadCocoResults(WriteText("obj.json", "{}")).status().IsCorruption());
  EXPECT_TRUE(ReadCocoGroundTruth(WriteText("arr.json", "[]")).status().IsCorruption());
  const Status no_bbox =
      ReadCocoResults(WriteText("nb.json", R"([{"image_id": 1, "category_id": 1, "score": 0.5}])")).status();
  EXPECT_TRUE(no_bbox.IsCorruption());
  EXPECT_NE(no_bbox.message().find("bbox"), std::string::npos) << no_bbox.ToString();
  EXPECT_TRUE(ReadCocoResults(WriteText("b3.json", R"([{"image_id":1,"category_id":1,"bbox":[1,2,3],"score":1}])"))
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(ReadCocoResults(WriteText("neg.json", R"([{"image_id":1,"category_id":1,"bbox":[1,2,-3,4],"score":1}])"))
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(ReadCocoResults(WriteText("s.json", R"([{"image_id":"1","category_id":1,"bbox":[1,2,3,4],"score":1}])"))
                  .status()
                  .IsCorruption());
  EXPECT_TRUE(ReadCocoResults(WriteText("f.json", R"([{"image_id":1.5,"category_id":1,"bbox":[1,2,3,4],"score":1}])"))
                  .status()
                  .IsCorruption());
}

TEST_F(CocoJsonTest, UnknownCategoryIdIsCorruption) {
  // 12 is one of the 11 ids COCO skips.
  const Status results =
      ReadCocoResults(WriteText("r.json", R"([{"image_id":1,"category_id":12,"bbox":[1,2,3,4],"score":1}])")).status();
  EXPECT_TRUE(results.IsCorruption());
  EXPECT_NE(results.message().find("unknown COCO category id 12"), std::string::npos) << results.ToString();
  const Status gt = ReadCocoGroundTruth(WriteText("g.json", R"({"images":[{"id":1}],
      "annotations":[{"id":1,"image_id":1,"category_id":91,"bbox":[1,2,3,4]}]})"))
                        .status();
  EXPECT_TRUE(gt.IsCorruption());
  EXPECT_NE(gt.message().find("unknown COCO category id 91"), std::string::npos) << gt.ToString();
}

TEST_F(CocoJsonTest, GroundTruthStructureErrors) {
  const Status unlisted = ReadCocoGroundTruth(WriteText("u.json", R"({"images":[{"id":1}],
      "annotations":[{"id":1,"image_id":2,"category_id":1,"bbox":[1,2,3,4]}]})"))
                              .status();
  EXPECT_TRUE(unlisted.IsCorruption());
  EXPECT_NE(unlisted.message().find("image 2"), std::string::npos) << unlisted.ToString();
  EXPECT_TRUE(ReadCocoGroundTruth(WriteText("d.json", R"({"images":[{"id":1},{"id":1}]})")).status().IsCorruption());
  EXPECT_TRUE(ReadCocoGroundTruth(WriteText("n.json", R"({"annotations":[]})")).status().IsCorruption());
  // No "annotations" at all: images without objects.
  Result<std::vector<FrameDetections>> r = ReadCocoGroundTruth(WriteText("ok.json", R"({"images":[{"id":4}]})"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].frame_index, 4);
}

TEST_F(CocoJsonTest, CrowdAnnotationsAreKeptOnlyByTheCrowdReader) {
  const std::string path = WriteText("c.json", R"({"images":[{"id":1}],
      "annotations":[{"id":1,"image_id":1,"category_id":1,"bbox":[0,0,10,10],"iscrowd":0},
                     {"id":2,"image_id":1,"category_id":1,"bbox":[100,100,100,100],"iscrowd":1}]})");
  Result<std::vector<FrameDetections>> plain = ReadCocoGroundTruth(path);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  ASSERT_EQ(plain->size(), 1u);
  EXPECT_EQ((*plain)[0].detections.size(), 1u);
  Result<std::vector<GroundTruthFrame>> crowd = ReadCocoGroundTruthWithCrowd(path);
  ASSERT_TRUE(crowd.ok()) << crowd.status().ToString();
  ASSERT_EQ((*crowd)[0].boxes.size(), 2u);
  EXPECT_FALSE((*crowd)[0].boxes[0].iscrowd);
  EXPECT_TRUE((*crowd)[0].boxes[1].iscrowd);
  EXPECT_EQ((*crowd)[0].boxes[1].box.x2, 200.f);
}

}  // namespace
}  // namespace kd::eval
