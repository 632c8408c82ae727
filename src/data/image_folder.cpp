// Image folders: listing (classes, files, layout errors), the train/val/test split, and ImageFolderSource
// (decoding and the torchvision transforms, image_decode.cpp, on worker threads).
#include <pdeq/data/image_folder.h>
#include <pdeq/data/image_header.h>

#include "image_decode.h"
#include "kernels.h"
#include "random.h"
#include "worker_pool.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <stdexcept>
#include <system_error>

namespace pdeq::data {
namespace fs = std::filesystem;

namespace detail {

/// Why `path` cannot be resolved to a file or folder (a symbolic link whose target is missing, a loop of
/// links, a target that cannot be examined), or "" when it can.
std::string unresolvable(const fs::path& path) {
  std::error_code error;
  (void)fs::status(path, error);
  if (!error) return "";
  std::error_code link_error;
  if (!fs::is_symlink(fs::symlink_status(path, link_error))) return "cannot be examined: " + error.message();
  const fs::path target = fs::read_symlink(path, link_error);
  const std::string link = "symbolic link" + (link_error ? std::string() : " to '" + target.string() + "'");
  if (error == std::errc::too_many_symbolic_link_levels) {
    return link + " in a loop (too many levels of symbolic links)";
  }
  if (error == std::errc::no_such_file_or_directory)
    return "dangling " + link + " (its target does not exist)";
  return link + " whose target cannot be examined: " + error.message();
}

}  // namespace detail

namespace {
using detail::unresolvable;

/// Stream tag of the per-image draws within a batch.
constexpr uint64_t kImageStream = 0x696d616765ULL;  // "image"

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

/// Sorted entries of `folder` that are directories (`folders`) or regular files (`files`). Entries that
/// cannot be resolved (dangling or looping symbolic links) go to `broken` (full paths), or to `files` when
/// `broken` is null, so that an image name among them fails like any unreadable image when it is read.
void list_folder(const fs::path& folder, std::vector<std::string>* folders, std::vector<std::string>* files,
                 std::vector<std::string>* broken = nullptr) {
  std::error_code error;
  fs::directory_iterator it(folder, error);
  if (error) throw std::runtime_error(folder.string() + ": cannot list folder: " + error.message());
  for (const auto& entry : it) {
    // is_directory/is_regular_file follow symlinks, as torchvision's os.scandir + is_dir() does. Only the
    // folder's own entries are listed (no recursion), so a link to a parent folder cannot loop.
    if (entry.is_directory(error)) {
      if (folders) folders->push_back(entry.path().filename().string());
    } else if (entry.is_regular_file(error)) {
      if (files) files->push_back(entry.path().filename().string());
    } else if (!unresolvable(entry.path()).empty()) {
      if (broken) {
        broken->push_back(entry.path().string());
      } else if (files) {
        files->push_back(entry.path().filename().string());
      }
    }
  }
  if (folders) std::sort(folders->begin(), folders->end());
  if (files) std::sort(files->begin(), files->end());
  if (broken) std::sort(broken->begin(), broken->end());
}

/// Among the class folders a link that resolves to nothing is an error whatever data.skip_bad_images says: it
/// may be a class folder, and a silently missing class would change the number of outputs.
void refuse_broken(const std::vector<std::string>& broken) {
  if (broken.empty()) return;
  throw std::runtime_error(
      broken.front() + ": " + unresolvable(broken.front()) +
      "; it may be a class folder, so it must be fixed or removed" +
      (broken.size() > 1 ? " (" + std::to_string(broken.size()) + " such links here)" : ""));
}

std::string joined(const std::vector<std::string>& names, size_t max = 5) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < max; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > max) out += ", ... (" + std::to_string(names.size()) + " in all)";
  return out;
}

std::vector<std::string> missing_from(const std::vector<std::string>& sorted,
                                      const std::vector<std::string>& of) {
  std::vector<std::string> out;
  std::set_difference(of.begin(), of.end(), sorted.begin(), sorted.end(), std::back_inserter(out));
  return out;
}

}  // namespace

// ---- listing ----

ImageFolderSplit ImageFolderSplit::subset(const std::vector<int64_t>& indices) const {
  ImageFolderSplit out;
  out.classes = classes;
  out.name = name;
  out.files.reserve(indices.size());
  out.labels.reserve(indices.size());
  for (int64_t i : indices) {
    TORCH_CHECK(i >= 0 && i < size(), "subset index must be in [0, ", size(), "), but got ", i);
    out.files.push_back(files[static_cast<size_t>(i)]);
    out.labels.push_back(labels[static_cast<size_t>(i)]);
  }
  return out;
}

