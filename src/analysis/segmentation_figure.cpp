#include <pdeq/analysis/segmentation_figure.h>

#include <pdeq/plot/figure.h>

#include <algorithm>
#include <cmath>

namespace pdeq::analysis {
namespace {

// SegNet's CamVid palette (Badrinarayanan et al., SegNet-Tutorial): sky, building, pole, road, pavement,
// tree, sign, fence, car, pedestrian, bicyclist.
constexpr std::array<std::array<uint8_t, 3>, 11> kCamVid{{{128, 128, 128},
                                                          {128, 0, 0},
                                                          {192, 192, 128},
                                                          {128, 64, 128},
                                                          {60, 40, 222},
                                                          {128, 128, 0},
                                                          {192, 128, 128},
                                                          {64, 64, 128},
                                                          {64, 0, 128},
                                                          {64, 64, 0},
                                                          {0, 128, 192}}};
// cityscapesScripts labels.py, train ids 0..18.
constexpr std::array<std::array<uint8_t, 3>, 19> kCityscapes{{{128, 64, 128},
                                                              {244, 35, 232},
                                                              {70, 70, 70},
                                                              {102, 102, 156},
                                                              {190, 153, 153},
                                                              {153, 153, 153},
                                                              {250, 170, 30},
                                                              {220, 220, 0},
                                                              {107, 142, 35},
                                                              {152, 251, 152},
                                                              {70, 130, 180},
                                                              {220, 20, 60},
                                                              {255, 0, 0},
                                                              {0, 0, 142},
                                                              {0, 0, 70},
                                                              {0, 60, 100},
                                                              {0, 80, 100},
                                                              {0, 0, 230},
                                                              {119, 11, 32}}};

}  // namespace

std::array<uint8_t, 3> segmentation_colour(int64_t k, int64_t num_classes, int64_t ignore_index) {
  if (k == ignore_index || k < 0 || k >= num_classes) return {0, 0, 0};
  if (num_classes == 11) return kCamVid[static_cast<size_t>(k)];
  if (num_classes == 19) return kCityscapes[static_cast<size_t>(k)];
  // Hues spread by the golden angle, full saturation, value 0.9.
  const double h = std::fmod(static_cast<double>(k) * 137.508, 360.0) / 60.0;
  const double x = 1.0 - std::fabs(std::fmod(h, 2.0) - 1.0);
  std::array<double, 3> rgb{};
  const int sector = static_cast<int>(h);
  const std::array<std::array<double, 3>, 6> sectors{
      {{1, x, 0}, {x, 1, 0}, {0, 1, x}, {0, x, 1}, {x, 0, 1}, {1, 0, x}}};
  rgb = sectors[static_cast<size_t>(std::clamp(sector, 0, 5))];
  return {static_cast<uint8_t>(std::lround(229.5 * rgb[0])),
          static_cast<uint8_t>(std::lround(229.5 * rgb[1])),
          static_cast<uint8_t>(std::lround(229.5 * rgb[2]))};
}

std::string segmentation_grid_png(const torch::Tensor& images, const torch::Tensor& labels,
                                  const torch::Tensor& predictions, const std::vector<double>& mean,
                                  const std::vector<double>& std, int64_t num_classes, int64_t ignore_index) {
  TORCH_CHECK_VALUE(images.dim() == 4 && images.size(1) == 3, "images must be [N, 3, H, W], but got ",
                    images.sizes());
  const int64_t n = images.size(0), h = images.size(2), w = images.size(3);
  TORCH_CHECK_VALUE(n > 0, "a segmentation grid needs at least one frame");
  TORCH_CHECK_VALUE(labels.sizes() == torch::IntArrayRef({n, h, w}) && predictions.sizes() == labels.sizes(),
                    "labels and predictions must be [", n, ", ", h, ", ", w, "], but got ", labels.sizes(),
                    " and ", predictions.sizes());
  TORCH_CHECK_VALUE(mean.size() == 3 && std.size() == 3, "mean and std must have 3 values");
  constexpr int64_t kGap = 4;
  const int64_t width = 3 * w + 2 * kGap, height = n * h + (n - 1) * kGap;
  std::vector<uint8_t> rgb(static_cast<size_t>(width * height * 3), 255);
  const auto pixels = images.to(torch::kCPU, torch::kFloat).contiguous();
  const auto truth = labels.to(torch::kCPU, torch::kInt64).contiguous();
  const auto predicted = predictions.to(torch::kCPU, torch::kInt64).contiguous();
  const auto px = pixels.accessor<float, 4>();
  const auto t = truth.accessor<int64_t, 3>();
  const auto p = predicted.accessor<int64_t, 3>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t y = 0; y < h; ++y) {
      uint8_t* row = rgb.data() + ((i * (h + kGap) + y) * width) * 3;
      for (int64_t x = 0; x < w; ++x) {
        for (int64_t c = 0; c < 3; ++c) {
          const double v =
              (px[i][c][y][x] * std[static_cast<size_t>(c)] + mean[static_cast<size_t>(c)]) * 255.0;
          row[x * 3 + c] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
        }
        const auto truth_colour = segmentation_colour(t[i][y][x], num_classes, ignore_index);
        const auto predicted_colour = segmentation_colour(p[i][y][x], num_classes, ignore_index);
        std::copy(truth_colour.begin(), truth_colour.end(), row + (w + kGap + x) * 3);
        std::copy(predicted_colour.begin(), predicted_colour.end(), row + (2 * (w + kGap) + x) * 3);
      }
    }
  }
  return plot::encode_rgb_png(rgb, static_cast<int>(width), static_cast<int>(height));
}

}  // namespace pdeq::analysis
