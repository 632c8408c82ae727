#include <pdeq/data/image_header.h>

#include "byte_order.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace pdeq::data {
namespace {

using detail::big_endian16;
using detail::big_endian32;
using detail::little_endian16;
using detail::little_endian32;

// Start-of-frame markers (ITU T.81 table B.1): C0-C3, C5-C7, C9-CB, CD-CF; C4 (DHT), C8 (JPG) and CC (DAC)
// share the range but are not frames.
bool is_start_of_frame(uint8_t marker) {
  return marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
}

// Walks the markers as libjpeg's next_marker and skip_variable do, so that it finds the frame header the
// decoder will use: bytes before a 0xFF are skipped (libjpeg warns "extraneous bytes before marker"), as are
// fill bytes (0xFF 0xFF) and stuffed zeros (0xFF 0x00).
std::optional<ImageDimensions> jpeg_dimensions(const uint8_t* bytes, size_t size) {
  size_t at = 2;  // after SOI
  while (true) {
    while (at < size && bytes[at] != 0xFF) ++at;
    while (at < size && bytes[at] == 0xFF) ++at;
    if (at >= size) return std::nullopt;
    const uint8_t marker = bytes[at++];
    // Stuffed zero, TEM, RSTn, SOI: no segment follows.
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;
    // End of image or start of scan before any frame header: there is no size to read.
    if (marker == 0xD9 || marker == 0xDA) return std::nullopt;
    if (size - at < 2) return std::nullopt;
    const size_t length = big_endian16(bytes + at);  // includes its own two bytes
    if (is_start_of_frame(marker)) {
      // Segment: length (2), sample precision (1), lines (2), samples per line (2), ...
      if (size - at < 7) return std::nullopt;
      return ImageDimensions{big_endian16(bytes + at + 5), big_endian16(bytes + at + 3)};
    }
    // A length below 2 skips just the length bytes, as libjpeg's skip_variable does (markers that read a
    // table from such a segment are decoding errors there anyway).
    const size_t skip = std::max<size_t>(length, 2);
    if (size - at < skip) return std::nullopt;
    at += skip;
  }
}

std::optional<ImageDimensions> png_dimensions(const uint8_t* bytes, size_t size) {
  // Signature (8), IHDR chunk length (4) and type (4), then width and height (4 + 4, big-endian).
  if (size < 24 || std::memcmp(bytes + 12, "IHDR", 4) != 0) return std::nullopt;
  return ImageDimensions{big_endian32(bytes + 16), big_endian32(bytes + 20)};
}

std::optional<ImageDimensions> bmp_dimensions(const uint8_t* bytes, size_t size) {
  // File header (14), then the DIB header: its size (4), then width and height.
  if (size < 18) return std::nullopt;
  const uint32_t header_size = static_cast<uint32_t>(little_endian32(bytes + 14));
  if (header_size == 12) {  // OS/2 BITMAPCOREHEADER: 16-bit sizes
    if (size < 22) return std::nullopt;
    return ImageDimensions{std::abs(little_endian16(bytes + 18)), std::abs(little_endian16(bytes + 20))};
  }
  if (size < 26) return std::nullopt;
  return ImageDimensions{std::abs(static_cast<int64_t>(little_endian32(bytes + 18))),
                         std::abs(static_cast<int64_t>(little_endian32(bytes + 22)))};
}

}  // namespace

std::optional<ImageDimensions> declared_image_dimensions(const uint8_t* bytes, size_t size) {
  static const uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
    return jpeg_dimensions(bytes, size);
  if (size >= 8 && std::memcmp(bytes, kPngSignature, 8) == 0) return png_dimensions(bytes, size);
  if (size >= 2 && bytes[0] == 'B' && bytes[1] == 'M') return bmp_dimensions(bytes, size);
  return std::nullopt;
}

}  // namespace pdeq::data
