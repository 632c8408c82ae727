// Image folders: listing and layout errors, the transforms' sizes and values, ImageFolderSource behind
// BatchLoader (determinism across worker counts, resume, corrupt files). Trees are written with OpenCV into a
// temporary folder.
#include "test_support.h"

#include <pdeq/config/config.h>
#include <pdeq/data/image_folder.h>
#include <pdeq/data/loader.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>

namespace pdeq::test {
namespace {

namespace fs = std::filesystem;
using data::BatchLoader;
using data::ImageFolderSource;
using data::ImageTransformOptions;
using data::LoaderOptions;

struct ImageFolderTest : SeedingFixture {};

/// An image whose pixel (y, x) has BGR (seed + y, seed + 2x, seed + x + y) mod 256: distinct enough that a
/// wrong crop, flip or channel order changes the values.
cv::Mat pattern(int height, int width, int seed) {
  cv::Mat image(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      image.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uchar>((seed + y) % 256), static_cast<uchar>((seed + 2 * x) % 256),
                    static_cast<uchar>((seed + x + y) % 256));
    }
  }
  return image;
}

void write(const fs::path& path, const cv::Mat& image) {
  fs::create_directories(path.parent_path());
  ASSERT_TRUE(cv::imwrite(path.string(), image)) << path;
}

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

/// root/{train,val}/<class>/<i>.{png,jpg}: `per_class` training and 2 validation images per class, of
/// varying sizes (all at least 24 pixels on the shorter side).
void make_tree(const fs::path& root, const std::vector<std::string>& classes, int per_class) {
  for (size_t c = 0; c < classes.size(); ++c) {
    for (int i = 0; i < per_class; ++i) {
      const auto ext = i % 2 == 0 ? ".png" : ".jpg";
      write(root / "train" / classes[c] / (std::to_string(i) + ext),
            pattern(24 + 3 * i, 30 + 2 * i, static_cast<int>(10 * c + i)));
    }
    for (int i = 0; i < 2; ++i) {
      write(root / "val" / classes[c] / ("v" + std::to_string(i) + ".png"), pattern(28, 26, 50 + i));
    }
  }
}

/// The folder at 20x20 crops, everything in train/ for training unless `val_size` is held out.
data::ImageFolderData load_folder(const std::string& root, int64_t val_size = 0) {
  data::SplitOptions split;
  split.val_size = val_size;
  return data::load_image_folder(root, /*image_size=*/20, split);
}

std::vector<data::Batch> epoch(BatchLoader& loader, int64_t e, int64_t first = 0) {
  loader.start_epoch(e, first);
  std::vector<data::Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

bool same(const std::vector<data::Batch>& a, const std::vector<data::Batch>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!torch::equal(a[i].images, b[i].images) || !torch::equal(a[i].labels, b[i].labels)) return false;
  }
  return true;
}

