// The picture people look at first for a segmentation model: frames, their labels and the predictions side
// by side, classes in a fixed palette.
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace pdeq::analysis {

/// RGB colour of class k: SegNet's CamVid colours for 11 classes, Cityscapes' for 19, a fixed spread of hues
/// otherwise; the ignore label is black.
std::array<uint8_t, 3> segmentation_colour(int64_t k, int64_t num_classes, int64_t ignore_index);

/// One row per frame: the frame (un-normalised with mean/std per channel), its labels and the prediction,
/// with a 4-pixel white gap between panels and rows, encoded as PNG. `images` float [N, 3, H, W]
/// (normalised), `labels` and `predictions` int64 [N, H, W].
std::string segmentation_grid_png(const torch::Tensor& images, const torch::Tensor& labels,
                                  const torch::Tensor& predictions, const std::vector<double>& mean,
                                  const std::vector<double>& std, int64_t num_classes, int64_t ignore_index);

}  // namespace pdeq::analysis
