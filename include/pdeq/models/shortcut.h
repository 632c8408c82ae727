// The identity path of a residual block, y = ReLU(S(x_q) - h*branch), when the block changes width or
// resolution: a quantized 1x1 projection + BN (ResNet), or concatenation + pooling (StableNet).
#pragma once

#include <pdeq/models/block.h>
#include <pdeq/nn/qconv.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>

namespace pdeq::models {

/// S of every block kind with Transition::kProjection: the identity, or when the stride or the width changes
/// BN(P x_q) with P a 1x1 convolution of that stride on quantized weights (the reference quantizes the
/// projection like every other block convolution). Not a module of its own: its layers are registered on the
/// block as "shortcut_conv" and "shortcut_bn", the names checkpoints carry.
///
/// Example (inside a block's reset()):
///   shortcut = ProjectionShortcut(*this, in, out, stride, weight_quant);
///   auto y = torch::sub(shortcut(x_q), branch(x_q), h).relu_();
class ProjectionShortcut {
 public:
  /// The identity.
  ProjectionShortcut() = default;
  /// C_in -> C_out at `stride`; registers the projection on `block` unless the shortcut is the identity.
  ProjectionShortcut(torch::nn::Module& block, int64_t in_channels, int64_t out_channels, int64_t stride,
                     const quant::FakeQuantizeOptions& weight_quant);

  /// x_q [N, C_in, H, W] -> [N, C_out, H/s, W/s]; the identity returns x_q itself.
  torch::Tensor operator()(const torch::Tensor& x_q);
  bool is_projection() const { return !conv.is_empty(); }
  /// The block's initialisation: Kaiming-normal P, BN weight 1 and bias 0 (nothing for the identity).
  void reset_parameters();

  nn::QConv2d conv{nullptr};           ///< "shortcut_conv"; empty for the identity
  torch::nn::BatchNorm2d bn{nullptr};  ///< "shortcut_bn"; empty for the identity
};

/// StableNet's transition (Transition::kConcatPool) after the residual step y at C_in channels: widen by the
/// first C_out - C_in channels of the quantized input x_q, then pool 2x2 when the block strides.
torch::Tensor concat_and_pool(torch::Tensor y, const torch::Tensor& x_q, const BlockOptions& options);

}  // namespace pdeq::models
