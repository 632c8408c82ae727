// Segmentation folders: CamVid and Cityscapes listing and bad-input errors, the Cityscapes id mapping, the
// joint transforms (labels stay aligned with their pixels through scale, crop, padding and flip), class
// frequencies and median-frequency weights.
#include "segmentation_support.h"
#include "test_support.h"

#include <pdeq/data/loader.h>
#include <pdeq/data/segmentation.h>

#include <cmath>
#include <filesystem>
#include <fstream>

namespace pdeq::test {
namespace {

namespace fs = std::filesystem;
using data::SegmentationSource;
using data::SegmentationTransformOptions;

void expect_error_with(const std::function<void()>& run, const std::vector<std::string>& parts) {
  try {
    run();
    ADD_FAILURE() << "no error";
  } catch (const std::exception& e) {
    for (const auto& part : parts) EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

/// Plain [0, 1] pixels (mean 0, std 1), so that a value times 255 is the file's byte.
SegmentationTransformOptions plain() {
  return SegmentationTransformOptions().mean({0, 0, 0}).std({1, 1, 1}).workers(2);
}

TEST(SegmentationTest, CamVidListsPairedFramesOfEverySplit) {
  TempDir dir("seg");
  write_camvid(dir.path(), 3);
  const auto info = data::camvid_info(dir.str());
  EXPECT_EQ(info.info.num_classes, 11);
  EXPECT_EQ(info.ignore_index, 11);
  EXPECT_EQ(info.label_map[11], 11);
  EXPECT_EQ(info.label_map[12], data::kInvalidLabel);
  const auto all = data::load_segmentation(info, {}, false);
  ASSERT_EQ(all.train.size(), 3);
  EXPECT_EQ(all.val.size(), 3);
  EXPECT_EQ(all.test.size(), 3);
  EXPECT_EQ(fs::path(all.train.images[1]).filename(), "train_1.png");
  EXPECT_EQ(fs::path(all.train.labels[1]), dir.path() / "trainannot" / "train_1.png");
  data::SplitOptions limits;
  limits.limit_train = 2;
  limits.limit_test = 1;
  const auto few = data::load_segmentation(info, limits, false);
  EXPECT_EQ(few.train.size(), 2);
  EXPECT_EQ(few.val.size(), 3);
  EXPECT_EQ(few.test.size(), 1);
}

TEST(SegmentationTest, MissingLabelFileIsAnErrorNamingTheFrameOrACountedSkip) {
  TempDir dir("seg");
  write_camvid(dir.path(), 2);
  fs::remove(dir.path() / "valannot" / "val_1.png");
  const auto info = data::camvid_info(dir.str());
  expect_error_with([&] { data::load_segmentation(info, {}, false); },
                    {"val_1.png: no label file", (dir.path() / "valannot" / "val_1.png").string()});
  const auto skipped = data::load_segmentation(info, {}, true);
  EXPECT_EQ(skipped.val.size(), 1);
  EXPECT_EQ(skipped.val.missing_labels, 1);
  expect_error_with(
      [&] { data::load_segmentation(data::camvid_info((dir.path() / "none").string()), {}, false); },
      {"none/train: folder not found"});
}

TEST(SegmentationTest, SizeMismatchAndUnknownLabelIdsAreErrorsNamingTheFile) {
  TempDir dir("seg");
  write_camvid(dir.path(), 1);
  const auto info = data::camvid_info(dir.str());
  // Labels of another size than their frame.
  const fs::path bad_size = dir.path() / "valannot" / "val_0.png";
  cv::imwrite(bad_size.string(), cv::Mat(40, 64, CV_8UC1, cv::Scalar(1)));
  // A label value CamVid does not define.
  const fs::path bad_id = dir.path() / "testannot" / "test_0.png";
  cv::imwrite(bad_id.string(), cv::Mat(48, 64, CV_8UC1, cv::Scalar(12)));
  const auto all = data::load_segmentation(info, {}, false);
  const int64_t index = 0;
  SegmentationSource val(all.val, info, plain());
  expect_error_with([&] { val.get_batch(&index, 1, 0); }, {bad_size.string(), "64x40", "64x48"});
  SegmentationSource test(all.test, info, plain());
  expect_error_with([&] { test.get_batch(&index, 1, 0); },
                    {bad_id.string(), "value 12", "not a label id of camvid"});
  // skip_bad_images leaves the frame out of its batch and counts it.
  SegmentationSource skipping(all.test, info, plain().skip_bad_images(true));
  EXPECT_EQ(skipping.get_batch(&index, 1, 0).labels.size(0), 0);
  EXPECT_EQ(skipping.skipped(), 1);
  // A colour label file is refused too.
  cv::imwrite(bad_id.string(), cv::Mat(48, 64, CV_8UC3, cv::Scalar(1, 1, 1)));
  expect_error_with([&] { data::read_label_image(bad_id.string(), info, 1 << 20); },
                    {bad_id.string(), "8-bit single-channel"});
}

TEST(SegmentationTest, CityscapesIdsMapToTheNineteenTrainIds) {
  EXPECT_EQ(data::cityscapes_train_id(7), 0);     // road
  EXPECT_EQ(data::cityscapes_train_id(8), 1);     // sidewalk
  EXPECT_EQ(data::cityscapes_train_id(11), 2);    // building
  EXPECT_EQ(data::cityscapes_train_id(23), 10);   // sky
  EXPECT_EQ(data::cityscapes_train_id(26), 13);   // car
  EXPECT_EQ(data::cityscapes_train_id(33), 18);   // bicycle
  EXPECT_EQ(data::cityscapes_train_id(0), 255);   // unlabeled
  EXPECT_EQ(data::cityscapes_train_id(9), 255);   // parking
  EXPECT_EQ(data::cityscapes_train_id(29), 255);  // caravan
  EXPECT_EQ(data::cityscapes_train_id(34), data::kInvalidLabel);
  int evaluated = 0;
  for (int id = 0; id <= 33; ++id) evaluated += data::cityscapes_train_id(id) != 255 ? 1 : 0;
  EXPECT_EQ(evaluated, 19);
}

TEST(SegmentationTest, CityscapesLayoutReadsMappedLabels) {
  TempDir dir("cityscapes");
  for (const std::string split : {"train", "val"}) {
    for (const std::string city : {"aachen", "bremen"}) {
      for (int i = 0; i < 2; ++i) {
        const std::string stem = city + "_00000" + std::to_string(i) + "_000019";
        // label ids 0..33 through the block pattern
        write_segmentation_pair(dir.path() / "leftImg8bit" / split / city / (stem + "_leftImg8bit.png"),
                                dir.path() / "gtFine" / split / city / (stem + "_gtFine_labelIds.png"), 16,
                                32, i, 34, 0);
      }
    }
  }
  const auto info = data::cityscapes_info(dir.str());
  data::SplitOptions split;
  split.val_size = 1;
  const auto all = data::load_segmentation(info, split, false);
  EXPECT_EQ(all.train.size(), 3);
  EXPECT_EQ(all.val.size(), 1);
  EXPECT_EQ(all.test.size(), 4);
  EXPECT_NE(all.test.labels[0].find("gtFine/val/aachen/aachen_000000_000019_gtFine_labelIds.png"),
            std::string::npos);
  const auto raw = cv::imread(all.test.labels[0], cv::IMREAD_UNCHANGED);
  const auto mapped = data::read_label_image(all.test.labels[0], info, 1 << 20);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 32; ++x) {
      EXPECT_EQ(mapped.ids[static_cast<size_t>(y * 32 + x)], data::cityscapes_train_id(raw.at<uchar>(y, x)));
    }
  }
}

/// Every pixel of a batch whose label is a class and whose 3x3 neighbours share it has that class's colour
/// exactly (inside a block every resize reproduces the colour), padding is 0 with the ignore label, and
/// void pixels have class 0's colour. Returns how many pixels were checked.
int64_t check_aligned(const data::Batch& batch, int ignore) {
  const int64_t n = batch.images.size(0), h = batch.images.size(2), w = batch.images.size(3);
  const auto images = batch.images.mul(255).round().to(torch::kInt64);
  const auto img = images.accessor<int64_t, 4>();
  const auto lab = batch.labels.accessor<int64_t, 3>();
  int64_t checked = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t y = 1; y + 1 < h; ++y) {
      for (int64_t x = 1; x + 1 < w; ++x) {
        const int64_t k = lab[i][y][x];
        bool interior = true;
        for (int dy = -1; dy <= 1; ++dy) {
          for (int dx = -1; dx <= 1; ++dx) interior = interior && lab[i][y + dy][x + dx] == k;
        }
        if (!interior || k == ignore) continue;
        const cv::Vec3b bgr = class_colour(static_cast<int>(k));
        EXPECT_EQ(img[i][0][y][x], bgr[2]) << "frame " << i << " (" << y << ", " << x << ") class " << k;
        EXPECT_EQ(img[i][1][y][x], bgr[1]);
        EXPECT_EQ(img[i][2][y][x], bgr[0]);
        ++checked;
      }
    }
  }
  return checked;
}

