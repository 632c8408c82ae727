// Image decoding with OpenCV (image_decode.h). PDEQ_WITH_OPENCV is defined for this source only when the
// build has OpenCV (CMakeLists.txt).
#include "image_decode.h"

#include <pdeq/compat/features.h>
#include <pdeq/data/image_header.h>

#ifdef PDEQ_WITH_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <vector>
#endif

namespace pdeq::data::detail {

#ifdef PDEQ_WITH_OPENCV

namespace {

/// Uniform double in [0, 1) from the top 53 bits of a draw.
double uniform01(SplitMix64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

/// torchvision's RandomResizedCrop.get_params(scale = (0.08, 1), ratio = (3/4, 4/3)): up to 10 tries of an
/// area fraction and a log-uniform aspect ratio, else the largest centred window of a clamped ratio.
CropBox random_resized_crop_box(int64_t height, int64_t width, SplitMix64& rng) {
  const double area = static_cast<double>(height * width);
  const double log_min = std::log(3.0 / 4.0), log_max = std::log(4.0 / 3.0);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (0.08 + (1.0 - 0.08) * uniform01(rng));
    const double ratio = std::exp(log_min + (log_max - log_min) * uniform01(rng));
    const auto w = static_cast<int64_t>(std::lround(std::sqrt(target * ratio)));
    const auto h = static_cast<int64_t>(std::lround(std::sqrt(target / ratio)));
    if (w > 0 && h > 0 && w <= width && h <= height) {
      const auto y = static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(height - h + 1)));
      const auto x = static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(width - w + 1)));
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
cv::Mat decode(const std::string& path, int64_t max_pixels, int flags = cv::IMREAD_COLOR) {
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
    image = cv::imdecode(bytes, flags);
  } catch (const cv::Exception& e) {
    throw std::runtime_error(path + ": not a decodable image (OpenCV: " + e.msg + ")");
  }
  if (image.empty()) {
    throw std::runtime_error(path + ": not a decodable image (corrupt or truncated)");
  }
  return image;
}

}  // namespace

void prepare_image_decoding() { cv::setNumThreads(0); }

void decode_image(const std::string& path, const ImageTransformOptions& options, SplitMix64& rng,
                  const float* table, float* out) {
  const int64_t s = options.image_size();
  const int64_t plane = s * s;
  const cv::Mat image = decode(path, options.max_pixels());
  cv::Mat crop;
  if (options.train() && options.random_resized_crop()) {
    const CropBox box = random_resized_crop_box(image.rows, image.cols, rng);
    crop = resized(image(cv::Rect(static_cast<int>(box.x), static_cast<int>(box.y),
                                  static_cast<int>(box.width), static_cast<int>(box.height))),
                   s, s);
  } else {
    const auto [h, w] = resized_shape(image.rows, image.cols, options.resize());
    const cv::Mat scaled = resized(image, h, w);
    CropBox box = center_crop_box(h, w, s);
    if (options.train()) {
      box.y = static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(h - s + 1)));
      box.x = static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(w - s + 1)));
    }
    crop = scaled(
        cv::Rect(static_cast<int>(box.x), static_cast<int>(box.y), static_cast<int>(s), static_cast<int>(s)));
  }
  const bool flip = options.train() && (rng() >> 63) != 0;
  // BGR uint8 rows -> normalised RGB planes, flipping while copying.
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
}

LabelImage decode_label_image(const std::string& path, const SegmentationInfo& info, int64_t max_pixels) {
  const cv::Mat raw = decode(path, max_pixels, cv::IMREAD_UNCHANGED);
  if (raw.type() != CV_8UC1) {
    throw std::runtime_error(
        path + ": a label file must be an 8-bit single-channel image (one id per pixel), got " +
        std::to_string(raw.channels()) + " channels of " + std::to_string(raw.elemSize1() * 8) + " bits");
  }
  LabelImage out;
  out.height = raw.rows;
  out.width = raw.cols;
  out.ids.resize(static_cast<size_t>(out.height * out.width));
  for (int y = 0; y < raw.rows; ++y) {
    const uchar* row = raw.ptr<uchar>(y);
    uint8_t* dst = out.ids.data() + static_cast<size_t>(y) * static_cast<size_t>(raw.cols);
    for (int x = 0; x < raw.cols; ++x) {
      const int16_t id = info.label_map[row[x]];
      if (id == kInvalidLabel) {
        int64_t known = 0;
        for (int16_t v : info.label_map) known += v != kInvalidLabel ? 1 : 0;
        throw std::runtime_error(path + ": value " + std::to_string(row[x]) + " at (x " + std::to_string(x) +
                                 ", y " + std::to_string(y) + ") is not a label id of " + info.info.name +
                                 " (0.." + std::to_string(known - 1) + ")");
      }
      dst[x] = static_cast<uint8_t>(id);
    }
  }
  return out;
}

