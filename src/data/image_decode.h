// Image decoding for ImageFolderSource (internal header of src/data): OpenCV reads the file, crops, resizes
// and flips it as torchvision's transforms do. A build without OpenCV (PDEQ_WITH_OPENCV=OFF) has the same
// functions, and they refuse (compat::refuse_without_opencv).
#pragma once

#include <pdeq/data/image_folder.h>
#include <pdeq/data/segmentation.h>

#include "random.h"

#include <filesystem>
#include <functional>
#include <string>

namespace pdeq::data::detail {

/// Before the first decode_image: switches OpenCV's own parallel loops off process-wide (the workers already
/// parallelise across images). Throws std::runtime_error naming PDEQ_WITH_OPENCV in a build without OpenCV.
void prepare_image_decoding();

/// The file at `path`, decoded (JPEG, PNG or BMP whose declared size is at most options.max_pixels()),
/// cropped (random resized crop, or resize + centre/random crop) and flipped with draws from `rng` as
/// `options` says, written as normalised RGB planes [3, S, S] (S = options.image_size()) to `out` through
/// `table` ([c * 256 + pixel]). Throws std::runtime_error "<path>: cannot read ..." / "<path>: not a
/// decodable image ...".
void decode_image(const std::string& path, const ImageTransformOptions& options, SplitMix64& rng,
                  const float* table, float* out);

/// Where a segmentation frame goes: the whole frame resized to scaled_height x scaled_width, then the window
/// [y, y + height) x [x, x + width) of it (rows and columns beyond the scaled frame are padding), mirrored
/// left-right when `flip`.
struct SegmentationWindow {
  int64_t scaled_height = 0, scaled_width = 0;
  int64_t y = 0, x = 0, height = 0, width = 0;
  bool flip = false;
};

/// read_label_image (segmentation.h), with OpenCV.
LabelImage decode_label_image(const std::string& path, const SegmentationInfo& info, int64_t max_pixels);

/// Decodes a frame and its label file, checks they have one size, asks `choose(height, width)` for the
/// window and writes normalised RGB planes [3, height, width] to `out` (through `table`, as decode_image)
/// and class ids [height, width] to `labels`: the image resized as decode_image resizes, the labels with
/// nearest neighbours, the padding 0 (image) and info.ignore_index (labels). Errors name the file.
void decode_segmentation_pair(const std::string& image_path, const std::string& label_path,
                              const SegmentationInfo& info, int64_t max_pixels,
                              const std::function<SegmentationWindow(int64_t, int64_t)>& choose,
                              const float* table, float* out, int64_t* labels);

/// Why `path` cannot be resolved to a file or folder (a dangling or looping symbolic link, a target that
/// cannot be examined), or "" when it can (image_folder.cpp).
std::string unresolvable(const std::filesystem::path& path);

}  // namespace pdeq::data::detail
