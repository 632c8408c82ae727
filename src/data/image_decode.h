// Image decoding for ImageFolderSource (internal header of src/data): OpenCV reads the file, crops, resizes
// and flips it as torchvision's transforms do. A build without OpenCV (PDEQ_WITH_OPENCV=OFF) has the same
// functions, and they refuse (compat::refuse_without_opencv).
#pragma once

#include <pdeq/data/image_folder.h>

#include "random.h"

#include <filesystem>
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

/// Why `path` cannot be resolved to a file or folder (a dangling or looping symbolic link, a target that
/// cannot be examined), or "" when it can (image_folder.cpp).
std::string unresolvable(const std::filesystem::path& path);

}  // namespace pdeq::data::detail
