// The image-folder reader: listing root/{train,val}/<class>/ and decoding, resizing, cropping and normalising
// whatever bytes an image file holds (OpenCV's decoders included, as a user's folder would feed them).
#include <pdeq/data/datasets.h>
#include <pdeq/data/image_folder.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cstdlib>
#include <numeric>

#include "fuzz_support.h"

namespace {

const char* const kExtensions[] = {".png", ".jpg", ".bmp", ".jpeg"};

/// Options byte: bit 0 random_resized_crop, bit 1 skip_bad_images, bits 2-3 the file extension, bits 4-7 the
/// crop size (1..16; resize = crop + 1).
std::string seed(uint8_t options, const std::string& extension, int rows, int cols) {
  cv::Mat image(rows, cols, CV_8UC3);
  cv::randu(image, 0, 255);
  std::vector<uchar> bytes;
  cv::imencode(extension, image, bytes);
  return std::string(1, static_cast<char>(options)) + std::string(bytes.begin(), bytes.end());
}

}  // namespace

// PDEQ_FUZZ_SEED_DIR=<dir>: write the seed inputs there (small valid PNG, JPEG and BMP files) and exit.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* seeds = std::getenv("PDEQ_FUZZ_SEED_DIR")) {
    const std::filesystem::path dir(seeds);
    pdeq::fuzz::write_file(dir / "png_1x1", seed(0x30 | 0 << 2, ".png", 1, 1));
    pdeq::fuzz::write_file(dir / "jpg_5x3", seed(0x41 | 1 << 2, ".jpg", 5, 3));
    pdeq::fuzz::write_file(dir / "bmp_2x9", seed(0x72 | 2 << 2, ".bmp", 2, 9));
    pdeq::fuzz::write_file(dir / "png_16x16", seed(0xf3 | 0 << 2, ".png", 16, 16));
    std::exit(0);
  }
  return 0;
}

// Input: the options byte, then the bytes of train/a/0<ext> and val/a/0<ext>; train/b/ and val/b/ hold a
// valid 4x4 PNG so that both splits have two classes.
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t options = data[0];
  const std::string extension = kExtensions[(options >> 2) & 3];
  const auto root = pdeq::fuzz::scratch("image_folder");
  static const std::string valid = seed(0, ".png", 4, 4).substr(1);
  const std::string image(reinterpret_cast<const char*>(data + 1), size - 1);
  for (const char* split : {"train", "val"}) {
    std::filesystem::remove_all(root / split);
    std::filesystem::create_directories(root / split / "a");
    std::filesystem::create_directories(root / split / "b");
    pdeq::fuzz::write_file(root / split / "a" / ("0" + extension), image);
    pdeq::fuzz::write_file(root / split / "b" / "0.png", valid);
  }
  pdeq::data::SplitOptions split;
  split.val_size = 0;
  const int64_t image_size = 1 + (options >> 4), resize = image_size + 1;
  pdeq::fuzz::expect_clean_rejection([&] {
    const auto folder = pdeq::data::load_image_folder(root.string(), image_size, split);
    for (const bool train : {true, false}) {
      pdeq::data::ImageFolderSource source(train ? folder.train : folder.test,
                                           pdeq::data::ImageTransformOptions()
                                               .resize(resize)
                                               .image_size(image_size)
                                               .train(train)
                                               .random_resized_crop(options & 1)
                                               .skip_bad_images(options & 2)
                                               // 4 Mpixel decodes stay well inside libFuzzer's 10-s
                                               // timeout under ASan; larger declared sizes take the
                                               // rejection path (the default limit is a unit test's).
                                               .max_pixels(int64_t{1} << 22)
                                               .workers(1));
      std::vector<int64_t> indices(static_cast<size_t>(source.size()));
      std::iota(indices.begin(), indices.end(), 0);
      const auto batch = source.get_batch(indices.data(), source.size(), /*key=*/7);
      // A batch is either whole or, with skip_bad_images, without the undecodable file; never garbage.
      const auto n = batch.labels.size(0);
      if (n < 1 || n > source.size() || batch.images.size(0) != n || batch.images.size(1) != 3 ||
          batch.images.size(2) != image_size || batch.images.size(3) != image_size ||
          !batch.images.isfinite().all().item<bool>()) {
        std::abort();
      }
    }
  });
  return 0;
}
