// ResNets (He et al. 2016) with quantized residual blocks x <- shortcut - h*branch: the CIFAR ResNets, the
// wide ResNet-18/34 and the bottleneck ResNet-50/101/152, one network class with the block kind injected.
#pragma once

#include <pdeq/models/basic_block.h>
#include <pdeq/models/block.h>
#include <pdeq/models/bottleneck.h>
#include <pdeq/models/classifier.h>
#include <pdeq/models/model_options.h>
#include <pdeq/models/symmetric_block.h>

#include <torch/arg.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <ostream>
#include <vector>

namespace pdeq::models {

/// One stage: `blocks` blocks of width `channels`; only the first one strides.
struct StageOptions {
  /// The stage's width (torchvision's planes): its blocks output channels * ResNetOptions::expansion.
  int64_t channels = 16;
  int64_t blocks = 1;
  int64_t stride = 1;
  /// torchvision's replace_stride_with_dilation: the stage keeps the resolution and multiplies the network's
  /// dilation by `stride` instead; its first block keeps the dilation of the stage before (DeepLab's
  /// output stride 8 or 16).
  bool dilate = false;
};

struct ResNetOptions {
  ResNetOptions(std::vector<StageOptions> stages, ModelOptions model = {});
  /// Stages in order; the stem has stages[0].channels channels.
  TORCH_ARG(std::vector<StageOptions>, stages);
  /// Classes, input channels, stem, h and the quantizer templates.
  TORCH_ARG(ModelOptions, model);
  /// Kind of the first block of each stage (the one that strides and widens), default BasicBlock.
  TORCH_ARG(BlockFactory, first_block) = basic_block;
  /// Kind of the other blocks, default BasicBlock.
  TORCH_ARG(BlockFactory, block) = basic_block;
  /// Output channels of every block per channel of its stage's width (torchvision's block.expansion): 1 for
  /// BasicBlock and SymmetricBlock, kBottleneckExpansion for Bottleneck.
  TORCH_ARG(int64_t, expansion) = 1;
  /// Width/resolution changes of the first blocks: projection (ResNet) or concatenation + pooling
  /// (StableNet).
  TORCH_ARG(Transition, transition) = Transition::kProjection;
  /// false: no pooling and no `fc` (a backbone: forward_features only, as DeepLabV3 uses it).
  TORCH_ARG(bool, classifier) = true;
};

/// ResNet: float stem (3x3 conv + BN + ReLU, or with ModelOptions::stem = kImageNet torchvision's 7x7
/// stride-2 conv + BN + ReLU + 3x3 stride-2 max-pool), quantized residual stages, global average pool, float
/// linear.
///   x_0 = ReLU(BN(K_0 I)),  x_{j+1} = block_j(x_j),  logits = W mean_{h,w}(x_L) + b.
/// Images [N, C, H, W] -> logits [N, num_classes]; forward_traced records "stem", "layer1.0", "layer1.1", ...
///
/// Example:
///   auto net = std::make_shared<pdeq::models::ResNetImpl>(
///       pdeq::models::ResNetOptions({{16, 3, 1}, {32, 3, 2}, {64, 3, 2}}));  // ResNet-20
class ResNetImpl : public ClassifierImpl {
 public:
  explicit ResNetImpl(ResNetOptions options);

  void reset();
  /// Kaiming-normal (fan_out, ReLU) convolutions, BN weight 1 and bias 0, torch's default Linear init.
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor forward_traced(const torch::Tensor& x, ActivationTrace* trace) override;
  /// The last stage's output [N, C, H/s, W/s] (s the output stride), recording "stem", "layer1.0", ...
  torch::Tensor forward_features(const torch::Tensor& x, ActivationTrace* trace = nullptr);

  ResNetOptions options;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;  ///< registered as "layer1", "layer2", ...
  torch::nn::Linear fc{nullptr};              ///< empty without options.classifier()
};

/// CIFAR ResNets of depth 6n+2 (three stages of n BasicBlocks, widths 16, 32, 64). ModelOptions::stable
/// selects the paper's symmetric ResNets: the first block of each stage stays an ordinary BasicBlock with h =
/// 1, the others are SymmetricBlocks with h = step_size.
Classifier resnet20(const ModelOptions& options);
Classifier resnet32(const ModelOptions& options);
Classifier resnet44(const ModelOptions& options);
Classifier resnet56(const ModelOptions& options);
Classifier resnet110(const ModelOptions& options);
/// ResNet-18/34: BasicBlocks at widths 64, 128, 256, 512; ModelOptions::stem and ::stable as above.
Classifier resnet18(const ModelOptions& options);
Classifier resnet34(const ModelOptions& options);
/// ResNet-50/101/152 (torchvision's layout): Bottlenecks at widths 64, 128, 256, 512 (outputs 4x), always
/// with the ImageNet stem; ModelOptions::stable does not apply.
///
/// Example:
///   pdeq::models::ModelOptions options;
///   options.num_classes = 1000;
///   auto net = pdeq::models::resnet50(options);  // 25,557,032 float parameters, as torchvision's
Classifier resnet50(const ModelOptions& options);
Classifier resnet101(const ModelOptions& options);
Classifier resnet152(const ModelOptions& options);

/// The ResNet-18 and ResNet-50 backbones of DeepLabV3: the ImageNet stem, no classifier, and stages 3 and 4
/// dilated instead of strided for `output_stride` 8, stage 4 only for 16.
std::shared_ptr<ResNetImpl> resnet18_backbone(ModelOptions options, int64_t output_stride);
std::shared_ptr<ResNetImpl> resnet50_backbone(ModelOptions options, int64_t output_stride);

}  // namespace pdeq::models
