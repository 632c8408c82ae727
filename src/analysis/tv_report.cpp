// PDEQ_WITH_OPENCV is defined for this source only when the build has OpenCV (CMakeLists.txt), which draws
// the images of tv_layer_report.
#include <pdeq/analysis/tv_report.h>

#include <pdeq/compat/features.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/plot/figure.h>

#ifdef PDEQ_WITH_OPENCV
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#endif

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

namespace pdeq::analysis {
namespace fs = std::filesystem;
namespace {

constexpr int64_t kBins = 100;

/// Sums from which feature_stats are formed, so that statistics can be pooled over batches.
struct Moments {
  double min = INFINITY, max = -INFINITY, sum = 0, sum_sq = 0, clipped = 0, sq_error = 0;
  int64_t count = 0;

  void add(const torch::Tensor& x, quant::FakeQuantizeImpl& q) {
    const auto v = x.detach().to(torch::kFloat64);
    min = std::min(min, v.min().item<double>());
    max = std::max(max, v.max().item<double>());
    sum += v.sum().item<double>();
    sum_sq += v.pow(2).sum().item<double>();
    const double alpha = q.alpha.detach().max().item<double>();
    const double lo = q.options.is_signed() || q.options.midrise() ? -alpha : 0.0;
    clipped += (v.lt(lo) | v.gt(alpha)).sum().item<double>();
    sq_error += (q.quantize(x.detach()).to(torch::kFloat64) - v).pow(2).sum().item<double>();
    count += v.numel();
  }

  nlohmann::json json() const {
    const double n = static_cast<double>(count);
    const double mean = sum / n;
    return {{"min", min},
            {"max", max},
            {"mean", mean},
            {"std", std::sqrt(std::max(0.0, sum_sq / n - mean * mean))},
            {"clipped_fraction", clipped / n},
            {"quant_mse", sq_error / n}};
  }
};

quant::FakeQuantize find_quantizer(models::ClassifierImpl& model, const std::string& name) {
  for (const auto& item : model.named_modules()) {
    if (item.key() == name) {
      if (auto q = std::dynamic_pointer_cast<quant::FakeQuantizeImpl>(item.value()))
        return quant::FakeQuantize(q);
    }
  }
  return nullptr;
}

constexpr const char* kImages = "pdeq analyze tv (its feature-map and histogram images)";

#ifdef PDEQ_WITH_OPENCV

/// [C, H, W] -> one colour image: channels tiled in a near-square grid, values mapped from [lo, hi], each
/// pixel drawn `scale` x `scale`.
cv::Mat tile_channels(const torch::Tensor& fm, double lo, double hi, int scale) {
  const auto v = fm.detach().to(torch::kFloat64).contiguous();
  const int c = static_cast<int>(v.size(0)), h = static_cast<int>(v.size(1)), w = static_cast<int>(v.size(2));
  const int cols = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(c))));
  const int rows = (c + cols - 1) / cols;
  const int gap = 1;
  cv::Mat grey(rows * (h + gap) - gap, cols * (w + gap) - gap, CV_8UC1, cv::Scalar(0));
  const auto a = v.accessor<double, 3>();
  const double range = hi > lo ? hi - lo : 1.0;
  for (int k = 0; k < c; ++k) {
    const int top = (k / cols) * (h + gap), left = (k % cols) * (w + gap);
    for (int i = 0; i < h; ++i)
      for (int j = 0; j < w; ++j) {
        const double t = std::clamp((a[k][i][j] - lo) / range, 0.0, 1.0);
        grey.at<uint8_t>(top + i, left + j) = static_cast<uint8_t>(std::lround(255 * t));
      }
  }
  cv::Mat colour, big;
  cv::applyColorMap(grey, colour, cv::COLORMAP_VIRIDIS);
  cv::resize(colour, big, {}, scale, scale, cv::INTER_NEAREST);
  return big;
}

void write_png(const fs::path& path, const cv::Mat& image) {
  if (!cv::imwrite(path.string(), image)) throw std::runtime_error("cannot write image " + path.string());
}