void decode_segmentation_pair(const std::string& image_path, const std::string& label_path,
                              const SegmentationInfo& info, int64_t max_pixels,
                              const std::function<SegmentationWindow(int64_t, int64_t)>& choose,
                              const float* table, float* out, int64_t* labels) {
  const cv::Mat image = decode(image_path, max_pixels);
  const LabelImage label = decode_label_image(label_path, info, max_pixels);
  if (label.height != image.rows || label.width != image.cols) {
    throw std::runtime_error(label_path + ": labels are " + std::to_string(label.width) + "x" +
                             std::to_string(label.height) + " (W x H) but their frame " + image_path +
                             " is " + std::to_string(image.cols) + "x" + std::to_string(image.rows));
  }
  const SegmentationWindow w = choose(image.rows, image.cols);
  const cv::Mat scaled = resized(image, w.scaled_height, w.scaled_width);
  cv::Mat ids(static_cast<int>(label.height), static_cast<int>(label.width), CV_8UC1,
              const_cast<uint8_t*>(label.ids.data()));
  cv::Mat scaled_ids = ids;
  if (label.height != w.scaled_height || label.width != w.scaled_width) {
    // Nearest neighbour with pixel centres aligned as the bilinear image resize aligns them (INTER_NEAREST
    // rounds down from the corner and shifts labels by up to a pixel against the image).
    cv::resize(ids, scaled_ids, cv::Size(static_cast<int>(w.scaled_width), static_cast<int>(w.scaled_height)),
               0, 0, cv::INTER_NEAREST_EXACT);
  }
  const int64_t plane = w.height * w.width;
  const auto ignore = static_cast<int64_t>(info.ignore_index);
  for (int64_t y = 0; y < w.height; ++y) {
    const int64_t sy = w.y + y;
    float* r = out + y * w.width;
    float* g = r + plane;
    float* b = g + plane;
    int64_t* l = labels + y * w.width;
    for (int64_t x = 0; x < w.width; ++x) {
      const int64_t sx = w.x + (w.flip ? w.width - 1 - x : x);
      if (sy >= w.scaled_height || sx >= w.scaled_width) {  // padding: the mean colour, ignored
        r[x] = g[x] = b[x] = 0.0f;
        l[x] = ignore;
        continue;
      }
      const uchar* px = scaled.ptr<uchar>(static_cast<int>(sy)) + 3 * sx;
      r[x] = table[0 * 256 + px[2]];
      g[x] = table[1 * 256 + px[1]];
      b[x] = table[2 * 256 + px[0]];
      l[x] = scaled_ids.ptr<uchar>(static_cast<int>(sy))[sx];
    }
  }
}

#else  // !PDEQ_WITH_OPENCV

void prepare_image_decoding() {
  compat::refuse_without_opencv("Image folders (decoding JPEG, PNG and BMP files)");
}

void decode_image(const std::string&, const ImageTransformOptions&, SplitMix64&, const float*, float*) {
  prepare_image_decoding();
}

LabelImage decode_label_image(const std::string&, const SegmentationInfo&, int64_t) {
  prepare_image_decoding();
  return {};
}

void decode_segmentation_pair(const std::string&, const std::string&, const SegmentationInfo&, int64_t,
                              const std::function<SegmentationWindow(int64_t, int64_t)>&, const float*,
                              float*, int64_t*) {
  prepare_image_decoding();
}

#endif  // PDEQ_WITH_OPENCV

}  // namespace pdeq::data::detail
