// What the residual blocks of a ResNet stage are built from, whatever their kind (basic, symmetric,
// bottleneck), and how a stage asks for one.
#pragma once

#include <pdeq/models/model_options.h>
#include <pdeq/nn/conv_adjoint.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/arg.h>
#include <torch/nn/modules/container/any.h>

#include <functional>
#include <optional>

namespace pdeq::models {

/// How a block changes width and resolution.
enum class Transition {
  /// ResNet: the first convolution strides and widens, the shortcut is a 1x1 projection + BN.
  kProjection,
  /// StableNet: the residual step keeps C_in channels at full resolution; then the first C_out - C_in
  /// channels of the (quantized) block input are concatenated, and stride 2 becomes a 2x2 average pooling.
  kConcatPool,
};

/// What every residual block of a ResNet stage is built from (basic, symmetric and bottleneck blocks).
struct BlockOptions {
  BlockOptions(int64_t in_channels, int64_t out_channels, int64_t stride = 1);
  /// Input channels (> 0).
  TORCH_ARG(int64_t, in_channels);
  /// Output channels (> 0).
  TORCH_ARG(int64_t, out_channels);
  /// Stride of the block's strided conv and of the projection shortcut (> 0), default 1.
  TORCH_ARG(int64_t, stride) = 1;
  /// Dilation of the block's 3x3 convolutions (> 0), default 1 (DeepLab's backbones trade strides for it;
  /// bottleneck and basic blocks only).
  TORCH_ARG(int64_t, dilation) = 1;
  /// h in x <- shortcut - h*branch; 1 for ordinary blocks.
  TORCH_ARG(double, step_size) = 1.0;
  /// Projection (ResNet) or concatenation + pooling (StableNet) when the width or resolution changes.
  TORCH_ARG(Transition, transition) = Transition::kProjection;
  /// Symmetric blocks only: how K^T is computed.
  TORCH_ARG(nn::TransposeImpl, transpose_impl) = nn::TransposeImpl::kFlippedConv;
  /// Template of the weight quantizers; channels != 0: per output channel (each conv uses its own count).
  TORCH_ARG(quant::FakeQuantizeOptions, weight_quant) = {quant::QuantTarget::kWeight};
  /// Template of the activation quantizers (block input and after the inner ReLUs).
  TORCH_ARG(quant::FakeQuantizeOptions, act_quant) = {quant::QuantTarget::kActivation};
  /// TV smoothing before the block's activation quantizers (see TVOptions); unset: none.
  TORCH_ARG(std::optional<TVOptions>, tv) = std::nullopt;
};

/// Throws c10::Error unless every block kind can be built from `options`: positive channels and stride, a
/// finite step size, one alpha per activation tensor, and with concatenation transitions no narrowing and a
/// stride of 1 or 2.
void check_block_options(const BlockOptions& options);

/// Builds one block; the injection point of the block kind (torchvision's `block` argument). Any module with
/// a `torch::Tensor forward(const torch::Tensor&)` will do.
using BlockFactory = std::function<torch::nn::AnyModule(const BlockOptions&)>;

}  // namespace pdeq::models
