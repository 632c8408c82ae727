// Image folders: listing (classes, files, layout errors), the train/val/test split, and ImageFolderSource
// (OpenCV decoding and the torchvision transforms on worker threads).
#include <pdeq/data/image_folder.h>
#include <pdeq/data/image_header.h>

#include "kernels.h"
#include "random.h"
#include "worker_pool.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

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
#include <thread>

namespace pdeq::data {
namespace fs = std::filesystem;
namespace {

/// Stream tag of the per-image draws within a batch.
constexpr uint64_t kImageStream = 0x696d616765ULL;  // "image"

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

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

/// Uniform double in [0, 1) from the top 53 bits of a draw.
double uniform01(detail::SplitMix64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

/// torchvision's RandomResizedCrop.get_params(scale = (0.08, 1), ratio = (3/4, 4/3)): up to 10 tries of an
/// area fraction and a log-uniform aspect ratio, else the largest centred window of a clamped ratio.
CropBox random_resized_crop_box(int64_t height, int64_t width, detail::SplitMix64& rng) {
  const double area = static_cast<double>(height * width);
  const double log_min = std::log(3.0 / 4.0), log_max = std::log(4.0 / 3.0);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (0.08 + (1.0 - 0.08) * uniform01(rng));
    const double ratio = std::exp(log_min + (log_max - log_min) * uniform01(rng));
    const auto w = static_cast<int64_t>(std::lround(std::sqrt(target * ratio)));
    const auto h = static_cast<int64_t>(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const auto y = static_cast<int64_t>(detail::uniform_below(rng, static_cast<uint64_t>(height - h + 1)));
      const auto x = static_cast<int64_t>(detail::uniform_below(rng, static_cast<uint64_t>(width - w + 1)));
      return {y, x, h, w};
    }
  }
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < 3.0 / 4.0) {
    h = static_cast<int64_t>(std::lround(static_cast<double>(w) / (3.0 / 4.0)));
  } else if (in_ratio > 4.0 / 3.0) {
    w = static_cast<int64_t>(std::lround(static_cast<double>(h) * (4.0 / 3.0)));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

/// Area averaging when shrinking (close to Pillow's antialiased bilinear that torchvision uses), bilinear
/// otherwise; no work when the size is already right.
cv::Mat resized(const cv::Mat& image, int64_t height, int64_t width) {
  if (image.rows == height && image.cols == width) return image;
  cv::Mat out;
  const bool shrinking = height <= image.rows && width <= image.cols;
  cv::resize(image, out, cv::Size(static_cast<int>(width), static_cast<int>(height)), 0, 0,
             shrinking ? cv::INTER_AREA : cv::INTER_LINEAR);
  return out;
}

/// The whole file through cv::imdecode (reading it ourselves tells "cannot read" from "cannot decode"), once
/// the size its header declares is known to be at most `max_pixels`.
cv::Mat decode(const std::string& path, int64_t max_pixels) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    const std::string why = unresolvable(path);
    throw std::runtime_error(path + ": cannot open image file" + (why.empty() ? "" : ": " + why));
  }
  const std::streamsize size = in.tellg();
  if (size <= 0) throw std::runtime_error(path + ": empty image file");
  std::vector<uchar> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    throw std::runtime_error(path + ": cannot read image file");
  }
  // OpenCV would allocate whatever a header declares (up to 2^30 pixels) before finding the data missing, so
  // only the formats whose declared size is checked here reach it (the extensions listed are theirs).
  const auto declared = declared_image_dimensions(bytes.data(), bytes.size());
  if (!declared) {
    throw std::runtime_error(path +
                             ": not a decodable image (no JPEG, PNG or BMP header with the image size)");
  }
  const int64_t w = declared->width, h = declared->height;
  if (w > 0 && h > 0 && w > max_pixels / h) {
    throw std::runtime_error(
        path + ": declares a " + std::to_string(w) + "x" + std::to_string(h) +
        " image, more than data.max_image_pixels = " + std::to_string(max_pixels) +
        " pixels (a corrupt header or a decompression bomb; raise the limit to read it)");
  }
  cv::Mat image;
  try {
    image = cv::imdecode(bytes, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    throw std::runtime_error(path + ": not a decodable image (OpenCV: " + e.msg + ")");
  }
  if (image.empty()) {
    throw std::runtime_error(path + ": not a decodable image (corrupt or truncated)");
  }
  return image;
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
  const int64_t workers =
      o.workers() > 0 ? o.workers()
                      : std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  cv::setNumThreads(0);
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
      const cv::Mat image = decode(path, options_.max_pixels());
      cv::Mat crop;
      if (options_.train() && options_.random_resized_crop()) {
        const CropBox box = random_resized_crop_box(image.rows, image.cols, rng);
        crop = resized(image(cv::Rect(static_cast<int>(box.x), static_cast<int>(box.y),
                                      static_cast<int>(box.width), static_cast<int>(box.height))),
                       s, s);
      } else {
        const auto [h, w] = resized_shape(image.rows, image.cols, options_.resize());
        const cv::Mat scaled = resized(image, h, w);
        CropBox box = center_crop_box(h, w, s);
        if (options_.train()) {
          box.y = static_cast<int64_t>(detail::uniform_below(rng, static_cast<uint64_t>(h - s + 1)));
          box.x = static_cast<int64_t>(detail::uniform_below(rng, static_cast<uint64_t>(w - s + 1)));
        }
        crop = scaled(cv::Rect(static_cast<int>(box.x), static_cast<int>(box.y), static_cast<int>(s),
                               static_cast<int>(s)));
      }
      const bool flip = options_.train() && (rng() >> 63) != 0;
      // BGR uint8 rows -> normalised RGB planes, flipping while copying.
      float* out = images + i * 3 * plane;
      const float* table = table_.data();
      for (int64_t y = 0; y < s; ++y) {
        const uchar* row = crop.ptr<uchar>(static_cast<int>(y));
        float* r = out + y * s;
        float* g = r + plane;
        float* b = g + plane;
        for (int64_t x = 0; x < s; ++x) {
          const uchar* px = row + 3 * (flip ? s - 1 - x : x);
          r[x] = table[0 * 256 + px[2]];
          g[x] = table[1 * 256 + px[1]];
          b[x] = table[2 * 256 + px[0]];
        }
      }
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
