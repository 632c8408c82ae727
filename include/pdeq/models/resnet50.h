// ImageNet-layout ResNets with bottleneck blocks (He et al. 2016; torchvision's resnet50 "v1.5"), quantized
// like the CIFAR ResNets: ResNet-50, -101 and -152.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/models/registry.h>
#include <pdeq/models/resnet.h>
#include <pdeq/nn/qconv.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <ostream>
#include <vector>

namespace pdeq::models {

/// Output channels of a bottleneck block per channel of its 3x3 convolution.
constexpr int64_t kBottleneckExpansion = 4;

/// The quantized bottleneck block (torchvision's Bottleneck, stride on the 3x3 convolution), width
/// m = out_channels / 4:
///   x_q = Q_a(T(x)),  a = Q_a(T(ReLU(BN1(K1 x_q)))),  b = Q_a(T(ReLU(BN2(K2 a)))),
///   y = ReLU(S(x_q) - h*BN3(K3 b)),
/// K1 1x1 C_in->m, K2 3x3 m->m with stride s, K3 1x1 m->C_out, all on quantized weights; S the identity or a
/// quantized 1x1 projection + BN when the stride or the width changes; T the TV smoothing of options.tv
/// (tv_in, tv_mid1, tv_mid2) or the identity. Input [N, C_in, H, W] -> output [N, C_out, H/s, W/s].
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
  bool has_projection() const { return !shortcut_conv.is_empty(); }

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
  nn::QConv2d shortcut_conv{nullptr};  ///< 1x1 projection; empty for the identity shortcut
  torch::nn::BatchNorm2d shortcut_bn{nullptr};
};
TORCH_MODULE(Bottleneck);

/// ImageNet ResNet: float stem (7x7/2 conv + BN + ReLU + 3x3/2 max-pool), quantized bottleneck stages of
/// widths 64, 128, 256, 512 (outputs 4x), global average pool, float linear. `stages[i].channels` are the
/// widths m. Images [N, C, H, W] -> logits [N, num_classes]; forward_traced records "stem", "layer1.0", ...
///
/// Example:
///   auto net = pdeq::models::resnet50({});  // 25,557,032 float parameters for 1000 classes
class ImageNetResNetImpl : public ClassifierImpl {
 public:
  ImageNetResNetImpl(std::vector<StageOptions> stages, ModelOptions model);

  void reset();
  /// Kaiming-normal (fan_out, ReLU) convolutions, BN weight 1 and bias 0, torch's default Linear init.
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor forward_traced(const torch::Tensor& x, ActivationTrace* trace) override;

  std::vector<StageOptions> stages;
  ModelOptions model;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;  ///< registered as "layer1", ...
  torch::nn::Linear fc{nullptr};
};

Classifier resnet50(const ModelOptions& options);
Classifier resnet101(const ModelOptions& options);
Classifier resnet152(const ModelOptions& options);

}  // namespace pdeq::models
