// ImageNet-style image folders (torchvision's ImageFolder layout), streamed from disk: root/train/<class>/*,
// root/val/<class>/*, decoded with OpenCV on worker threads by an ImageFolderSource behind BatchLoader.
#pragma once

#include <pdeq/data/datasets.h>
#include <pdeq/data/loader.h>

#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace pdeq::data {
namespace detail {
class WorkerPool;
}

/// Per-channel mean and std of ImageNet's training set on [0, 1] RGB pixels (torchvision's constants).
inline const std::vector<double> kImageNetMean{0.485, 0.456, 0.406};
inline const std::vector<double> kImageNetStd{0.229, 0.224, 0.225};

/// The files of one split of an image folder: root/<split>/<class>/<file>, classes sorted by name (byte
/// order, as Python's sorted()), files sorted by name within each class, labels the class positions.
struct ImageFolderSplit {
  std::vector<std::string> files;  ///< full paths
  std::vector<int64_t> labels;     ///< in [0, classes.size())
  std::vector<std::string> classes;
  int64_t ignored_files = 0;  ///< files without an image extension, skipped while listing
  std::string name;           ///< e.g. "image_folder/train"

  int64_t size() const { return static_cast<int64_t>(files.size()); }
  /// Entries `indices` of this split (classes and name kept).
  ImageFolderSplit subset(const std::vector<int64_t>& indices) const;
};

/// Whether `path` has one of the image extensions read here: .jpg .jpeg .png .bmp (any letter case).
bool is_image_file(const std::string& path);

/// The sorted class folder names of `root`/train. Throws std::runtime_error naming the folder when
/// root/train is missing or holds no class folders (e.g. images directly in train/), or naming the link when
/// it holds a symbolic link that resolves to nothing.
std::vector<std::string> image_folder_classes(const std::string& root);

/// Lists root/<split>/<class>/<image files>. The split's class folders must be exactly `classes` (those of
/// train/); errors (std::runtime_error) name the folder: missing split folder, image files directly in the
/// split folder (ImageNet's flat val/ with a labels file must first be sorted into class folders), missing or
/// extra class folders, a class folder without images, a symbolic link among the class folders that resolves
/// to nothing (dangling or looping). Such a link among a class's files is listed like a file: with an image
/// name it fails when read (an unreadable image: an error naming it, or a counted skip with
/// skip_bad_images). Other entries (non-image files, nested folders) are ignored and counted in
/// ignored_files.
ImageFolderSplit scan_image_folder(const std::string& root, const std::string& split,
                                   const std::vector<std::string>& classes);

/// The image folder's DatasetInfo without listing any file: 3 channels, image_size x image_size, classes from
/// root/train, ImageNet mean/std. Throws c10::ValueError naming data.root when `root` is empty.
DatasetInfo image_folder_info(const std::string& root, int64_t image_size);

struct ImageFolderData {
  ImageFolderSplit train, val, test;
  DatasetInfo info;
};

/// data.dataset = "image_folder": lists root/train and root/val; val (held out for model selection) and
/// train are split from root/train exactly as load_image_data splits training files (data.val_size,
/// data.split_seed, data.limit_*), and root/val is the test split (first data.limit_test files).
ImageFolderData load_image_folder(const std::string& root, int64_t image_size, const SplitOptions& split);

/// A crop window in pixels.
struct CropBox {
  int64_t y = 0, x = 0, height = 0, width = 0;
};

/// (height, width) after torchvision's Resize(size): the shorter side becomes `size`, the other
/// floor(size * long / short).
std::pair<int64_t, int64_t> resized_shape(int64_t height, int64_t width, int64_t size);
/// torchvision's CenterCrop window (top = round((height - size) / 2), half to even as Python's round;
/// likewise left).
CropBox center_crop_box(int64_t height, int64_t width, int64_t size);

/// What ImageFolderSource does to every decoded image. Training (`train`): Resize(resize) ->
/// RandomCrop(image_size) -> horizontal flip with probability 1/2, or with random_resized_crop torchvision's
/// RandomResizedCrop(image_size, scale (0.08, 1), ratio (3/4, 4/3)) -> flip. Evaluation: Resize(resize) ->
/// CenterCrop(image_size). Then RGB, (x/255 - mean)/std per channel, float [3, image_size, image_size].
struct ImageTransformOptions {
  TORCH_ARG(int64_t, resize) = 256;      ///< shorter side after resizing (>= image_size)
  TORCH_ARG(int64_t, image_size) = 224;  ///< square crop
  TORCH_ARG(bool, train) = false;
  TORCH_ARG(bool, random_resized_crop) = false;
  TORCH_ARG(std::vector<double>, mean) = kImageNetMean;
  TORCH_ARG(std::vector<double>, std) = kImageNetStd;
  TORCH_ARG(int64_t, workers) = 0;  ///< decoding threads (0: one per core)
  /// false: an unreadable image is an error naming the file; true: it is left out of its batch, logged once
  /// and counted (skipped()).
  TORCH_ARG(bool, skip_bad_images) = false;
  /// A file whose header declares more pixels is unreadable (its error names the size), decoded never.
  TORCH_ARG(int64_t, max_pixels) = 89'478'485;  // PIL's Image.MAX_IMAGE_PIXELS
};

/// Decodes the files of an ImageFolderSplit with OpenCV (cv::imdecode of JPEG, PNG or BMP content, whose
/// declared size is checked against max_pixels first; grey and 16-bit images become 8-bit colour) on
/// `workers` threads, one image per task. Image i of a batch draws its crop and flip from a stream keyed by
/// (batch key, i), so a batch does not depend on the number of workers or their timing. Memory: the batches
/// BatchLoader prefetches plus one decoded image per worker.
///
/// OpenCV's own parallel loops are switched off process-wide (cv::setNumThreads(0)): the workers already
/// parallelise across images, and nested pools would oversubscribe the cores the trainer uses.
/// A build without OpenCV (PDEQ_WITH_OPENCV=OFF, compat::opencv_built()) cannot decode: the constructor
/// throws std::runtime_error naming the option.
///
/// Example:
///   auto data = load_image_folder("/data/imagenette", 224, SplitOptions{});
///   BatchLoader loader(std::make_shared<ImageFolderSource>(data.train, ImageTransformOptions().train(true)),
///                      LoaderOptions().batch_size(256).shuffle(true), seed);
class ImageFolderSource : public BatchSource {
 public:
  ImageFolderSource(ImageFolderSplit split, ImageTransformOptions options);
  ~ImageFolderSource() override;

  int64_t size() const override { return split_.size(); }
  /// float [n, 3, S, S] and labels; n < count only when skip_bad_images left files out. Throws
  /// std::runtime_error "<file>: cannot read ..." / "<file>: not a decodable image ..." otherwise (the first
  /// bad file of the batch).
  Batch get_batch(const int64_t* indices, int64_t count, uint64_t key, int64_t first = 0) override;

  /// Distinct files found unreadable so far (skip_bad_images).
  int64_t skipped() const;
  const ImageFolderSplit& split() const { return split_; }
  const ImageTransformOptions& options() const { return options_; }

 private:
  ImageFolderSplit split_;
  ImageTransformOptions options_;
  std::vector<float> table_;  ///< normalisation lookup, [c * 256 + pixel], RGB channel order
  std::unique_ptr<detail::WorkerPool> pool_;
  mutable std::mutex bad_mutex_;
  std::set<int64_t> bad_;  ///< indices of files found unreadable
};

}  // namespace pdeq::data
