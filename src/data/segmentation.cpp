// Segmentation folders: listing (CamVid, Cityscapes), splits, label id maps, SegmentationSource (decoding in
// image_decode.cpp, on worker threads) and class frequencies.
#include <pdeq/data/image_header.h>
#include <pdeq/data/segmentation.h>

#include "image_decode.h"
#include "kernels.h"
#include "random.h"
#include "worker_pool.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <stdexcept>

namespace pdeq::data {
namespace fs = std::filesystem;

namespace {

/// Stream tag of the per-frame draws within a batch.
constexpr uint64_t kFrameStream = 0x7365676d656e74ULL;  // "segment"

const std::vector<std::string> kCamVidClasses{"sky",  "building", "pole", "road",       "pavement", "tree",
                                              "sign", "fence",    "car",  "pedestrian", "bicyclist"};
const std::vector<std::string> kCityscapesClasses{
    "road",         "sidewalk",   "building", "wall",       "fence",  "pole",  "traffic light",
    "traffic sign", "vegetation", "terrain",  "sky",        "person", "rider", "car",
    "truck",        "bus",        "train",    "motorcycle", "bicycle"};

enum class EntryKind { kFile, kFolder };

/// Sorted names of the regular files (or links to them) or of the folders in `folder`; throws naming the
/// folder when it cannot be listed.
std::vector<std::string> sorted_entries(const fs::path& folder, EntryKind kind) {
  std::error_code error;
  fs::directory_iterator it(folder, error);
  if (error) throw std::runtime_error(folder.string() + ": cannot list folder: " + error.message());
  std::vector<std::string> names;
  for (const auto& entry : it) {
    const bool wanted = kind == EntryKind::kFile ? entry.is_regular_file(error) : entry.is_directory(error);
    if (wanted) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

void require_folder(const fs::path& folder, const std::string& layout) {
  std::error_code error;
  if (!fs::is_directory(folder, error)) {
    throw std::runtime_error(folder.string() + ": folder not found; " + layout);
  }
}

/// Adds `image` with its label file, or counts it as missing (skip) or throws naming both.
void add_pair(SegmentationSplit& out, const fs::path& image, const fs::path& label, bool skip_missing) {
  std::error_code error;
  if (!fs::is_regular_file(label, error)) {
    if (!skip_missing) {
      throw std::runtime_error(image.string() + ": no label file " + label.string() +
                               " (data.skip_bad_images: true leaves such frames out)");
    }
    if (out.missing_labels++ == 0)
      spdlog::warn("{}: no label file {}; frame left out", image.string(), label.string());
    return;
  }
  out.images.push_back(image.string());
  out.labels.push_back(label.string());
}

SegmentationSplit scan_camvid(const std::string& root, const std::string& split, bool skip_missing) {
  const std::string layout = "camvid expects <root>/<split>/<frames> and <root>/<split>annot/<frames>.png";
  const fs::path images = fs::path(root) / split, labels = fs::path(root) / (split + "annot");
  require_folder(images, layout);
  require_folder(labels, layout);
  SegmentationSplit out;
  for (const auto& name : sorted_entries(images, EntryKind::kFile)) {
    if (!is_image_file(name)) continue;
    add_pair(out, images / name, labels / (fs::path(name).stem().string() + ".png"), skip_missing);
  }
  if (out.images.empty() && out.missing_labels == 0) {
    throw std::runtime_error(images.string() + ": no frames (.jpg, .jpeg, .png, .bmp); " + layout);
  }
  return out;
}

SegmentationSplit scan_cityscapes(const std::string& root, const std::string& split, bool skip_missing) {
  const std::string layout =
      "cityscapes expects <root>/leftImg8bit/<split>/<city>/*_leftImg8bit.png and "
      "<root>/gtFine/<split>/<city>/*_gtFine_labelIds.png";
  const fs::path images = fs::path(root) / "leftImg8bit" / split, labels = fs::path(root) / "gtFine" / split;
  require_folder(images, layout);
  require_folder(labels, layout);
  const std::string suffix = "_leftImg8bit.png";
  SegmentationSplit out;
  for (const auto& city : sorted_entries(images, EntryKind::kFolder)) {
    for (const auto& name : sorted_entries(images / city, EntryKind::kFile)) {
      if (name.size() <= suffix.size() ||
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) {
        continue;
      }
      const std::string stem = name.substr(0, name.size() - suffix.size());
      add_pair(out, images / city / name, labels / city / (stem + "_gtFine_labelIds.png"), skip_missing);
    }
  }
  if (out.images.empty() && out.missing_labels == 0) {
    throw std::runtime_error(images.string() + ": no frames; " + layout);
  }
  return out;
}

void keep_first(SegmentationSplit& split, int64_t limit) {
  if (limit <= 0 || limit >= split.size()) return;
  split.images.resize(static_cast<size_t>(limit));
  split.labels.resize(static_cast<size_t>(limit));
}

/// Uniform double in [0, 1) from the top 53 bits of a draw.
double uniform01(detail::SplitMix64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

SegmentationInfo camvid_info(const std::string& root) {
  TORCH_CHECK_VALUE(!root.empty(),
                    "data.root: expected the CamVid folder (train/, trainannot/, ...), got \"\"");
  SegmentationInfo out;
  out.info = {"camvid",      root,        3, 0, 0, static_cast<int64_t>(kCamVidClasses.size()),
              kImageNetMean, kImageNetStd};
  out.layout = SegmentationLayout::kCamVid;
  out.ignore_index = 11;  // void
  out.class_names = kCamVidClasses;
  out.label_map.fill(kInvalidLabel);
  for (int16_t id = 0; id <= 11; ++id) out.label_map[static_cast<size_t>(id)] = id;
  return out;
}

int16_t cityscapes_train_id(int64_t label_id) {
  // cityscapesScripts labels.py: (id, trainId) of the 19 evaluated classes; ids 0..33 otherwise ignored.
  static constexpr std::pair<int64_t, int16_t> kTrainIds[] = {
      {7, 0},   {8, 1},   {11, 2},  {12, 3},  {13, 4},  {17, 5},  {19, 6},  {20, 7},  {21, 8}, {22, 9},
      {23, 10}, {24, 11}, {25, 12}, {26, 13}, {27, 14}, {28, 15}, {31, 16}, {32, 17}, {33, 18}};
  if (label_id < 0 || label_id > 33) return kInvalidLabel;
  for (const auto& [id, train_id] : kTrainIds) {
    if (id == label_id) return train_id;
  }
  return 255;
}

SegmentationInfo cityscapes_info(const std::string& root) {
  TORCH_CHECK_VALUE(!root.empty(),
                    "data.root: expected the Cityscapes folder (leftImg8bit/, gtFine/), got \"\"");
  SegmentationInfo out;
  out.info = {"cityscapes",  root,        3, 0, 0, static_cast<int64_t>(kCityscapesClasses.size()),
              kImageNetMean, kImageNetStd};
  out.layout = SegmentationLayout::kCityscapes;
  out.ignore_index = 255;
  out.class_names = kCityscapesClasses;
  for (size_t v = 0; v < out.label_map.size(); ++v)
    out.label_map[v] = cityscapes_train_id(static_cast<int64_t>(v));
  return out;
}

SegmentationSplit SegmentationSplit::subset(const std::vector<int64_t>& indices) const {
  SegmentationSplit out;
  out.name = name;
  for (int64_t i : indices) {
    TORCH_CHECK(i >= 0 && i < size(), "subset index must be in [0, ", size(), "), but got ", i);
    out.images.push_back(images[static_cast<size_t>(i)]);
    out.labels.push_back(labels[static_cast<size_t>(i)]);
  }
  return out;
}

SegmentationSplit scan_segmentation(const SegmentationInfo& info, const std::string& split,
                                    bool skip_missing) {
  SegmentationSplit out = info.layout == SegmentationLayout::kCamVid
                              ? scan_camvid(info.info.default_root, split, skip_missing)
                              : scan_cityscapes(info.info.default_root, split, skip_missing);
  out.name = info.info.name + "/" + split;
  return out;
}

SegmentationData load_segmentation(const SegmentationInfo& info, const SplitOptions& split,
                                   bool skip_missing) {
  for (const auto& [key, value] : {std::pair<const char*, int64_t>{"data.limit_train", split.limit_train},
                                   {"data.limit_val", split.limit_val},
                                   {"data.limit_test", split.limit_test}}) {
    TORCH_CHECK_VALUE(value >= 0, key, ": expected an integer >= 0, got ", value);
  }
  SegmentationData out;
  out.info = info;
  if (info.layout == SegmentationLayout::kCamVid) {
    out.train = scan_segmentation(info, "train", skip_missing);
    out.val = scan_segmentation(info, "val", skip_missing);
    out.test = scan_segmentation(info, "test", skip_missing);
    keep_first(out.train, split.limit_train);
    keep_first(out.val, split.limit_val);
  } else {
    const SegmentationSplit all = scan_segmentation(info, "train", skip_missing);
    const TrainValSplit parts = split_train_val(all.size(), split, "frames in " + all.name);
    out.train = all.subset(parts.train);
    out.val = all.subset(parts.val);
    out.train.missing_labels = all.missing_labels;
    out.test = scan_segmentation(info, "val", skip_missing);
    out.train.name = info.info.name + "/train";
    out.val.name = info.info.name + "/train (held out)";
    out.test.name = info.info.name + "/val (test)";
  }
  keep_first(out.test, split.limit_test);
  return out;
}

LabelImage read_label_image(const std::string& path, const SegmentationInfo& info, int64_t max_pixels) {
  detail::prepare_image_decoding();
  return detail::decode_label_image(path, info, max_pixels);
}

// ---- SegmentationSource ----

SegmentationSource::SegmentationSource(SegmentationSplit split, SegmentationInfo info,
                                       SegmentationTransformOptions options)
    : split_(std::move(split)), info_(std::move(info)), options_(std::move(options)) {
  const auto& o = options_;
  TORCH_CHECK(o.resize() > 0, "resize must be positive, but got ", o.resize());
  TORCH_CHECK(o.crop_size() > 0, "crop_size must be positive, but got ", o.crop_size());
  TORCH_CHECK(o.scale_min() > 0 && o.scale_min() <= o.scale_max(),
              "scales must satisfy 0 < scale_min <= scale_max, but got ", o.scale_min(), " and ",
              o.scale_max());
  TORCH_CHECK(o.workers() >= 0, "workers must be >= 0, but got ", o.workers());
  TORCH_CHECK(o.mean().size() == 3 && o.std().size() == 3, "mean and std must have 3 values (RGB), but got ",
              o.mean().size(), " and ", o.std().size());
  TORCH_CHECK(split_.images.size() == split_.labels.size(), "segmentation split has ", split_.images.size(),
              " frames but ", split_.labels.size(), " label files");
  TORCH_CHECK(split_.size() > 0, split_.name, ": no frames to read");
  detail::prepare_image_decoding();
  table_ = detail::normalization_table(3, o.mean(), o.std());
  if (o.train()) {
    height_ = width_ = o.crop_size();
  } else {
    // Evaluation batches hold whole frames, so one size for all: the first frame's, resized.
    const std::string& first = split_.images.front();
    std::ifstream in(first, std::ios::binary);
    std::vector<uint8_t> head(65536);
    in.read(reinterpret_cast<char*>(head.data()), static_cast<std::streamsize>(head.size()));
    const auto dims = declared_image_dimensions(head.data(), static_cast<size_t>(in.gcount()));
    if (!dims)
      throw std::runtime_error(first +
                               ": not a decodable image (no JPEG, PNG or BMP header with the image size)");
    std::tie(height_, width_) = resized_shape(dims->height, dims->width, o.resize());
  }
  const int64_t workers = detail::WorkerPool::size_for(o.workers());
  pool_ = std::make_unique<detail::WorkerPool>(workers);
}

SegmentationSource::~SegmentationSource() = default;

int64_t SegmentationSource::skipped() const {
  std::lock_guard<std::mutex> lock(bad_mutex_);
  return static_cast<int64_t>(bad_.size());
}

Batch SegmentationSource::get_batch(const int64_t* indices, int64_t count, uint64_t key, int64_t first) {
  const int64_t h = height_, w = width_;
  Batch batch;
  batch.images = torch::empty({count, 3, h, w}, torch::kFloat32);
  batch.labels = torch::empty({count, h, w}, torch::kInt64);
  float* images = batch.images.data_ptr<float>();
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  std::vector<std::string> errors(static_cast<size_t>(count));
  const auto& o = options_;

  pool_->parallel_for(count, [&](int64_t i) {
    const int64_t index = indices[i];
    TORCH_CHECK(index >= 0 && index < size(), "sample index must be in [0, ", size(), "), but got ", index);
    detail::SplitMix64 rng(detail::derive_seed({key, kFrameStream, static_cast<uint64_t>(first + i)}));
    const auto choose = [&](int64_t height, int64_t width) {
      detail::SegmentationWindow window;
      if (!o.train()) {
        window.scaled_height = window.height = h;
        window.scaled_width = window.width = w;
        return window;
      }
      const auto [base_h, base_w] = resized_shape(height, width, o.resize());
      const double scale = o.scale_min() + (o.scale_max() - o.scale_min()) * uniform01(rng);
      window.scaled_height = std::max<int64_t>(1, std::llround(static_cast<double>(base_h) * scale));
      window.scaled_width = std::max<int64_t>(1, std::llround(static_cast<double>(base_w) * scale));
      window.height = h;
      window.width = w;
      if (window.scaled_height > h) {
        window.y = static_cast<int64_t>(
            detail::uniform_below(rng, static_cast<uint64_t>(window.scaled_height - h + 1)));
      }
      if (window.scaled_width > w) {
        window.x = static_cast<int64_t>(
            detail::uniform_below(rng, static_cast<uint64_t>(window.scaled_width - w + 1)));
      }
      window.flip = o.flip() && (rng() >> 63) != 0;
      return window;
    };
    try {
      detail::decode_segmentation_pair(split_.images[static_cast<size_t>(index)],
                                       split_.labels[static_cast<size_t>(index)], info_, o.max_pixels(),
                                       choose, table_.data(), images + i * 3 * h * w, labels + i * h * w);
    } catch (const std::exception& e) {
      errors[static_cast<size_t>(i)] = e.what();
    }
  });

  std::vector<int64_t> good;
  for (int64_t i = 0; i < count; ++i) {
    const auto& error = errors[static_cast<size_t>(i)];
    if (error.empty()) {
      good.push_back(i);
      continue;
    }
    if (!o.skip_bad_images())
      throw std::runtime_error(error + " (data.skip_bad_images: true skips such frames)");
    std::lock_guard<std::mutex> lock(bad_mutex_);
    if (bad_.insert(indices[i]).second) spdlog::warn("skipping unreadable frame {}", error);
  }
  if (static_cast<int64_t>(good.size()) == count) return batch;
  const auto keep = torch::tensor(good, torch::kInt64);
  return {batch.images.index_select(0, keep), batch.labels.index_select(0, keep)};
}

// ---- class frequencies ----

ClassFrequencies class_frequencies(const SegmentationSplit& split, const SegmentationInfo& info,
                                   int64_t workers, int64_t max_pixels) {
  detail::prepare_image_decoding();
  const int64_t c = info.info.num_classes;
  detail::WorkerPool pool(detail::WorkerPool::size_for(workers));
  std::vector<std::vector<int64_t>> per_file(static_cast<size_t>(split.size()));
  pool.parallel_for(split.size(), [&](int64_t i) {
    const LabelImage label =
        detail::decode_label_image(split.labels[static_cast<size_t>(i)], info, max_pixels);
    std::vector<int64_t> counts(static_cast<size_t>(c) + 1, 0);  // the last entry: the frame's counted pixels
    for (uint8_t id : label.ids) {
      if (id == info.ignore_index || id >= c) continue;
      ++counts[id];
      ++counts.back();
    }
    per_file[static_cast<size_t>(i)] = std::move(counts);
  });
  ClassFrequencies out;
  out.pixels.assign(static_cast<size_t>(c), 0);
  out.frame_pixels.assign(static_cast<size_t>(c), 0);
  for (const auto& counts : per_file) {
    for (int64_t k = 0; k < c; ++k) {
      if (counts[static_cast<size_t>(k)] == 0) continue;
      out.pixels[static_cast<size_t>(k)] += counts[static_cast<size_t>(k)];
      out.frame_pixels[static_cast<size_t>(k)] += counts.back();
    }
  }
  return out;
}

std::vector<double> median_frequency_weights(const ClassFrequencies& frequencies) {
  std::vector<double> freq(frequencies.pixels.size(), 0.0), present;
  for (size_t k = 0; k < freq.size(); ++k) {
    if (frequencies.pixels[k] == 0) continue;
    freq[k] = static_cast<double>(frequencies.pixels[k]) / static_cast<double>(frequencies.frame_pixels[k]);
    present.push_back(freq[k]);
  }
  TORCH_CHECK(!present.empty(), "median-frequency weights need labelled pixels, but no class appears");
  std::sort(present.begin(), present.end());
  const size_t n = present.size();
  // The median of an even count is the mean of the two middle values (numpy's median, as SegNet's script).
  const double median = n % 2 == 1 ? present[n / 2] : 0.5 * (present[n / 2 - 1] + present[n / 2]);
  std::vector<double> out(freq.size(), 0.0);
  for (size_t k = 0; k < freq.size(); ++k) out[k] = freq[k] > 0 ? median / freq[k] : 0.0;
  return out;
}

std::string default_cache_dir() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg != '\0') {
    return (fs::path(xdg) / "pdeq").string();
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return (fs::path(home) / ".cache" / "pdeq").string();
  }
  return "";
}

std::vector<double> cached_median_frequency_weights(const SegmentationSplit& split,
                                                    const SegmentationInfo& info,
                                                    const std::string& cache_dir, int64_t workers) {
  // FNV-1a over every label file's path, size and modification time.
  uint64_t key = 0xcbf29ce484222325ULL;
  const auto mix = [&](const std::string& text) {
    for (unsigned char c : text) key = (key ^ c) * 0x100000001b3ULL;
  };
  for (const auto& path : split.labels) {
    std::error_code error;
    const auto size = fs::file_size(path, error);
    const auto time = fs::last_write_time(path, error).time_since_epoch().count();
    mix(path + "|" + std::to_string(size) + "|" + std::to_string(time) + "\n");
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(key));
  const fs::path file = cache_dir.empty()
                            ? fs::path()
                            : fs::path(cache_dir) / (info.info.name + "_median_frequency_" + hex + ".json");
  if (!file.empty()) {
    std::ifstream in(file);
    if (in) {
      try {
        const auto weights = nlohmann::json::parse(in).at("weights").get<std::vector<double>>();
        if (static_cast<int64_t>(weights.size()) == info.info.num_classes) {
          spdlog::info("{}: median-frequency class weights from {}", split.name, file.string());
          return weights;
        }
      } catch (const std::exception& e) {
        spdlog::warn("{}: unreadable cache file ({}); recomputing", file.string(), e.what());
      }
    }
  }
  const auto weights = median_frequency_weights(class_frequencies(split, info, workers));
  if (!file.empty()) {
    std::error_code error;
    fs::create_directories(file.parent_path(), error);
    const fs::path partial = file.string() + ".partial";
    std::ofstream out(partial);
    out << nlohmann::json({{"dataset", info.info.name},
                           {"split", split.name},
                           {"files", split.size()},
                           {"weights", weights}})
               .dump(2);
    out.close();
    fs::rename(partial, file, error);
    if (!out || error)
      spdlog::warn("{}: cannot write the class-weight cache; computed again next time", file.string());
  }
  return weights;
}

}  // namespace pdeq::data