TEST(SegmentationTest, JointTransformsKeepLabelsAlignedWithTheirPixels) {
  TempDir dir("seg");
  write_camvid(dir.path(), 4, 48, 64);
  const auto info = data::camvid_info(dir.str());
  const auto all = data::load_segmentation(info, {}, false);
  // Void blocks are coloured like class 0, so a class is checked only where it is not void: the ignore
  // label of the test below is CamVid's void (11), padding included.
  data::BatchLoader loader(
      std::make_shared<SegmentationSource>(all.train, info, plain().train(true).resize(48).crop_size(40)),
      data::LoaderOptions().batch_size(4).shuffle(true).prefetch(0), 7);
  int64_t checked = 0, padded = 0;
  for (int64_t epoch = 0; epoch < 6; ++epoch) {
    loader.start_epoch(epoch);
    while (auto batch = loader.next()) {
      ASSERT_EQ(batch->images.sizes(), (std::vector<int64_t>{4, 3, 40, 40}));
      ASSERT_EQ(batch->labels.sizes(), (std::vector<int64_t>{4, 40, 40}));
      checked += check_aligned(*batch, 11);
      // Padding: exactly 0 in every channel with the ignore label (a padded row or column is all padding).
      const auto zero = batch->images.abs().sum(1).eq(0);
      padded += zero.logical_and(batch->labels.eq(11)).sum().item<int64_t>();
    }
  }
  EXPECT_GT(checked, 6 * 4 * 40 * 40 / 4);  // a good share of the pixels is inside a block
  EXPECT_GT(padded, 0);                     // scales below 40/48 leave padding
  // Evaluation: the whole frame, resized to the shorter side, labels exactly the file's.
  SegmentationSource eval(all.test, info, plain().resize(48));
  EXPECT_EQ(eval.output_shape(), (std::pair<int64_t, int64_t>{48, 64}));
  const int64_t index = 2;
  const auto batch = eval.get_batch(&index, 1, 0);
  const auto raw = cv::imread(all.test.labels[2], cv::IMREAD_UNCHANGED);
  const auto expected = torch::from_blob(raw.data, {1, 48, 64}, torch::kUInt8).to(torch::kInt64);
  EXPECT_TRUE(batch.labels.equal(expected));
  EXPECT_GT(check_aligned(batch, 11), 48 * 64 / 3);  // 6x6 of each 8x8 block, less the void blocks
  // At half size (nearest labels, area-averaged pixels) the labels stay aligned.
  SegmentationSource half(all.test, info, plain().resize(24));
  EXPECT_EQ(half.output_shape(), (std::pair<int64_t, int64_t>{24, 32}));
  EXPECT_GT(check_aligned(half.get_batch(&index, 1, 0), 11), 100);
}