bool is_image_file(const std::string& path) {
  const std::string ext = lower(fs::path(path).extension().string());
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

std::vector<std::string> image_folder_classes(const std::string& root) {
  const fs::path train = fs::path(root) / "train";
  std::error_code error;
  if (!fs::is_directory(train, error)) {
    throw std::runtime_error(
        train.string() +
        ": folder not found; data.dataset image_folder expects <root>/train/<class>/<images> "
        "and <root>/val/<class>/<images>");
  }
  std::vector<std::string> classes, broken;
  list_folder(train, &classes, nullptr, &broken);
  refuse_broken(broken);
  if (classes.empty()) {
    throw std::runtime_error(train.string() + ": no class folders; expected train/<class>/<images>");
  }
  return classes;
}

ImageFolderSplit scan_image_folder(const std::string& root, const std::string& split,
                                   const std::vector<std::string>& classes) {
  const fs::path folder = fs::path(root) / split;
  std::error_code error;
  if (!fs::is_directory(folder, error)) {
    throw std::runtime_error(folder.string() +
                             ": folder not found; data.dataset image_folder expects <root>/" + split +
                             "/<class>/<images>");
  }
  std::vector<std::string> folders, loose, broken;
  list_folder(folder, &folders, &loose, &broken);
  refuse_broken(broken);
  const auto loose_images = std::count_if(loose.begin(), loose.end(), is_image_file);
  if (folders.empty() && loose_images > 0) {
    throw std::runtime_error(folder.string() + ": holds " + std::to_string(loose_images) +
                             " image files but no class folders; image_folder expects " + split +
                             "/<class>/<images> (a flat folder with a labels file, such as ImageNet's "
                             "original val/, must first be sorted into class folders)");
  }
  if (folders != classes) {
    const auto missing = missing_from(folders, classes), extra = missing_from(classes, folders);
    std::string message = folder.string() + ": class folders differ from train/'s";
    if (!missing.empty()) message += "; missing: " + joined(missing);
    if (!extra.empty()) message += "; not in train/: " + joined(extra);
    throw std::runtime_error(message);
  }

  ImageFolderSplit out;
  out.classes = classes;
  out.ignored_files = static_cast<int64_t>(loose.size());
  for (size_t label = 0; label < classes.size(); ++label) {
    const fs::path class_folder = folder / classes[label];
    std::vector<std::string> subfolders, files;
    list_folder(class_folder, &subfolders, &files);
    out.ignored_files += static_cast<int64_t>(subfolders.size());
    const size_t before = out.files.size();
    for (const auto& file : files) {
      if (!is_image_file(file)) {
        ++out.ignored_files;
        continue;
      }
      out.files.push_back((class_folder / file).string());
      out.labels.push_back(static_cast<int64_t>(label));
    }
    if (out.files.size() == before) {
      throw std::runtime_error(class_folder.string() +
                               ": no image files (.jpg, .jpeg, .png, .bmp) in this class folder");
    }
  }
  return out;
}

DatasetInfo image_folder_info(const std::string& root, int64_t image_size) {
  TORCH_CHECK_VALUE(
      !root.empty(),
      "data.root: expected the folder holding train/ and val/ for data.dataset image_folder, got \"\"");
  const auto classes = image_folder_classes(root);
  return {"image_folder", root,        3, image_size, image_size, static_cast<int64_t>(classes.size()),
          kImageNetMean,  kImageNetStd};
}

ImageFolderData load_image_folder(const std::string& root, int64_t image_size,
                                  const SplitOptions& split_options) {
  ImageFolderData out;
  out.info = image_folder_info(root, image_size);
  TORCH_CHECK_VALUE(split_options.limit_test >= 0, "data.limit_test: expected an integer >= 0, got ",
                    split_options.limit_test);
  const auto classes = image_folder_classes(root);
  ImageFolderSplit train_files = scan_image_folder(root, "train", classes);
  out.test = scan_image_folder(root, "val", classes);
  if (train_files.ignored_files + out.test.ignored_files > 0) {
    spdlog::info("{}: ignored {} entries that are not image files (train/: {}, val/: {})", root,
                 train_files.ignored_files + out.test.ignored_files, train_files.ignored_files,
                 out.test.ignored_files);
  }
  const TrainValSplit split =
      split_train_val(train_files.size(), split_options, "images in " + (fs::path(root) / "train").string());
  out.val = train_files.subset(split.val);
  out.train = train_files.subset(split.train);
  out.train.ignored_files = train_files.ignored_files;
  if (split_options.limit_test > 0 && split_options.limit_test < out.test.size()) {
    std::vector<int64_t> head(static_cast<size_t>(split_options.limit_test));
    std::iota(head.begin(), head.end(), int64_t{0});
    const int64_t ignored = out.test.ignored_files;
    out.test = out.test.subset(head);
    out.test.ignored_files = ignored;
  }
  out.train.name = "image_folder/train";
  out.val.name = "image_folder/val";
  out.test.name = "image_folder/test";
  return out;
}

// ---- transforms ----

std::pair<int64_t, int64_t> resized_shape(int64_t height, int64_t width, int64_t size) {
  TORCH_CHECK(height > 0 && width > 0 && size > 0, "resized_shape needs positive sizes, but got ", height,
              "x", width, " -> ", size);
  if (height <= width) return {size, size * width / height};
  return {size * height / width, size};
}

CropBox center_crop_box(int64_t height, int64_t width, int64_t size) {
  TORCH_CHECK(size <= height && size <= width, "center crop of ", size,
              " pixels needs an image at least that large, but got ", height, "x", width);
  // Python's round() (half to even), as torchvision's int(round((height - size) / 2.0)).
  const auto top = static_cast<int64_t>(std::nearbyint(static_cast<double>(height - size) / 2.0));
  const auto left = static_cast<int64_t>(std::nearbyint(static_cast<double>(width - size) / 2.0));
  return {top, left, size, size};
}

// ---- ImageFolderSource ----

ImageFolderSource::ImageFolderSource(ImageFolderSplit split, ImageTransformOptions options)
    : split_(std::move(split)), options_(std::move(options)) {
  const auto& o = options_;
  TORCH_CHECK(o.image_size() > 0, "image_size must be positive, but got ", o.image_size());
  TORCH_CHECK(o.resize() >= o.image_size(), "resize must be >= image_size (", o.image_size(), "), but got ",
              o.resize());
  TORCH_CHECK(o.workers() >= 0, "workers must be >= 0, but got ", o.workers());
  TORCH_CHECK(o.mean().size() == 3 && o.std().size() == 3, "mean and std must have 3 values (RGB), but got ",
              o.mean().size(), " and ", o.std().size());
  for (double s : o.std()) TORCH_CHECK(s > 0, "std must be positive, but got ", s);
  TORCH_CHECK(split_.labels.size() == split_.files.size(), "image folder split has ", split_.files.size(),
              " files but ", split_.labels.size(), " labels");
  table_ = detail::normalization_table(3, o.mean(), o.std());
  const int64_t workers = detail::WorkerPool::size_for(o.workers());
  detail::prepare_image_decoding();
  pool_ = std::make_unique<detail::WorkerPool>(workers);
}

ImageFolderSource::~ImageFolderSource() = default;

int64_t ImageFolderSource::skipped() const {
  std::lock_guard<std::mutex> lock(bad_mutex_);
  return static_cast<int64_t>(bad_.size());
}

Batch ImageFolderSource::get_batch(const int64_t* indices, int64_t count, uint64_t key, int64_t first) {
  const int64_t s = options_.image_size();
  const int64_t plane = s * s;
  Batch batch;
  batch.images = torch::empty({count, 3, s, s}, torch::kFloat32);
  batch.labels = torch::empty({count}, torch::kInt64);
  float* images = batch.images.data_ptr<float>();
  int64_t* labels = batch.labels.data_ptr<int64_t>();
  std::vector<std::string> errors(static_cast<size_t>(count));

  pool_->parallel_for(count, [&](int64_t i) {
    const int64_t index = indices[i];
    TORCH_CHECK(index >= 0 && index < size(), "sample index must be in [0, ", size(), "), but got ", index);
    const std::string& path = split_.files[static_cast<size_t>(index)];
    labels[i] = split_.labels[static_cast<size_t>(index)];
    try {
      detail::SplitMix64 rng(detail::derive_seed({key, kImageStream, static_cast<uint64_t>(first + i)}));
      detail::decode_image(path, options_, rng, table_.data(), images + i * 3 * plane);
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
    if (!options_.skip_bad_images()) {
      throw std::runtime_error(error + " (data.skip_bad_images: true skips such files)");
    }
    std::lock_guard<std::mutex> lock(bad_mutex_);
    if (bad_.insert(indices[i]).second) spdlog::warn("skipping unreadable image {}", error);
  }
  if (static_cast<int64_t>(good.size()) == count) return batch;
  const auto keep = torch::tensor(good, torch::kInt64);
  return {batch.images.index_select(0, keep), batch.labels.index_select(0, keep)};
}

}  // namespace pdeq::data
