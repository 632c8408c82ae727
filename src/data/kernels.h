// Per-image kernels shared by BatchLoader, normalize() and augment_crop_flip() (internal header of src/data).
//
// Plain loops over raw pointers on purpose: the loader runs them on its background thread, where intra-op
// parallel torch ops would compete with the training threads, and one fused pass (gather, crop, flip,
// convert, normalise) touches each output value exactly once.
#pragma once

#include "random.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pdeq::data::detail {

/// Where an output image comes from: the top-left corner (dy, dx) of the H x W window in the zero-padded
/// (H+2p) x (W+2p) image, then an optional horizontal flip of that window (crop first, as torchvision does).
/// (dy, dx) = (p, p) without flip is the identity.
struct CropFlip {
  int64_t dy = 0;
  int64_t dx = 0;
  bool flip = false;
};

/// n independent draws: dy, dx uniform in [0, 2p], flip with probability 1/2.
template <typename Source>
std::vector<CropFlip> draw_crop_flips(int64_t n, int64_t padding, Source& source) {
  std::vector<CropFlip> draws(static_cast<size_t>(n));
  const auto range = static_cast<uint64_t>(2 * padding + 1);
  for (auto& d : draws) {
    d.dy = static_cast<int64_t>(uniform_below(source, range));
    d.dx = static_cast<int64_t>(uniform_below(source, range));
    d.flip = (source() >> 63) != 0;
  }
  return draws;
}

/// One C x H x W image: dst[c][y][x] = map(c, padded(src)[c][y+dy][x'+dx]) with x' = flip ? W-1-x : x, where
/// the padding holds In(0). `map(c, v)` converts a source value of channel c (identity, or a normalisation
/// table).
template <typename In, typename Out, typename Map>
void crop_flip_image(const In* src, Out* dst, int64_t channels, int64_t height, int64_t width,
                     int64_t padding, CropFlip crop, const Map& map) {
  const int64_t oy = crop.dy - padding;  // source row = output row + oy
  const int64_t ox = crop.dx - padding;  // source column = (flipped) output column + ox
  // Output columns whose source column lies inside the image; the rest read padding.
  const int64_t x_begin = crop.flip ? std::max<int64_t>(0, ox) : std::max<int64_t>(0, -ox);
  const int64_t x_end =
      crop.flip ? std::min<int64_t>(width, width + ox) : std::min<int64_t>(width, width - ox);
  for (int64_t c = 0; c < channels; ++c) {
    const In* s = src + c * height * width;
    Out* d = dst + c * height * width;
    const Out zero = map(c, In(0));
    for (int64_t y = 0; y < height; ++y) {
      Out* row = d + y * width;
      const int64_t sy = y + oy;
      if (sy < 0 || sy >= height || x_begin >= x_end) {
        std::fill(row, row + width, zero);
        continue;
      }
      const In* srow = s + sy * width;
      std::fill(row, row + x_begin, zero);
      if (crop.flip) {
        const int64_t last = width - 1 + ox;
        for (int64_t x = x_begin; x < x_end; ++x) row[x] = map(c, srow[last - x]);
      } else {
        for (int64_t x = x_begin; x < x_end; ++x) row[x] = map(c, srow[x + ox]);
      }
      std::fill(row + x_end, row + width, zero);
    }
  }
}

/// (v/255 - mean[c]) / std[c] for every uint8 value v of every channel, laid out [c * 256 + v].
/// Empty mean/std mean 0 and 1 (plain scaling to [0, 1]).
inline std::vector<float> normalization_table(int64_t channels, const std::vector<double>& mean,
                                              const std::vector<double>& std) {
  std::vector<float> table(static_cast<size_t>(channels * 256));
  for (int64_t c = 0; c < channels; ++c) {
    const double m = mean.empty() ? 0.0 : mean[static_cast<size_t>(c)];
    const double s = std.empty() ? 1.0 : std[static_cast<size_t>(c)];
    for (int v = 0; v < 256; ++v)
      table[static_cast<size_t>(c * 256 + v)] = static_cast<float>((v / 255.0 - m) / s);
  }
  return table;
}

}  // namespace pdeq::data::detail
