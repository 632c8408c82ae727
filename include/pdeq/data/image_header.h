// The size an encoded image declares, read from its header without decoding it: how the image-folder reader
// refuses a decompression bomb (a few hundred bytes declaring a gigapixel image) before OpenCV allocates it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

namespace pdeq::data {

struct ImageDimensions {
  int64_t width = 0;
  int64_t height = 0;
};

/// Width and height declared by a JPEG (the first SOFn frame header), PNG (IHDR) or BMP (the DIB header;
/// a negative height, top-down rows, counts as its magnitude) held in `bytes`. std::nullopt for any other
/// format, or when the header is cut short before the size: the decoder then decides. Reads at most the
/// header bytes; never throws.
///
/// Example:
///   if (auto d = declared_image_dimensions(bytes.data(), bytes.size()); d && d->width * d->height > limit)
///   ...
std::optional<ImageDimensions> declared_image_dimensions(const uint8_t* bytes, size_t size);

}  // namespace pdeq::data
