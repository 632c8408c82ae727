// declared_image_dimensions: the size read from JPEG, PNG and BMP headers against OpenCV's own encodings,
// and headers that are cut short, hand-altered or of another format.
#include "test_support.h"

#include <pdeq/data/image_header.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <optional>
#include <string>
#include <vector>

namespace pdeq::test {
namespace {

using data::declared_image_dimensions;

std::vector<uchar> encode(const std::string& extension, int rows, int cols, int type = CV_8UC3) {
  cv::Mat image(rows, cols, type);
  cv::randu(image, 0, 255);
  std::vector<uchar> bytes;
  EXPECT_TRUE(cv::imencode(extension, image, bytes)) << extension;
  return bytes;
}

std::optional<data::ImageDimensions> declared(const std::vector<uchar>& bytes) {
  return declared_image_dimensions(bytes.data(), bytes.size());
}

/// Offset of the first SOF0 marker (0xFF 0xC0) in an encoded JPEG.
size_t start_of_frame(const std::vector<uchar>& jpeg) {
  for (size_t i = 0; i + 1 < jpeg.size(); ++i) {
    if (jpeg[i] == 0xFF && jpeg[i + 1] == 0xC0) return i;
  }
  ADD_FAILURE() << "no SOF0 marker";
  return 0;
}

TEST(ImageHeaderTest, SizesMatchWhatOpenCvEncoded) {
  for (const std::string extension : {".png", ".jpg", ".bmp"}) {
    for (const auto& [rows, cols] : std::vector<std::pair<int, int>>{{1, 1}, {5, 3}, {37, 200}, {301, 17}}) {
      for (const int type : {CV_8UC3, CV_8UC1}) {
        const auto size = declared(encode(extension, rows, cols, type));
        ASSERT_TRUE(size.has_value()) << extension << " " << rows << "x" << cols;
        EXPECT_EQ(size->width, cols) << extension;
        EXPECT_EQ(size->height, rows) << extension;
      }
    }
  }
}

TEST(ImageHeaderTest, TopDownBitmapsCountTheirHeightsMagnitude) {
  auto bmp = encode(".bmp", 7, 9);
  const int32_t top_down = -7;  // BITMAPINFOHEADER height at offset 22, little-endian
  for (int k = 0; k < 4; ++k) bmp[22 + k] = static_cast<uchar>(static_cast<uint32_t>(top_down) >> (8 * k));
  const auto size = declared(bmp);
  ASSERT_TRUE(size.has_value());
  EXPECT_EQ(size->width, 9);
  EXPECT_EQ(size->height, 7);
}

// The image_folder fuzzer's timeout: a 523-byte JPEG whose frame header declared 24609x12037 pixels behind 29
// bytes of garbage, which libjpeg skips with a warning ("extraneous bytes before marker 0xc0"). OpenCV
// allocated the whole frame (888 MB) and decoded it for 18 s under ASan.
TEST(ImageHeaderTest, JpegFrameHeaderIsFoundAsLibjpegFindsIt) {
  auto jpeg = encode(".jpg", 4, 6);
  const size_t sof = start_of_frame(jpeg);
  jpeg[sof + 5] = 0x2F;  // lines (height), big-endian
  jpeg[sof + 6] = 0x05;
  jpeg[sof + 7] = 0x60;  // samples per line (width)
  jpeg[sof + 8] = 0x21;
  jpeg.insert(jpeg.begin() + static_cast<std::ptrdiff_t>(sof), 29, uchar{0x0A});
  const auto size = declared(jpeg);
  ASSERT_TRUE(size.has_value());
  EXPECT_EQ(size->width, 24609);
  EXPECT_EQ(size->height, 12037);

  // Fill bytes before a marker and a stuffed zero change nothing either.
  auto filled = encode(".jpg", 4, 6);
  filled.insert(filled.begin() + static_cast<std::ptrdiff_t>(start_of_frame(filled)),
                {0xFF, 0x00, 0xFF, 0xFF});
  ASSERT_TRUE(declared(filled).has_value());
  EXPECT_EQ(declared(filled)->width, 6);
}

// The fuzzer's second timeout (with -len_control=0), 209 bytes: an APP0 segment whose length field says 1.
// libjpeg's skip_variable then skips nothing past the length bytes and finds the next marker by scanning,
// here a frame header declaring 23066x30786 pixels; OpenCV went out of memory allocating it.
TEST(ImageHeaderTest, JpegSegmentLengthsBelowTwoSkipOnlyTheLengthBytes) {
  auto jpeg = encode(".jpg", 4, 6);
  const size_t sof = start_of_frame(jpeg);
  jpeg[sof + 5] = 0x78;
  jpeg[sof + 6] = 0x42;
  jpeg[sof + 7] = 0x5A;
  jpeg[sof + 8] = 0x1A;
  jpeg.insert(jpeg.begin() + 2, {0xFF, 0xE0, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00});
  const auto size = declared(jpeg);
  ASSERT_TRUE(size.has_value());
  EXPECT_EQ(size->width, 23066);
  EXPECT_EQ(size->height, 30786);
  // libjpeg agrees (decoded at 1/8 scale, its data missing, so as not to allocate 700 Mpixels here).
  const cv::Mat decoded = cv::imdecode(jpeg, cv::IMREAD_REDUCED_GRAYSCALE_8);
  EXPECT_EQ(decoded.cols, (23066 + 7) / 8);
  EXPECT_EQ(decoded.rows, (30786 + 7) / 8);
}

TEST(ImageHeaderTest, CutShortOrOtherFormatsAreUnknown) {
  const auto jpeg = encode(".jpg", 4, 6);
  const size_t sof = start_of_frame(jpeg);
  // Every prefix that ends before the frame header's width is unknown; the first that holds it is not.
  for (size_t n = 0; n < sof + 9; ++n) {
    EXPECT_FALSE(declared_image_dimensions(jpeg.data(), n).has_value()) << n;
  }
  EXPECT_TRUE(declared_image_dimensions(jpeg.data(), sof + 9).has_value());

  const auto png = encode(".png", 4, 6);
  for (size_t n = 0; n < 24; ++n) EXPECT_FALSE(declared_image_dimensions(png.data(), n).has_value()) << n;
  const auto bmp = encode(".bmp", 4, 6);
  for (size_t n = 0; n < 26; ++n) EXPECT_FALSE(declared_image_dimensions(bmp.data(), n).has_value()) << n;

  // A scan before any frame header, a PNG without IHDR first, and other formats: nothing to read.
  const std::vector<uchar> scan_first{0xFF, 0xD8, 0xFF, 0xDA, 0x00, 0x08, 0x01, 0x01, 0x00, 0x00, 0x3F, 0x00};
  EXPECT_FALSE(declared(scan_first).has_value());
  auto no_ihdr = png;
  no_ihdr[12] = 'i';
  EXPECT_FALSE(declared(no_ihdr).has_value());
  const std::string gif = "GIF89a\x06\x00\x04\x00";
  EXPECT_FALSE(
      declared_image_dimensions(reinterpret_cast<const uint8_t*>(gif.data()), gif.size()).has_value());
}

}  // namespace
}  // namespace pdeq::test
