#include "media/image_ops.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

namespace kd::media {
namespace {

namespace fs = std::filesystem;

Frame MakeFrame(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  Frame f;
  f.index = 7;
  f.timestamp_us = 123;
  f.width = w;
  f.height = h;
  f.rgb.resize(static_cast<size_t>(w) * h * 3);
  for (size_t p = 0; p < f.rgb.size(); p += 3) {
    f.rgb[p] = r;
    f.rgb[p + 1] = g;
    f.rgb[p + 2] = b;
  }
  return f;
}

// A smooth gradient (JPEG-friendly) with distinct channels.
Frame Gradient(int w, int h) {
  Frame f = MakeFrame(w, h, 0, 0, 0);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &f.rgb[(static_cast<size_t>(y) * w + x) * 3];
      p[0] = static_cast<uint8_t>(x * 255 / (w - 1));
      p[1] = static_cast<uint8_t>(y * 255 / (h - 1));
      p[2] = 128;
    }
  }
  return f;
}

const uint8_t* Px(const Frame& f, int x, int y) { return &f.rgb[(static_cast<size_t>(y) * f.width + x) * 3]; }

double MeanAbsDiff(const Frame& a, const Frame& b) {
  double sum = 0;
  for (size_t i = 0; i < a.rgb.size(); ++i) sum += std::abs(static_cast<int>(a.rgb[i]) - static_cast<int>(b.rgb[i]));
  return sum / static_cast<double>(a.rgb.size());
}

TEST(FitSizeTest, KeepsAspectWithMultiples) {
  EXPECT_EQ(FitSize(768, 576, 512, 32), std::make_pair(512, 384));
  EXPECT_EQ(FitSize(768, 576, 384, 32), std::make_pair(384, 288));
  EXPECT_EQ(FitSize(576, 768, 512, 32), std::make_pair(384, 512));    // portrait
  EXPECT_EQ(FitSize(1920, 1080, 640, 32), std::make_pair(640, 352));  // 360 -> nearest multiple 352
  EXPECT_EQ(FitSize(100, 100, 50, 1), std::make_pair(50, 50));
  EXPECT_EQ(FitSize(320, 240, 640, 32), std::make_pair(640, 480));  // scales up too
  EXPECT_EQ(FitSize(1000, 10, 320, 32), std::make_pair(320, 32));   // never below one multiple
}

TEST(ResizeRgbTest, SizeColourAndMetadata) {
  const Frame src = MakeFrame(64, 48, 200, 100, 50);
  for (auto [w, h] : std::vector<std::pair<int, int>>{{32, 24}, {128, 96}, {10, 7}, {64, 48}}) {
    const Frame out = ResizeRgb(src, w, h);
    ASSERT_EQ(out.width, w);
    ASSERT_EQ(out.height, h);
    ASSERT_TRUE(out.valid());
    EXPECT_EQ(out.index, 7);
    EXPECT_EQ(out.timestamp_us, 123);
    EXPECT_EQ(out.rgb[0], 200);
    EXPECT_EQ(out.rgb[1], 100);
    EXPECT_EQ(out.rgb[2], 50);
  }
}

TEST(ResizeRgbTest, LargeShrinkAveragesInsteadOfAliasing) {
  // A one-pixel checkerboard shrunk 4x: area averaging gives mid grey everywhere.
  Frame board = MakeFrame(64, 64, 0, 0, 0);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      if ((x + y) % 2) std::fill_n(&board.rgb[(static_cast<size_t>(y) * 64 + x) * 3], 3, uint8_t{255});
  const Frame out = ResizeRgb(board, 16, 16);
  for (uint8_t v : out.rgb) EXPECT_NEAR(v, 128, 1);
}

