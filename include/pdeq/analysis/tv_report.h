// `pdeq analyze tv`: what TV smoothing does to a layer's feature map and to its quantization error.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>

namespace pdeq::analysis {

/// {"min", "max", "mean", "std", "clipped_fraction", "quant_mse"} of a feature map x against an activation
/// quantizer: the fraction of values outside its range ([0, alpha], or [-alpha, alpha] when signed) and
/// mean((Q(x) - x)^2) at its current bit width (0 at full precision).
nlohmann::json feature_stats(const torch::Tensor& x, quant::FakeQuantizeImpl& quantizer);

/// Every activation quantizer of `model`, in module order, with feature_stats of its inputs pooled over
/// every forward pass that `run_passes` makes (in eval mode, without gradients): [{"layer":
/// "layer1.0.act_in", "bits", "alpha", "min", "max", ...}, ...]. Works for any model: image or graph.
nlohmann::json activation_quant_report(torch::nn::Module& model, const std::function<void()>& run_passes);

/// The same over `images` [N, C, H, W] (normalised), run in batches of `batch_size`.
nlohmann::json activation_quant_report(models::ClassifierImpl& model, const torch::Tensor& images,
                                       int64_t batch_size = 250);

/// One image [1, C, H, W] through `model` (eval mode); `layer` names an activation quantizer (e.g.
/// "layer2.0.act_mid") and the TV layer in front of it is the same name with act_ replaced by tv_. Writes
/// into `out` (created): tv_before.png and tv_after.png (all channels tiled, one colour scale), tv_hist.csv
/// (bin_lo, bin_hi, before, after) and tv_hist.png (100 bins over the joint range, log counts). Returns
/// {"layer", "tv_layer", "bits", "alpha", "tau_mean", "before": feature_stats, "after": feature_stats}.
/// Throws c10::ValueError when either module is missing (the message lists the TV layers there are), and
/// std::runtime_error in a build without OpenCV (compat::opencv_built()), which draws the images.
nlohmann::json tv_layer_report(models::ClassifierImpl& model, const torch::Tensor& image,
                               const std::string& layer, const std::filesystem::path& out);

}  // namespace pdeq::analysis
