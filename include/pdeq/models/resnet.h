// CIFAR-style ResNets (He et al. 2016) with quantized blocks, residual x <- shortcut - h*branch.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/models/layers.h>
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

/// How a block changes width and resolution.
enum class Transition {
  /// ResNet: the first convolution strides and widens, the shortcut is a 1x1 projection + BN.
  kProjection,
  /// StableNet: the residual step keeps C_in channels at full resolution; then the first C_out - C_in
  /// channels of
  /// the (quantized) block input are concatenated, and stride 2 becomes a 2x2 average pooling.
  kConcatPool,
};

/// What every residual block of a ResNet stage is built from (ordinary and symmetric blocks).
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
  /// Projection (ResNet) or concatenation + pooling (StableNet) when the width or resolution changes.
  TORCH_ARG(Transition, transition) = Transition::kProjection;
  /// Symmetric blocks only: how K^T is computed.
  TORCH_ARG(nn::TransposeImpl, transpose_impl) = nn::TransposeImpl::kFlippedConv;
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
/// With Transition::kConcatPool (StableNet without symmetry) K1, K2 are C_in -> C_in at stride 1, S is the
/// identity, and the output is widened by concatenation and pooled (see Transition).
///
/// Example:
///   pdeq::models::BasicBlock block(pdeq::models::BlockOptions(16, 32, 2));
///   auto y = block(x);  // [N, 16, 32, 32] -> [N, 32, 16, 16]
class BasicBlockImpl : public torch::nn::Cloneable<BasicBlockImpl>, public ReluOutputBlock {
 public:
  BasicBlockImpl(int64_t in, int64_t out, int64_t stride = 1)
      : BasicBlockImpl(BlockOptions(in, out, stride)) {}
  explicit BasicBlockImpl(BlockOptions options);

  void reset() override;
  void reset_parameters();
  /// `pdeq::models::BasicBlock(16, 32, stride=2)`: non-default options only.
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor forward(const torch::Tensor& x);
  bool defers_output_relu() const override;
  torch::Tensor forward_before_relu(const torch::Tensor& x) override;
  const quant::FakeQuantizeImpl* input_quantizer() const override;
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

 private:
  /// forward (output_relu) or forward_before_relu.
  torch::Tensor step(const torch::Tensor& x, bool output_relu);
};
TORCH_MODULE(BasicBlock);

/// The symmetric (forward-stable) residual block of the paper, one weight K used forward and transposed:
///   x_q = Q_a(T(x)),  y = ReLU(x_q - h * BN2(K^T Q_a(T(ReLU(BN1(K x_q)))))),  T the TV smoothing of
///   options.tv,
/// so that without BN and quantization the Jacobian of the residual map, h K^T diag(s') K, is symmetric
/// (Ben-Yair et al. 2022, eq. 3.3) and the step is non-expansive for h ||K||^2 <= 2. K is one 3x3 C_in ->
/// C_in convolution whose weight is quantized once per forward and used by both products. Width or resolution
/// changes need Transition::kConcatPool (StableNet). About half the parameters of a BasicBlock.
///
/// Example:
///   pdeq::models::SymmetricBlock block(pdeq::models::BlockOptions(16, 16).step_size(0.1));
///   auto y = block(x);  // [N, 16, 32, 32] -> [N, 16, 32, 32]
class SymmetricBlockImpl : public torch::nn::Cloneable<SymmetricBlockImpl>, public ReluOutputBlock {
 public:
  SymmetricBlockImpl(int64_t in, int64_t out, int64_t stride = 1)
      : SymmetricBlockImpl(BlockOptions(in, out, stride).transition(Transition::kConcatPool)) {}
  explicit SymmetricBlockImpl(BlockOptions options);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor forward(const torch::Tensor& x);
  bool defers_output_relu() const override;
  torch::Tensor forward_before_relu(const torch::Tensor& x) override;
  const quant::FakeQuantizeImpl* input_quantizer() const override;
  /// BN2(K^T Q_a(ReLU(BN1(K x_q)))) for an already quantized input [N, C_in, H, W].
  torch::Tensor branch(const torch::Tensor& x_q);

  BlockOptions options;
  nn::TVSmooth tv_in{nullptr};  ///< before act_in; empty unless options.tv places it
  quant::FakeQuantize act_in{nullptr};
  nn::QConv2d conv{nullptr};  ///< K: 3x3, C_in -> C_in, padding 1
  torch::nn::BatchNorm2d bn1{nullptr};
  nn::TVSmooth tv_mid{nullptr};  ///< after the inner ReLU, before act_mid; empty unless placed
  quant::FakeQuantize act_mid{nullptr};
  torch::nn::BatchNorm2d bn2{nullptr};

 private:
  /// forward (output_relu) or forward_before_relu.
  torch::Tensor step(const torch::Tensor& x, bool output_relu);
};
TORCH_MODULE(SymmetricBlock);

/// Builds one block; the injection point for other block kinds (a symmetric block, say), which only need a
/// `torch::Tensor forward(const torch::Tensor&)`.
using BlockFactory = std::function<torch::nn::AnyModule(const BlockOptions&)>;

/// The ordinary block: BasicBlock(options).
torch::nn::AnyModule basic_block(const BlockOptions& options);
/// The symmetric block: SymmetricBlock(options).
torch::nn::AnyModule symmetric_block(const BlockOptions& options);

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
  /// Kind of the first block of each stage (the one that strides and widens), default BasicBlock.
  TORCH_ARG(BlockFactory, first_block) = basic_block;
  /// Kind of the other blocks, default BasicBlock.
  TORCH_ARG(BlockFactory, block) = basic_block;
  /// Width/resolution changes of the first blocks: projection (ResNet) or concatenation + pooling
  /// (StableNet).
  TORCH_ARG(Transition, transition) = Transition::kProjection;
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

  ResNetOptions options;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;  ///< registered as "layer1", "layer2", ...
  torch::nn::Linear fc{nullptr};
};

/// ModelOptions::stable selects the paper's symmetric ResNets: the first block of each stage stays an
/// ordinary BasicBlock with h = 1, the others are SymmetricBlocks with h = step_size.
Classifier resnet20(const ModelOptions& options);
Classifier resnet32(const ModelOptions& options);
Classifier resnet44(const ModelOptions& options);
Classifier resnet56(const ModelOptions& options);
Classifier resnet110(const ModelOptions& options);
Classifier resnet18(const ModelOptions& options);
Classifier resnet34(const ModelOptions& options);

}  // namespace pdeq::models