TEST(JpegTest, RoundTrip) {
  const Frame src = Gradient(64, 48);
  Result<std::vector<uint8_t>> bytes = EncodeJpeg(src, 95);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  ASSERT_GT(bytes->size(), 4u);
  EXPECT_EQ((*bytes)[0], 0xFF);
  EXPECT_EQ((*bytes)[1], 0xD8);
  Result<Frame> back = DecodeJpeg(*bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_EQ(back->width, 64);
  ASSERT_EQ(back->height, 48);
  EXPECT_LT(MeanAbsDiff(src, *back), 3.0);
  // RGB order survives: the right edge is red-heavy, the bottom edge green-heavy.
  EXPECT_GT(Px(*back, 63, 0)[0], 230);
  EXPECT_LT(Px(*back, 63, 0)[1], 25);
  EXPECT_GT(Px(*back, 0, 47)[1], 230);

  // Lower quality -> smaller file.
  Result<std::vector<uint8_t>> small = EncodeJpeg(Gradient(256, 192), 20);
  Result<std::vector<uint8_t>> large = EncodeJpeg(Gradient(256, 192), 98);
  ASSERT_TRUE(small.ok() && large.ok());
  EXPECT_LT(small->size(), large->size());
}

TEST(JpegTest, CorruptBytesAreCorruption) {
  Result<std::vector<uint8_t>> bytes = EncodeJpeg(Gradient(64, 48), 90);
  ASSERT_TRUE(bytes.ok());

  std::vector<uint8_t> truncated(bytes->begin(), bytes->begin() + static_cast<long>(bytes->size() / 2));
  std::vector<uint8_t> random(2000);
  std::srand(3);
  for (uint8_t& b : random) b = static_cast<uint8_t>(std::rand() & 0xFF);
  std::vector<uint8_t> fake_header = random;  // a JPEG's framing around garbage
  fake_header[0] = 0xFF, fake_header[1] = 0xD8, fake_header[2] = 0xFF;
  fake_header[fake_header.size() - 2] = 0xFF, fake_header.back() = 0xD9;
  std::vector<uint8_t> scrambled = *bytes;  // header intact, the rest zeroed
  std::fill(scrambled.begin() + 20, scrambled.end() - 2, uint8_t{0});

  for (const std::vector<uint8_t>* bad : {&truncated, &random, &fake_header, &scrambled}) {
    Result<Frame> r = DecodeJpeg(*bad);
    ASSERT_FALSE(r.ok()) << "decoded " << r->width << "x" << r->height;
    EXPECT_TRUE(r.status().IsCorruption()) << r.status().ToString();
  }
  EXPECT_TRUE(DecodeJpeg(nullptr, 0).status().IsCorruption());
  EXPECT_TRUE(DecodeJpeg(bytes->data(), 3).status().IsCorruption());
}

TEST(JpegTest, BadEncodeArguments) {
  EXPECT_TRUE(EncodeJpeg(Gradient(8, 8), 0).status().IsInvalidArgument());
  EXPECT_TRUE(EncodeJpeg(Gradient(8, 8), 101).status().IsInvalidArgument());
  Frame broken = Gradient(8, 8);
  broken.rgb.pop_back();
  EXPECT_TRUE(EncodeJpeg(broken, 90).status().IsInvalidArgument());
  EXPECT_TRUE(EncodeJpeg(Frame{}, 90).status().IsInvalidArgument());
}

TEST(WriteImageTest, WritesReadableFilesAndReportsErrors) {
  const fs::path dir = fs::temp_directory_path() / ("kd_media_image_ops_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const Frame src = MakeFrame(10, 8, 255, 0, 0);
  const std::string png = (dir / "red.png").string();
  ASSERT_TRUE(WriteImage(png, src).ok());
  const cv::Mat back = cv::imread(png, cv::IMREAD_COLOR);  // BGR
  ASSERT_EQ(back.cols, 10);
  ASSERT_EQ(back.rows, 8);
  EXPECT_EQ(back.at<cv::Vec3b>(0, 0), cv::Vec3b(0, 0, 255));

  EXPECT_TRUE(WriteImage((dir / "red.unknown_ext").string(), src).IsInvalidArgument());
  EXPECT_EQ(WriteImage((dir / "missing_dir" / "red.png").string(), src).code(), Status::Code::kIOError);
  EXPECT_TRUE(WriteImage(png, Frame{}).IsInvalidArgument());
  fs::remove_all(dir);
}

TEST(PhotometricTest, BrightnessContrastSaturates) {
  const Frame src = MakeFrame(4, 4, 100, 200, 0);
  const Frame out = AdjustBrightnessContrast(src, 1.5, 10);
  EXPECT_EQ(out.width, 4);
  EXPECT_EQ(out.index, 7);
  EXPECT_EQ(out.rgb[0], 160);  // 1.5 * 100 + 10
  EXPECT_EQ(out.rgb[1], 255);  // 310 saturates
  EXPECT_EQ(out.rgb[2], 10);
  const Frame dark = AdjustBrightnessContrast(src, 1.0, -150);
  EXPECT_EQ(dark.rgb[0], 0);
  EXPECT_EQ(dark.rgb[1], 50);
  EXPECT_EQ(AdjustBrightnessContrast(src, 1.0, 0).rgb, src.rgb);
}

TEST(PhotometricTest, GaussianBlurSpreadsAndKeepsFlatAreas) {
  const Frame flat = MakeFrame(32, 32, 90, 90, 90);
  EXPECT_EQ(GaussianBlur(flat, 2.0).rgb, flat.rgb);
  EXPECT_EQ(GaussianBlur(flat, 0).rgb, flat.rgb);

  Frame dot = MakeFrame(33, 33, 0, 0, 0);
  std::fill_n(&dot.rgb[(16 * 33 + 16) * 3], 3, uint8_t{255});
  const Frame blurred = GaussianBlur(dot, 1.5);
  EXPECT_LT(Px(blurred, 16, 16)[0], 255);
  EXPECT_GT(Px(blurred, 17, 16)[0], 0);
  EXPECT_GT(Px(blurred, 16, 18)[1], 0);
  EXPECT_EQ(Px(blurred, 0, 0)[0], 0);
  int sum = 0;
  for (size_t i = 0; i < blurred.rgb.size(); i += 3) sum += blurred.rgb[i];
  EXPECT_NEAR(sum, 255, 20);  // mass is (roughly, after rounding) preserved
}

}  // namespace
}  // namespace kd::media