TEST(SegmentationTest, FlipMirrorsImageAndLabelsTogether) {
  TempDir dir("seg");
  write_camvid(dir.path(), 1, 48, 64);
  const auto info = data::camvid_info(dir.str());
  const auto all = data::load_segmentation(info, {}, false);
  // Scale 1 and a crop of the whole frame: each training batch is the frame or its mirror image.
  SegmentationSource train(all.train, info,
                           plain().train(true).resize(48).crop_size(48).scale_min(1).scale_max(1));
  SegmentationSource eval(all.train, info, plain().resize(48));
  const int64_t index = 0;
  const auto whole = eval.get_batch(&index, 1, 0);
  bool saw_flip = false, saw_plain = false;
  for (uint64_t key = 0; key < 16; ++key) {
    const auto batch = train.get_batch(&index, 1, key);
    // the window starts at column 0..16; find it by comparing with the frame's columns
    bool matched = false;
    for (int64_t x0 = 0; x0 <= 16 && !matched; ++x0) {
      const auto labels = whole.labels.slice(2, x0, x0 + 48);
      const auto images = whole.images.slice(3, x0, x0 + 48);
      if (batch.labels.equal(labels) && batch.images.equal(images)) {
        matched = saw_plain = true;
      } else if (batch.labels.equal(labels.flip(2)) && batch.images.equal(images.flip(3))) {
        matched = saw_flip = true;
      }
    }
    EXPECT_TRUE(matched) << "key " << key;
  }
  EXPECT_TRUE(saw_flip);
  EXPECT_TRUE(saw_plain);
}

