// What every image model factory takes: data shape, classes, the quantizer templates and where TV smoothing
// goes.
#pragma once

#include <pdeq/nn/conv_adjoint.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/quant/fake_quantize.h>

#include <optional>

namespace pdeq::models {

/// Where blocks put TV smoothing (nn::TVSmooth): always after an activation and before the quantizer that
/// reads it.
struct TVOptions {
  /// Template of every TV layer; each layer sets its own channel count.
  nn::TVSmoothOptions smooth;
  /// Before each block's input quantizer, i.e. on the output of the stem's or the previous block's
  /// activation.
  bool block_input = true;
  /// After each activation inside a block, before its quantizer.
  bool block_inner = true;
};

/// The first layer of a ResNet (ResNetImpl: resnet20..110, resnet18/34, resnet50/101/152, stablenets).
enum class Stem {
  kCifar,     ///< 3x3 stride-1 conv + BN + ReLU (He et al. Sec. 4.2; the wide CIFAR ResNet-18/34)
  kImageNet,  ///< 7x7 stride-2 conv + BN + ReLU + 3x3 stride-2 max-pool (torchvision's ImageNet ResNets)
};

/// What every image model factory takes: data shape, classes and the quantizer templates of its layers.
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
  /// TV smoothing after the activations (Ben-Yair et al. 2022, Sec. 3.3); unset: none.
  std::optional<TVOptions> tv;
  /// ResNetImpl's stem; ResNet-50/101/152 always use the ImageNet stem, other families ignore it.
  Stem stem = Stem::kCifar;
};

}  // namespace pdeq::models
