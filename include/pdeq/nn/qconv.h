// Convolution whose weight passes through a (signed) fake quantizer on every forward.
#pragma once

#include <pdeq/quant/fake_quantize.h>

#include <torch/nn/modules/conv.h>

namespace pdeq::nn {

struct QConv2dOptions {
  QConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size);
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_size);
  TORCH_ARG(int64_t, stride) = 1;
  TORCH_ARG(int64_t, padding) = 0;
  TORCH_ARG(int64_t, groups) = 1;
  TORCH_ARG(bool, bias) = false;
  /// Weight quantizer (target kWeight): bits, alpha init, per-channel, standardisation.
  TORCH_ARG(quant::FakeQuantizeOptions, weight_quant) = quant::FakeQuantizeOptions(quant::QuantTarget::kWeight);
};

/// y = conv2d(x, Q(w)), Q the signed weight quantizer a*q_{b-1}(clip(w/a,-1,1)).
/// Input [N, in, H, W] -> output [N, out, H', W'].
///
/// Example:
///   pdeq::nn::QConv2d conv(pdeq::nn::QConv2dOptions(16, 32, 3).stride(2).padding(1));
class QConv2dImpl : public torch::nn::Cloneable<QConv2dImpl> {
 public:
  QConv2dImpl(int64_t in, int64_t out, int64_t k) : QConv2dImpl(QConv2dOptions(in, out, k)) {}
  explicit QConv2dImpl(QConv2dOptions options);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor forward(const torch::Tensor& x);
  /// The weight as the convolution sees it (quantized when bits < 32).
  torch::Tensor quantized_weight();

  QConv2dOptions options;
  torch::Tensor weight;
  torch::Tensor bias;  ///< undefined unless options.bias()
  quant::FakeQuantize weight_quant{nullptr};
};
TORCH_MODULE(QConv2d);

}  // namespace pdeq::nn
