// The bottleneck residual block of ResNet-50/101/152 (He et al. 2016; torchvision's Bottleneck, "v1.5").
#pragma once

#include <pdeq/models/block.h>
#include <pdeq/models/shortcut.h>
#include <pdeq/nn/qconv.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>

#include <ostream>

namespace pdeq::models {

/// Output channels of a bottleneck block per channel of its 3x3 convolution (torchvision's
/// Bottleneck.expansion).
constexpr int64_t kBottleneckExpansion = 4;

/// The quantized bottleneck block (torchvision's Bottleneck, stride on the 3x3 convolution), width
/// m = out_channels / 4:
///   x_q = Q_a(T(x)),  a = Q_a(T(ReLU(BN1(K1 x_q)))),  b = Q_a(T(ReLU(BN2(K2 a)))),
///   y = ReLU(S(x_q) - h*BN3(K3 b)),
/// K1 1x1 C_in->m, K2 3x3 m->m with stride s, K3 1x1 m->C_out, all on quantized weights; S the
/// ProjectionShortcut; T the TV smoothing of options.tv (tv_in, tv_mid1, tv_mid2) or the identity. Input
/// [N, C_in, H, W] -> output [N, C_out, H/s, W/s]. Projection transitions only.
///
/// Example:
///   pdeq::models::Bottleneck block(pdeq::models::BlockOptions(256, 512, 2));  // width 128
///   auto y = block(x);  // [N, 256, 56, 56] -> [N, 512, 28, 28]
class BottleneckImpl : public torch::nn::Cloneable<BottleneckImpl> {
 public:
  explicit BottleneckImpl(BlockOptions options);

  void reset() override;
  void reset_parameters();
  /// `pdeq::models::Bottleneck(256, 512, stride=2)`: non-default options only.
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor forward(const torch::Tensor& x);
  bool has_projection() const { return shortcut.is_projection(); }

  BlockOptions options;
  nn::TVSmooth tv_in{nullptr};  ///< empty unless options.tv places it
  quant::FakeQuantize act_in{nullptr};
  nn::QConv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  nn::TVSmooth tv_mid1{nullptr};
  quant::FakeQuantize act_mid1{nullptr};
  nn::QConv2d conv2{nullptr};
  torch::nn::BatchNorm2d bn2{nullptr};
  nn::TVSmooth tv_mid2{nullptr};
  quant::FakeQuantize act_mid2{nullptr};
  nn::QConv2d conv3{nullptr};
  torch::nn::BatchNorm2d bn3{nullptr};
  ProjectionShortcut shortcut;  ///< S(x_q), called as shortcut(x_q)
};
TORCH_MODULE(Bottleneck);

/// The BlockFactory of Bottlenecks: Bottleneck(options); stages of them have kBottleneckExpansion.
torch::nn::AnyModule bottleneck_block(const BlockOptions& options);

}  // namespace pdeq::models