TEST_F(ImageFolderTest, ClassesSortedFilesSortedOthersIgnored) {
  TempDir dir("imgfolder");
  make_tree(dir.path(), {"zebra", "apple", "Mango"}, 3);
  write_text(dir.path() / "train" / "apple" / "notes.txt", "not an image");
  fs::create_directories(dir.path() / "train" / "apple" / "nested");
  write_text(dir.path() / "train" / "LICENSE", "x");
  write(dir.path() / "train" / "zebra" / "UPPER.JPEG", pattern(24, 24, 1));

  const auto classes = data::image_folder_classes(dir.str());
  EXPECT_EQ(classes, (std::vector<std::string>{"Mango", "apple", "zebra"}));  // byte order, as sorted()
  const auto split = data::scan_image_folder(dir.str(), "train", classes);
  ASSERT_EQ(split.size(), 10);
  EXPECT_EQ(split.ignored_files, 3);  // notes.txt, nested/, LICENSE
  EXPECT_EQ(split.labels, (std::vector<int64_t>{0, 0, 0, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(fs::path(split.files[0]).filename(), "0.png");
  EXPECT_EQ(fs::path(split.files[1]).filename(), "1.jpg");
  EXPECT_EQ(fs::path(split.files[6]).filename(), "0.png");
  EXPECT_EQ(fs::path(split.files[9]).filename(), "UPPER.JPEG");
  EXPECT_TRUE(data::is_image_file("a/b.Png"));
  EXPECT_FALSE(data::is_image_file("a/b.gif"));

  // load_image_folder: the held-out val comes from train/ (split_seed), the test split is val/.
  const auto folder = load_folder(dir.str(), /*val_size=*/4);
  EXPECT_EQ(folder.train.size(), 6);
  EXPECT_EQ(folder.val.size(), 4);
  EXPECT_EQ(folder.test.size(), 6);
  EXPECT_EQ(folder.info.num_classes, 3);
  EXPECT_EQ(folder.info.height, 20);
  std::set<std::string> seen(folder.train.files.begin(), folder.train.files.end());
  seen.insert(folder.val.files.begin(), folder.val.files.end());
  EXPECT_EQ(seen.size(), 10u);  // disjoint, together all of train/
}

TEST_F(ImageFolderTest, LayoutErrorsNameTheFolder) {
  TempDir dir("imgfolder_err");
  const std::string root = dir.str();
  PDEQ_ASSERT_THROWS_WITH(data::image_folder_classes(root), root + "/train: folder not found");

  write(dir.path() / "train" / "a.jpg", pattern(24, 24, 0));
  PDEQ_ASSERT_THROWS_WITH(data::image_folder_classes(root), root + "/train: no class folders");

  make_tree(dir.path(), {"cat", "dog"}, 2);
  const auto classes = data::image_folder_classes(root);
  fs::remove_all(dir.path() / "val");
  PDEQ_ASSERT_THROWS_WITH(data::scan_image_folder(root, "val", classes), root + "/val: folder not found");

  // ImageNet's original val/: flat images plus a labels file.
  write(dir.path() / "val" / "ILSVRC2012_val_00000001.JPEG", pattern(24, 24, 0));
  write_text(dir.path() / "val" / "labels.txt", "65\n");
  PDEQ_ASSERT_THROWS_WITH(data::scan_image_folder(root, "val", classes),
                          root + "/val: holds 1 image files but no class folders");

  fs::remove_all(dir.path() / "val");
  write(dir.path() / "val" / "cat" / "x.png", pattern(24, 24, 0));
  write(dir.path() / "val" / "cow" / "x.png", pattern(24, 24, 0));
  PDEQ_ASSERT_THROWS_WITH(
      data::scan_image_folder(root, "val", classes),
      root + "/val: class folders differ from train/'s; missing: dog; not in train/: cow");

  fs::create_directories(dir.path() / "train" / "eel");
  write_text(dir.path() / "train" / "eel" / "readme.md", "no images");
  PDEQ_ASSERT_THROWS_WITH(data::scan_image_folder(root, "train", data::image_folder_classes(root)),
                          root + "/train/eel: no image files");
}

TEST_F(ImageFolderTest, ConfigKeysAreValidated) {
  PDEQ_ASSERT_THROWS_WITH(config::parse_config({{"data", {{"dataset", "image_folder"}}}}, "x.json"),
                          "x.json: data.root: expected the folder holding train/<class>/ and val/<class>/");
  PDEQ_ASSERT_THROWS_WITH(
      config::parse_config({{"data", {{"dataset", "image_folder"}, {"root", "/d"}, {"image_size", 300}}}},
                           "x.json"),
      "x.json: data.image_size: expected an integer <= data.resize (256), got 300");
  PDEQ_ASSERT_THROWS_WITH(config::parse_config({{"data", {{"workers", -1}}}}, "x.json"),
                          "x.json: data.workers");
  const auto config = config::parse_config(
      {{"data", {{"dataset", "image_folder"}, {"root", "/d"}, {"workers", 3}, {"skip_bad_images", true}}}},
      "x");
  EXPECT_EQ(config.data.workers, 3);
  EXPECT_EQ(config.data.resize, 256);
  EXPECT_EQ(config.data.image_size, 224);
  EXPECT_TRUE(config.data.skip_bad_images);
}

TEST_F(ImageFolderTest, TransformSizes) {
  // torchvision Resize(256): shorter side 256, the other floor(256 * long / short).
  EXPECT_EQ(data::resized_shape(500, 375, 256), std::make_pair(int64_t{341}, int64_t{256}));
  EXPECT_EQ(data::resized_shape(375, 500, 256), std::make_pair(int64_t{256}, int64_t{341}));
  EXPECT_EQ(data::resized_shape(100, 100, 256), std::make_pair(int64_t{256}, int64_t{256}));
  // CenterCrop(224) of 256 x 341: top 16, left round(58.5) = 58 (half to even, as Python).
  const auto box = data::center_crop_box(256, 341, 224);
  EXPECT_EQ(box.y, 16);
  EXPECT_EQ(box.x, 58);
  EXPECT_EQ(box.height, 224);
  EXPECT_EQ(box.width, 224);
}

TEST_F(ImageFolderTest, EvalIsCentreCropInRgbNormalised) {
  TempDir dir("imgfolder_eval");
  // 24 x 30 PNG (lossless); resize 24 leaves it as is, the 20 x 20 centre crop starts at (2, 5).
  const cv::Mat image = pattern(24, 30, 7);
  write(dir.path() / "c" / "a.png", image);
  data::ImageFolderSplit split;
  split.files = {(dir.path() / "c" / "a.png").string()};
  split.labels = {0};
  split.classes = {"c"};
  auto source = std::make_shared<ImageFolderSource>(split, ImageTransformOptions().resize(24).image_size(20));
  const int64_t index = 0;
  const auto batch = source->get_batch(&index, 1, 123);
  ASSERT_EQ(batch.images.sizes(), torch::IntArrayRef({1, 3, 20, 20}));
  const auto& mean = data::kImageNetMean;
  const auto& std = data::kImageNetStd;
  const auto img = batch.images[0];
  for (int y : {0, 7, 19}) {
    for (int x : {0, 11, 19}) {
      const auto bgr = image.at<cv::Vec3b>(y + 2, x + 5);
      for (int c = 0; c < 3; ++c) {
        const double expected = (bgr[2 - c] / 255.0 - mean[c]) / std[c];
        EXPECT_NEAR(img[c][y][x].item<double>(), expected, 1e-5) << y << "," << x << "," << c;
      }
    }
  }
}

TEST_F(ImageFolderTest, DeterministicAcrossWorkersPrefetchAndResume) {
  TempDir dir("imgfolder_det");
  make_tree(dir.path(), {"a", "b"}, 7);
  const auto folder = load_folder(dir.str());
  const auto make = [&](int64_t workers, int64_t prefetch, bool rrc) {
    auto source = std::make_shared<ImageFolderSource>(
        folder.train,
        ImageTransformOptions().resize(24).image_size(20).train(true).random_resized_crop(rrc).workers(
            workers));
    return std::make_unique<BatchLoader>(source,
                                         LoaderOptions().batch_size(4).shuffle(true).prefetch(prefetch),
                                         /*seed=*/5);
  };
  for (bool rrc : {false, true}) {
    auto one = make(1, 0, rrc), three = make(3, 2, rrc);
    const auto e0 = epoch(*one, 0), e1 = epoch(*one, 1);
    ASSERT_EQ(e0.size(), 4u);  // 14 images, batches of 4
    EXPECT_EQ(e0[0].images.sizes(), torch::IntArrayRef({4, 3, 20, 20}));
    EXPECT_EQ(e0[3].images.size(0), 2);
    EXPECT_TRUE(same(e0, epoch(*three, 0))) << "rrc " << rrc;
    EXPECT_TRUE(same(e1, epoch(*three, 1))) << "rrc " << rrc;
    EXPECT_FALSE(same(e0, e1));  // a new order and new crops every epoch
    // Resume at batch 2 of epoch 1: exactly the uninterrupted batches 2 and 3.
    const auto resumed = epoch(*three, 1, 2);
    EXPECT_TRUE(same(resumed, {e1[2], e1[3]}));
  }
}

TEST_F(ImageFolderTest, ShardsOfABatchConcatenateToTheUnshardedBatch) {
  TempDir dir("imgfolder_shard");
  make_tree(dir.path(), {"a", "b"}, 7);
  const auto folder = load_folder(dir.str());
  const auto make = [&](data::Shard shard) {
    auto source = std::make_shared<ImageFolderSource>(
        folder.train, ImageTransformOptions().resize(24).image_size(20).train(true).workers(2));
    return std::make_unique<BatchLoader>(
        source, LoaderOptions().batch_size(6).shuffle(true).prefetch(0).shard(shard), /*seed=*/5);
  };
  auto whole = make({0, 1}), rank0 = make({0, 2}), rank1 = make({1, 2});
  const auto expected = epoch(*whole, 1), first = epoch(*rank0, 1), second = epoch(*rank1, 1);
  ASSERT_EQ(expected.size(), 3u);  // 14 images: 6, 6, 2
  ASSERT_EQ(first.size(), 3u);
  ASSERT_EQ(second.size(), 3u);
  for (size_t k = 0; k < expected.size(); ++k) {
    // Rows [n r / 2, n (r + 1) / 2) with the crops and flips the whole batch draws for those positions.
    EXPECT_TRUE(torch::equal(torch::cat({first[k].images, second[k].images}), expected[k].images)) << k;
    EXPECT_TRUE(torch::equal(torch::cat({first[k].labels, second[k].labels}), expected[k].labels)) << k;
  }
}

TEST_F(ImageFolderTest, CorruptImageIsAnErrorOrASkip) {
  TempDir dir("imgfolder_bad");
  make_tree(dir.path(), {"a", "b"}, 3);
  const auto bad = dir.path() / "train" / "a" / "9_bad.jpg";
  write_text(bad, "this is not a JPEG");
  // Listed in file order (load_image_folder would shuffle train/ into its train/val split).
  const auto files = data::scan_image_folder(dir.str(), "train", data::image_folder_classes(dir.str()));
  ASSERT_EQ(files.size(), 7);
  std::vector<int64_t> all(7);
  std::iota(all.begin(), all.end(), 0);

  ImageFolderSource strict(files, ImageTransformOptions().resize(24).image_size(20).workers(2));
  PDEQ_ASSERT_THROWS_WITH(strict.get_batch(all.data(), 7, 0), bad.string() + ": not a decodable image");

  ImageFolderSource lenient(
      files, ImageTransformOptions().resize(24).image_size(20).workers(2).skip_bad_images(true));
  const auto batch = lenient.get_batch(all.data(), 7, 0);
  EXPECT_EQ(batch.images.size(0), 6);
  EXPECT_EQ(batch.labels.size(0), 6);
  EXPECT_EQ(lenient.skipped(), 1);
  lenient.get_batch(all.data(), 7, 1);
  EXPECT_EQ(lenient.skipped(), 1);  // distinct files
  // The good images are the same as without the bad one.
  std::vector<int64_t> good{0, 1, 2, 4, 5, 6};
  const int64_t bad_index = 3;
  ASSERT_EQ(fs::path(files.files[bad_index]), bad);
  EXPECT_TRUE(torch::equal(batch.images, strict.get_batch(good.data(), 6, 0).images));
}

// Dangling and looping symbolic links are listed like files, so that an image name among them fails when
// read (an error naming the link) or, with data.skip_bad_images, is skipped and counted with a warning; they
// are never silently dropped. A link among the class folders is an error at once (it may be a class).
TEST_F(ImageFolderTest, DanglingAndLoopingSymlinksAreErrorsOrCountedSkips) {
  TempDir dir("imgfolder_links");
  make_tree(dir.path(), {"a", "b"}, 3);
  const fs::path a = dir.path() / "train" / "a";
  const auto dangling = a / "7_dangling.jpg";
  const auto loop = a / "8_loop.png";
  fs::create_symlink(a / "missing.jpg", dangling);
  fs::create_symlink(loop, loop);  // a link to itself
  fs::create_symlink("9_b.png", a / "9_a.png");
  fs::create_symlink("9_a.png", a / "9_b.png");         // a loop of two links
  fs::create_symlink(a / "gone.txt", a / "notes.txt");  // no image name: ignored, and counted
  fs::create_symlink(".", a / "self");                  // a folder link to its own folder: not followed
  fs::create_symlink(a / "0.png", a / "6_good.png");    // a link to an image is an image

  const auto classes = data::image_folder_classes(dir.str());
  const auto files = data::scan_image_folder(dir.str(), "train", classes);
  ASSERT_EQ(files.size(), 3 + 5 + 3);
  EXPECT_EQ(files.ignored_files, 2);  // notes.txt, self/
  std::vector<std::string> names;
  for (int64_t i = 0; i < 8; ++i)
    names.push_back(fs::path(files.files[static_cast<size_t>(i)]).filename().string());
  EXPECT_EQ(names, (std::vector<std::string>{"0.png", "1.jpg", "2.png", "6_good.png", "7_dangling.jpg",
                                             "8_loop.png", "9_a.png", "9_b.png"}));
  std::vector<int64_t> all(static_cast<size_t>(files.size()));
  std::iota(all.begin(), all.end(), 0);
  const auto options = ImageTransformOptions().resize(24).image_size(20).workers(2);

  ImageFolderSource strict(files, options);
  PDEQ_ASSERT_THROWS_WITH(strict.get_batch(all.data(), files.size(), 0),
                          dangling.string() + ": cannot open image file: dangling symbolic link to '" +
                              (a / "missing.jpg").string() + "' (its target does not exist)");
  std::vector<int64_t> loop_only{5};
  PDEQ_ASSERT_THROWS_WITH(
      strict.get_batch(loop_only.data(), 1, 0),
      loop.string() + ": cannot open image file: symbolic link to '" + loop.string() + "' in a loop");
  std::vector<int64_t> good_link{3};
  EXPECT_EQ(strict.get_batch(good_link.data(), 1, 0).images.size(0), 1);

  ImageFolderSource lenient(files, ImageTransformOptions(options).skip_bad_images(true));
  EXPECT_EQ(lenient.get_batch(all.data(), files.size(), 0).images.size(0), files.size() - 4);
  EXPECT_EQ(lenient.skipped(), 4);

  // Among the class folders: an error naming the link, for train/ (the classes) and for val/.
  fs::create_symlink(dir.path() / "nowhere", dir.path() / "val" / "c");
  PDEQ_ASSERT_THROWS_WITH(data::scan_image_folder(dir.str(), "val", classes),
                          (dir.path() / "val" / "c").string() + ": dangling symbolic link to");
  fs::create_symlink("d", dir.path() / "train" / "d");
  PDEQ_ASSERT_THROWS_WITH(data::image_folder_classes(dir.str()),
                          (dir.path() / "train" / "d").string() + ": symbolic link to 'd' in a loop");
}

// The image_folder fuzzer's timeout, through the reader: a small JPEG whose header declares 24609x12037
// pixels is refused before OpenCV allocates the frame; the limit is data.max_image_pixels.
TEST_F(ImageFolderTest, ImagesDeclaringTooManyPixelsAreRefusedUnread) {
  TempDir dir("imgfolder_bomb");
  make_tree(dir.path(), {"a", "b"}, 3);
  std::vector<uchar> jpeg;
  ASSERT_TRUE(cv::imencode(".jpg", pattern(24, 30, 1), jpeg));
  size_t sof = 0;
  while (!(jpeg[sof] == 0xFF && jpeg[sof + 1] == 0xC0)) ++sof;
  const std::vector<uchar> huge{0x2F, 0x05, 0x60, 0x21};  // lines 12037, samples per line 24609
  std::copy(huge.begin(), huge.end(), jpeg.begin() + static_cast<std::ptrdiff_t>(sof + 5));
  const auto bomb = dir.path() / "train" / "a" / "9_bomb.jpg";
  std::ofstream(bomb, std::ios::binary)
      .write(reinterpret_cast<const char*>(jpeg.data()), static_cast<std::streamsize>(jpeg.size()));
  const auto files = data::scan_image_folder(dir.str(), "train", data::image_folder_classes(dir.str()));
  ASSERT_EQ(files.size(), 7);
  std::vector<int64_t> all(7);
  std::iota(all.begin(), all.end(), 0);
  const auto options = ImageTransformOptions().resize(24).image_size(20).workers(2);
  EXPECT_EQ(options.max_pixels(), 89478485);  // PIL's Image.MAX_IMAGE_PIXELS

  ImageFolderSource strict(files, options);
  PDEQ_ASSERT_THROWS_WITH(
      strict.get_batch(all.data(), 7, 0),
      bomb.string() +
          ": declares a 24609x12037 image, more than data.max_image_pixels = " + "89478485 pixels");
  ImageFolderSource lenient(files, ImageTransformOptions(options).skip_bad_images(true));
  EXPECT_EQ(lenient.get_batch(all.data(), 7, 0).images.size(0), 6);
  EXPECT_EQ(lenient.skipped(), 1);

  // The limit is inclusive: the 24x30 training images (the first is 24x30, then 27x32, 30x34) pass at
  // exactly their pixel count and are refused one pixel below it.
  std::vector<int64_t> first{0};
  ImageFolderSource at_limit(files, ImageTransformOptions(options).max_pixels(24 * 30));
  EXPECT_EQ(at_limit.get_batch(first.data(), 1, 0).images.size(0), 1);
  ImageFolderSource below(files, ImageTransformOptions(options).max_pixels(24 * 30 - 1));
  PDEQ_ASSERT_THROWS_WITH(below.get_batch(first.data(), 1, 0), "declares a 30x24 image");

  // Content of another format OpenCV reads (a PPM header is text: "P6\n30000 30000\n255\n") is not decoded
  // whatever its extension: only JPEG, PNG and BMP sizes are checked.
  const auto disguised = dir.path() / "train" / "a" / "0.png";
  std::ofstream(disguised, std::ios::binary | std::ios::trunc) << "P6\n30000 30000\n255\n"
                                                               << std::string(64, 'x');
  PDEQ_ASSERT_THROWS_WITH(strict.get_batch(first.data(), 1, 0),
                          disguised.string() + ": not a decodable image (no JPEG, PNG or BMP header");

  PDEQ_ASSERT_THROWS_WITH(config::parse_config({{"data", {{"max_image_pixels", 0}}}}, "x.json"),
                          "x.json: data.max_image_pixels");
  EXPECT_EQ(config::parse_config({{"data", {{"max_image_pixels", 1000}}}}, "x").data.max_image_pixels, 1000);
}

}  // namespace
}  // namespace pdeq::test