/// An image already encoded as PNG (plot::render_png).
void write_png(const fs::path& path, const std::string& png) {
  std::ofstream file(path, std::ios::binary);
  file << png;
  if (!file) throw std::runtime_error("cannot write image " + path.string());
}

/// Two histograms (counts per bin, a count axis drawn as log10(1 + count)), before and after TV, as PNG.
std::string draw_histograms(const std::vector<int64_t>& before, const std::vector<int64_t>& after, double lo,
                            double hi, const std::string& title) {
  plot::Panel panel;
  panel.title = title;
  panel.x = {"feature value"};
  panel.y = {"count (values per bin)", false, plot::Scale::kLog1p};
  for (const auto& [counts, label] :
       {std::make_pair(&before, "before TV"), std::make_pair(&after, "after TV")}) {
    plot::Line line;
    line.label = label;
    line.steps = true;
    line.markers = false;
    const auto n = static_cast<int64_t>(counts->size());
    for (int64_t i = 0; i <= n; ++i) line.x.push_back(lo + (hi - lo) * static_cast<double>(i) / n);
    for (const int64_t c : *counts) line.y.push_back(static_cast<double>(c));
    panel.lines.push_back(std::move(line));
  }
  return plot::render_png({panel}, 640, 340);
}

/// tv_before.png, tv_after.png (all channels tiled, one colour scale) and tv_hist.png into `out`.
void write_images(const fs::path& out, const torch::Tensor& before, const torch::Tensor& after, double lo,
                  double hi, const std::vector<int64_t>& hist_before, const std::vector<int64_t>& hist_after,
                  const std::string& title) {
  write_png(out / "tv_before.png", tile_channels(before[0], lo, hi, 4));
  write_png(out / "tv_after.png", tile_channels(after[0], lo, hi, 4));
  write_png(out / "tv_hist.png", draw_histograms(hist_before, hist_after, lo, hi, title));
}

#else  // !PDEQ_WITH_OPENCV

void write_images(const fs::path&, const torch::Tensor&, const torch::Tensor&, double, double,
                  const std::vector<int64_t>&, const std::vector<int64_t>&, const std::string&) {
  compat::refuse_without_opencv(kImages);
}

#endif  // PDEQ_WITH_OPENCV

std::vector<int64_t> histogram(const torch::Tensor& x, double lo, double hi) {
  const auto counts = torch::histc(x.detach().to(torch::kFloat64).flatten(), kBins, lo, hi);
  std::vector<int64_t> out(kBins);
  for (int64_t i = 0; i < kBins; ++i) out[i] = static_cast<int64_t>(counts[i].item<double>());
  return out;
}

}  // namespace

nlohmann::json feature_stats(const torch::Tensor& x, quant::FakeQuantizeImpl& quantizer) {
  torch::NoGradGuard no_grad;
  Moments m;
  m.add(x, quantizer);
  return m.json();
}

nlohmann::json activation_quant_report(torch::nn::Module& model, const std::function<void()>& run_passes) {
  std::vector<std::pair<std::string, quant::FakeQuantize>> quantizers;
  for (const auto& item : model.named_modules()) {
    if (auto q = std::dynamic_pointer_cast<quant::FakeQuantizeImpl>(item.value()); q && !q->is_weight()) {
      quantizers.emplace_back(item.key(), quant::FakeQuantize(q));
    }
  }
  std::vector<Moments> moments(quantizers.size());
  for (size_t i = 0; i < quantizers.size(); ++i) {
    auto* q = quantizers[i].second.get();
    q->observer = [&m = moments[i], q](const torch::Tensor& x, const torch::Tensor&) { m.add(x, *q); };
  }
  const bool was_training = model.is_training();
  model.eval();
  {
    torch::NoGradGuard no_grad;
    run_passes();
  }
  model.train(was_training);
  nlohmann::json layers = nlohmann::json::array();
  for (size_t i = 0; i < quantizers.size(); ++i) {
    auto& q = quantizers[i].second;
    q->observer = nullptr;
    nlohmann::json row = {{"layer", quantizers[i].first},
                          {"bits", q->bits()},
                          {"alpha", q->alpha.detach().max().item<double>()}};
    row.update(moments[i].json());
    layers.push_back(row);
  }
  return layers;
}