TEST(SegmentationTest, MedianFrequencyWeightsByHand) {
  // Class 0: 30 pixels in frames of 100 + 100 pixels -> 0.15; class 1: 10 in a 100-pixel frame -> 0.1;
  // class 2: 60 of 100 -> 0.6; class 3 never. Median of (0.1, 0.15, 0.6) = 0.15.
  data::ClassFrequencies f;
  f.pixels = {30, 10, 60, 0};
  f.frame_pixels = {200, 100, 100, 0};
  const auto w = data::median_frequency_weights(f);
  EXPECT_DOUBLE_EQ(w[0], 1.0);
  EXPECT_DOUBLE_EQ(w[1], 1.5);
  EXPECT_DOUBLE_EQ(w[2], 0.25);
  EXPECT_EQ(w[3], 0.0);
}

TEST(SegmentationTest, ClassFrequenciesCountEveryLabelFile) {
  TempDir dir("seg");
  write_camvid(dir.path(), 2, 16, 16);
  const auto info = data::camvid_info(dir.str());
  const auto all = data::load_segmentation(info, {}, false);
  const auto f = data::class_frequencies(all.train, info, 2);
  std::vector<int64_t> pixels(11, 0), frame_pixels(11, 0);
  for (int seed = 0; seed < 2; ++seed) {
    std::vector<int64_t> counts(11, 0);
    int64_t counted = 0;
    for (int y = 0; y < 16; ++y) {
      for (int x = 0; x < 16; ++x) {
        const int k = block_class(y, x, seed, 11, 11);
        if (k == 11) continue;
        ++counts[static_cast<size_t>(k)];
        ++counted;
      }
    }
    for (size_t k = 0; k < 11; ++k) {
      pixels[k] += counts[k];
      if (counts[k] > 0) frame_pixels[k] += counted;
    }
  }
  EXPECT_EQ(f.pixels, pixels);
  EXPECT_EQ(f.frame_pixels, frame_pixels);
}

}  // namespace
}  // namespace pdeq::test
