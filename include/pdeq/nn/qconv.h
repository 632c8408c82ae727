// Convolution whose weight passes through a (signed) fake quantizer on every forward.
#pragma once

#include <pdeq/quant/fake_quantize.h>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <ostream>

namespace pdeq::nn {

/// Options of QConv2d; square kernels, strides, paddings and dilations (all pdeq models need).
struct QConv2dOptions {
  QConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size);
  /// Input channels C_in (> 0, divisible by groups).
  TORCH_ARG(int64_t, in_channels);
  /// Output channels C_out (> 0, divisible by groups).
  TORCH_ARG(int64_t, out_channels);
  /// Kernel side k (> 0).
  TORCH_ARG(int64_t, kernel_size);
  /// Stride (> 0), default 1.
  TORCH_ARG(int64_t, stride) = 1;
  /// Zero padding on each side (>= 0), default 0.
  TORCH_ARG(int64_t, padding) = 0;
  /// Spacing of the kernel taps (> 0), default 1; DeepLab's atrous convolutions use more.
  TORCH_ARG(int64_t, dilation) = 1;
  /// Grouped convolution (> 0), default 1.
  TORCH_ARG(int64_t, groups) = 1;
  /// Learned bias, default false (every pdeq conv is followed by a norm).
  TORCH_ARG(bool, bias) = false;
  /// Weight quantizer (target kWeight): bits, alpha init, standardisation; channels 0 gives one alpha per
  /// tensor, channels -1 or out_channels one alpha per output channel.
  TORCH_ARG(quant::FakeQuantizeOptions, weight_quant) = {quant::QuantTarget::kWeight};
};

/// y = conv2d(x, Q(w)), Q the signed weight quantizer a*q_{b-1}(clip(w/a,-1,1)).
/// At bits >= 32 the quantizer is skipped altogether: y = conv2d(x, w), at the cost of a plain convolution.
/// Input [N, C_in, H, W] -> output [N, C_out, H', W'], H' = (H + 2*padding - dilation*(k-1) - 1)/stride + 1.
///
/// Example:
///   pdeq::nn::QConv2d conv(pdeq::nn::QConv2dOptions(16, 32, 3).stride(2).padding(1));
///   conv->weight_quant->set_bits(4);
///   auto y = conv(x);  // [N, 16, 32, 32] -> [N, 32, 16, 16]
class QConv2dImpl : public torch::nn::Cloneable<QConv2dImpl> {
 public:
  QConv2dImpl(int64_t in, int64_t out, int64_t k) : QConv2dImpl(QConv2dOptions(in, out, k)) {}
  explicit QConv2dImpl(QConv2dOptions options);

  void reset() override;
  /// Kaiming-normal weight (fan_out, ReLU gain) as torchvision's ResNets; bias, if any, U(-1/sqrt(fan_in),
  /// ..).
  void reset_parameters();
  /// `pdeq::nn::QConv2d(16, 32, kernel_size=3, stride=2, weight_bits=4)`: non-default options only.
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor forward(const torch::Tensor& x);
  /// The weight as the convolution sees it (quantized when bits < 32, `weight` itself otherwise).
  torch::Tensor quantized_weight();

  QConv2dOptions options;
  torch::Tensor weight;  ///< [C_out, C_in/groups, k, k]
  torch::Tensor bias;    ///< [C_out]; undefined unless options.bias()
  quant::FakeQuantize weight_quant{nullptr};
};
TORCH_MODULE(QConv2d);

}  // namespace pdeq::nn
