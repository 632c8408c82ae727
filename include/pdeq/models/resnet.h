// CIFAR-style ResNets (He et al. 2016) with quantized blocks, residual x <- shortcut - h*branch.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/models/registry.h>
#include <pdeq/nn/qconv.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <optional>
#include <ostream>
#include <vector>

namespace pdeq::models {

/// What every residual block of a ResNet stage is built from (ordinary and, later, symmetric blocks).
struct BlockOptions {
  BlockOptions(int64_t in_channels, int64_t out_channels, int64_t stride = 1);
  /// Input channels (> 0).
  TORCH_ARG(int64_t, in_channels);
  /// Output channels (> 0).
  TORCH_ARG(int64_t, out_channels);
  /// Stride of the first conv and of the projection shortcut (> 0), default 1.
  TORCH_ARG(int64_t, stride) = 1;
  /// h in x <- shortcut - h*branch; 1 for ordinary blocks.
  TORCH_ARG(double, step_size) = 1.0;
  /// Template of the weight quantizers; channels != 0: per output channel (each conv uses its own count).
  TORCH_ARG(quant::FakeQuantizeOptions, weight_quant) = {quant::QuantTarget::kWeight};
  /// Template of the activation quantizers (block input and after the inner ReLU).
  TORCH_ARG(quant::FakeQuantizeOptions, act_quant) = {quant::QuantTarget::kActivation};
  /// TV smoothing before the block's activation quantizers (see TVOptions); unset: none.
  TORCH_ARG(std::optional<TVOptions>, tv) = std::nullopt;
};

/// The ordinary quantized residual block of the reference implementation:
///   x_q = Q_a(T(x)),  branch = BN2(K2 Q_a(T(ReLU(BN1(K1 x_q))))),  y = ReLU(S(x_q) - h*branch),
/// with K1 (3x3, stride s) and K2 (3x3) convolutions on quantized weights, and S the identity, or a 1x1
/// quantized projection + BN when the stride or the channel count changes. With h = 1 this is He et al.'s
/// BasicBlock written as the forward-Euler step x <- x - h*F(x) of the paper's PDE view (the sign is absorbed
/// by K2). T is the TV smoothing of options.tv (tv_in on the input, the previous ReLU's output; tv_mid after
/// the inner ReLU), the identity where none is placed. Input [N, C_in, H, W] -> output [N, C_out, H/s, W/s].
///
/// Example:
///   pdeq::models::BasicBlock block(pdeq::models::BlockOptions(16, 32, 2));
///   auto y = block(x);  // [N, 16, 32, 32] -> [N, 32, 16, 16]
class BasicBlockImpl : public torch::nn::Cloneable<BasicBlockImpl> {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride = 1)
      : BasicBlockImpl(BlockOptions(in, out, stride)) {}
  explicit BasicBlockImpl(BlockOptions options);

  void reset() override;
  void reset_parameters();
  /// `pdeq::models::BasicBlock(16, 32, stride=2)`: non-default options only.
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor forward(const torch::Tensor& x);
  /// BN2(K2 Q_a(ReLU(BN1(K1 x_q)))) for an already quantized input.
  torch::Tensor branch(const torch::Tensor& x_q);
  /// x_q, or BN(P x_q) with the 1x1 projection P.
  torch::Tensor shortcut(const torch::Tensor& x_q);
  bool has_projection() const { return !shortcut_conv.is_empty(); }

  BlockOptions options;
  nn::TVSmooth tv_in{nullptr};          ///< before act_in; empty unless options.tv places it
  quant::FakeQuantize act_in{nullptr};  ///< on the block input, shared by branch and shortcut
  nn::QConv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  nn::TVSmooth tv_mid{nullptr};          ///< after the inner ReLU, before act_mid; empty unless placed
  quant::FakeQuantize act_mid{nullptr};  ///< after the inner ReLU
  nn::QConv2d conv2{nullptr};
  torch::nn::BatchNorm2d bn2{nullptr};
  nn::QConv2d shortcut_conv{nullptr};  ///< 1x1 projection; empty for the identity shortcut
  torch::nn::BatchNorm2d shortcut_bn{nullptr};
};
TORCH_MODULE(BasicBlock);

/// Builds one block; the injection point for other block kinds (a symmetric block, say), which only need a
/// `torch::Tensor forward(const torch::Tensor&)`.
using BlockFactory = std::function<torch::nn::AnyModule(const BlockOptions&)>;

/// The ordinary block: BasicBlock(options).
torch::nn::AnyModule basic_block(const BlockOptions& options);

/// One stage: `blocks` blocks of `channels` output channels; only the first one strides.
struct StageOptions {
  int64_t channels = 16;
  int64_t blocks = 1;
  int64_t stride = 1;
};

struct ResNetOptions {
  ResNetOptions(std::vector<StageOptions> stages, ModelOptions model = {});
  /// Stages in order; the stem has stages[0].channels channels.
  TORCH_ARG(std::vector<StageOptions>, stages);
  /// Classes, input channels, h and the quantizer templates.
  TORCH_ARG(ModelOptions, model);
  /// Block kind, default the ordinary BasicBlock.
  TORCH_ARG(BlockFactory, block) = basic_block;
};

/// CIFAR ResNet: float stem (3x3 conv + BN + ReLU), quantized residual stages, global average pool, float
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

  ResNetOptions options;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;  ///< registered as "layer1", "layer2", ...
  torch::nn::Linear fc{nullptr};
};

Classifier resnet20(const ModelOptions& options);
Classifier resnet32(const ModelOptions& options);
Classifier resnet44(const ModelOptions& options);
Classifier resnet56(const ModelOptions& options);
Classifier resnet110(const ModelOptions& options);
Classifier resnet18(const ModelOptions& options);
Classifier resnet34(const ModelOptions& options);

}  // namespace pdeq::models