nlohmann::json activation_quant_report(models::ClassifierImpl& model, const torch::Tensor& images,
                                       int64_t batch_size) {
  TORCH_CHECK(batch_size > 0, "batch_size must be positive, but got ", batch_size);
  return activation_quant_report(model, [&] {
    for (int64_t begin = 0; begin < images.size(0); begin += batch_size) {
      model.forward(images.narrow(0, begin, std::min(batch_size, images.size(0) - begin)));
    }
  });
}

nlohmann::json tv_layer_report(models::ClassifierImpl& model, const torch::Tensor& image,
                               const std::string& layer, const fs::path& out) {
  const auto at = layer.rfind("act_");
  TORCH_CHECK_VALUE(at != std::string::npos,
                    "layer must name an activation quantizer (e.g. layer1.0.act_mid), but got '", layer, "'");
  const std::string tv_name = layer.substr(0, at) + "tv_" + layer.substr(at + 4);
  quant::FakeQuantize quantizer = find_quantizer(model, layer);
  nn::TVSmooth tv{nullptr};
  std::string tv_layers;
  for (const auto& item : model.named_modules()) {
    if (auto t = std::dynamic_pointer_cast<nn::TVSmoothImpl>(item.value())) {
      if (item.key() == tv_name) tv = nn::TVSmooth(t);
      if (tv_layers.size() < 200) tv_layers += (tv_layers.empty() ? "" : ", ") + item.key();
    }
  }
  TORCH_CHECK_VALUE(quantizer && tv, "no TV layer '", tv_name, "' in front of an activation quantizer '",
                    layer, "'; TV layers of this model: ", tv_layers.empty() ? "none" : tv_layers);
  TORCH_CHECK(image.dim() == 4 && image.size(0) == 1, "image must be [1, C, H, W], but got shape ",
              image.sizes());
  // After the argument checks: a wrong layer is a usage error in every build.
  if (!compat::opencv_built()) compat::refuse_without_opencv(kImages);

  torch::Tensor before, after;
  tv->observer = [&](const torch::Tensor& x, const torch::Tensor& y) {
    before = x.detach().clone();
    after = y.detach().clone();
  };
  const bool was_training = model.is_training();
  model.eval();
  {
    torch::NoGradGuard no_grad;
    model.forward(image);
  }
  model.train(was_training);
  tv->observer = nullptr;
  TORCH_INTERNAL_ASSERT(before.defined(), "the TV layer ", tv_name, " was not called");

  fs::create_directories(out);
  const double lo = std::min(before.min().item<double>(), after.min().item<double>());
  const double hi = std::max(before.max().item<double>(), after.max().item<double>());
  const auto hist_before = histogram(before, lo, hi), hist_after = histogram(after, lo, hi);
  {
    const fs::path csv = out / "tv_hist.csv";
    std::ofstream file(csv);
    if (!file) throw std::runtime_error("cannot write " + csv.string());
    file << "bin_lo,bin_hi,before,after\n";
    for (int64_t i = 0; i < kBins; ++i) {
      file << lo + (hi - lo) * i / kBins << "," << lo + (hi - lo) * (i + 1) / kBins << "," << hist_before[i]
           << "," << hist_after[i] << "\n";
    }
  }
  write_images(out, before, after, lo, hi, hist_before, hist_after, layer + ": values before/after TV");
  return {{"layer", layer},
          {"tv_layer", tv_name},
          {"bits", quantizer->bits()},
          {"alpha", quantizer->alpha.detach().max().item<double>()},
          {"tau_mean", tv->step_sizes().mean().item<double>()},
          {"iters", tv->options.iters()},
          {"before", feature_stats(before, *quantizer)},
          {"after", feature_stats(after, *quantizer)}};
}

}  // namespace pdeq::analysis
