// Semantic segmentation data streamed from disk: CamVid's folders (<split>/X.jpg|png + <split>annot/X.png)
// and Cityscapes' (leftImg8bit/ + gtFine/ labelIds mapped to the 19 train ids), decoded with OpenCV on worker
// threads by a SegmentationSource behind BatchLoader, with transforms that move image and labels together.
#pragma once

#include <pdeq/data/datasets.h>
#include <pdeq/data/image_folder.h>
#include <pdeq/data/loader.h>

#include <torch/arg.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace pdeq::data {

/// The folder layouts read here.
enum class SegmentationLayout {
  kCamVid,      ///< root/<split>/X.{jpg,png}, labels root/<split>annot/X.png; ids 0..10, 11 = void (ignored)
  kCityscapes,  ///< root/leftImg8bit/<split>/<city>/*_leftImg8bit.png, root/gtFine/<split>/<city>/
                ///< *_gtFine_labelIds.png; label ids 0..33 -> 19 train ids, the rest 255 (ignored)
};

/// Marks a raw label value that the dataset does not define (an error when read).
constexpr int16_t kInvalidLabel = -1;

/// What pdeq knows about a segmentation dataset before reading a pixel.
struct SegmentationInfo {
  DatasetInfo info;  ///< name, root, 3 channels, classes, ImageNet mean/std; height/width 0 (per frame)
  SegmentationLayout layout = SegmentationLayout::kCamVid;
  int64_t ignore_index = 255;  ///< label of the pixels that no loss or score counts
  std::vector<std::string> class_names;
  /// Raw value of a label file's pixel -> class id, ignore_index or kInvalidLabel.
  std::array<int16_t, 256> label_map{};
};

SegmentationInfo camvid_info(const std::string& root);
SegmentationInfo cityscapes_info(const std::string& root);

/// Cityscapes' labelId -> trainId (cityscapesScripts' labels.py): the 19 evaluated classes get 0..18, the
/// other ids in 0..33 get 255; any other value is kInvalidLabel.
int16_t cityscapes_train_id(int64_t label_id);

/// Frames and their label files, pairwise.
struct SegmentationSplit {
  std::vector<std::string> images, labels;  ///< full paths
  std::string name;                         ///< e.g. "camvid/train"
  int64_t missing_labels = 0;               ///< frames left out for lack of a label file (skip_bad_images)

  int64_t size() const { return static_cast<int64_t>(images.size()); }
  SegmentationSplit subset(const std::vector<int64_t>& indices) const;
};

/// Lists one split. CamVid: root/<split>/ image files (sorted) and root/<split>annot/<stem>.png; Cityscapes:
/// root/leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png and root/gtFine/<split>/<city>/
/// <stem>_gtFine_labelIds.png (cities and files sorted). Throws std::runtime_error naming the folder when it
/// is missing or holds no frames, and naming the frame and the label file it expected when one is missing,
/// unless `skip_missing` (then the frame is left out and counted in missing_labels).
SegmentationSplit scan_segmentation(const SegmentationInfo& info, const std::string& split,
                                    bool skip_missing);

struct SegmentationData {
  SegmentationSplit train, val, test;
  SegmentationInfo info;
};

/// CamVid: train/, val/ and test/ as they are. Cityscapes: val (for model selection) split from train/ as
/// load_image_data splits training files (data.val_size, data.split_seed), and gtFine's val/ as the test
/// split (its test/ labels are not public). Then the first data.limit_* of each (0: all).
SegmentationData load_segmentation(const SegmentationInfo& info, const SplitOptions& split,
                                   bool skip_missing);

