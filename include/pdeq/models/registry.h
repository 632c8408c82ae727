// Models by name, for configs and the CLI.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/nn/conv_adjoint.h>
#include <pdeq/quant/fake_quantize.h>

#include <string>
#include <vector>

namespace pdeq::models {

/// What every model factory takes: data shape, classes and the quantizer templates of its layers.
struct ModelOptions {
  int64_t num_classes = 10;
  int64_t in_channels = 3;
  double step_size = 1.0;  ///< h in x <- shortcut - h*branch
  /// Symmetric (forward-stable) blocks x <- x - h K^T s(K x) where the family allows them (see each factory).
  bool stable = false;
  /// How symmetric blocks apply K^T (same values; flipped-kernel conv2d is the fast one on CPU).
  nn::TransposeImpl transpose_impl = nn::TransposeImpl::kFlippedConv;
  /// Template of every weight quantizer (bits, alpha init, standardisation); channels() != 0 (e.g. -1) marks
  /// per-output-channel alphas, and each convolution then uses its own out_channels as the count.
  quant::FakeQuantizeOptions weight_quant{quant::QuantTarget::kWeight};
  /// Template of every activation quantizer.
  quant::FakeQuantizeOptions act_quant{quant::QuantTarget::kActivation};
};

/// Builds a model by name; an unknown name throws std::invalid_argument listing the known names.
///
/// Example:
///   pdeq::models::ModelOptions options;
///   options.in_channels = 1;  // Fashion-MNIST
///   options.weight_quant.bits(4);
///   options.act_quant.bits(4);
///   auto net = pdeq::models::make_model("resnet20", options);
Classifier make_model(const std::string& name, const ModelOptions& options);

/// Registered names in natural order (resnet18, resnet20, ..., resnet110).
std::vector<std::string> model_names();

}  // namespace pdeq::models