/// What SegmentationSource does to each frame and its labels, always together:
///   train: resize to `resize` x random scale in [scale_min, scale_max] (image bilinear or area, labels
///          nearest), pad to crop_size at the bottom/right (image 0 after normalisation, labels ignore),
///          random crop_size x crop_size window, horizontal flip with probability 1/2 (flip);
///   eval:  resize to `resize` (the shorter side), whole frame.
/// Then RGB, (x/255 - mean)/std per channel.
struct SegmentationTransformOptions {
  TORCH_ARG(int64_t, resize) = 360;     ///< shorter side before the random scale (CamVid frames: 360)
  TORCH_ARG(int64_t, crop_size) = 224;  ///< training crop side
  TORCH_ARG(bool, train) = false;
  TORCH_ARG(double, scale_min) = 0.5;
  TORCH_ARG(double, scale_max) = 2.0;
  TORCH_ARG(bool, flip) = true;  ///< training only
  TORCH_ARG(std::vector<double>, mean) = kImageNetMean;
  TORCH_ARG(std::vector<double>, std) = kImageNetStd;
  TORCH_ARG(int64_t, workers) = 0;  ///< decoding threads (0: one per core)
  /// false: an unreadable frame or label file is an error naming it; true: left out and counted.
  TORCH_ARG(bool, skip_bad_images) = false;
  TORCH_ARG(int64_t, max_pixels) = 89'478'485;
};

/// The decoded label file at `path` mapped through info.label_map: [height * width] class ids or
/// ignore_index. Throws std::runtime_error naming the file when it cannot be read, is not 8-bit single
/// channel, or holds a value the dataset does not define ("... value 12 at (x, y) is not a label id of camvid
/// (0..11)").
struct LabelImage {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> ids;
};
LabelImage read_label_image(const std::string& path, const SegmentationInfo& info, int64_t max_pixels);

/// Batches of frames [n, 3, h, w] (float, normalised) and labels int64 [n, h, w]: training crops
/// crop_size x crop_size; evaluation frames at the size the first frame of the split resizes to (every frame
/// of a split must share one size: CamVid's and Cityscapes' do). Frame i of a batch draws its scale, crop and
/// flip from a stream keyed by (batch key, i). Errors name the file: unreadable frame or label file, labels
/// of another size than their frame, label values outside the dataset's ids.
class SegmentationSource : public BatchSource {
 public:
  SegmentationSource(SegmentationSplit split, SegmentationInfo info, SegmentationTransformOptions options);
  ~SegmentationSource() override;

  int64_t size() const override { return split_.size(); }
  Batch get_batch(const int64_t* indices, int64_t count, uint64_t key, int64_t first = 0) override;

  /// (height, width) of every batch this source yields.
  std::pair<int64_t, int64_t> output_shape() const { return {height_, width_}; }
  int64_t skipped() const;
  const SegmentationSplit& split() const { return split_; }
  const SegmentationInfo& info() const { return info_; }

 private:
  SegmentationSplit split_;
  SegmentationInfo info_;
  SegmentationTransformOptions options_;
  int64_t height_ = 0, width_ = 0;
  std::vector<float> table_;
  std::unique_ptr<detail::WorkerPool> pool_;
  mutable std::mutex bad_mutex_;
  std::set<int64_t> bad_;
};

/// Pixels of each class over every label file of `split` (ignored pixels left out), decoded on `workers`
/// threads, and the pixels of the frames in which each class appears.
struct ClassFrequencies {
  std::vector<int64_t> pixels;        ///< per class
  std::vector<int64_t> frame_pixels;  ///< per class: pixels of the frames holding that class
};
ClassFrequencies class_frequencies(const SegmentationSplit& split, const SegmentationInfo& info,
                                   int64_t workers = 0, int64_t max_pixels = 89'478'485);

/// Median-frequency balancing (Eigen & Fergus 2015, as SegNet weights CamVid): freq_c = pixels_c /
/// frame_pixels_c, weight_c = median(freq) / freq_c over the classes that appear; 0 for a class that never
/// appears.
std::vector<double> median_frequency_weights(const ClassFrequencies& frequencies);

/// median_frequency_weights of `split`'s labels, read from `cache_dir`/<dataset>_median_frequency_<key>.json
/// when an earlier call wrote it (key: a hash of the label files' paths, sizes and modification times, so a
/// changed file recomputes), else computed and written there (a folder that cannot be written only costs
/// the recomputation next time, with a warning). Empty `cache_dir`: no cache.
std::vector<double> cached_median_frequency_weights(const SegmentationSplit& split,
                                                    const SegmentationInfo& info,
                                                    const std::string& cache_dir, int64_t workers = 0);

/// $XDG_CACHE_HOME/pdeq, else $HOME/.cache/pdeq, else "" (no cache).
std::string default_cache_dir();

}  // namespace pdeq::data
