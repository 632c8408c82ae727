// The ordinary residual block of the CIFAR ResNets and ResNet-18/34 (He et al. 2016's BasicBlock).
#pragma once

#include <pdeq/models/block.h>
#include <pdeq/models/layers.h>
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

/// The ordinary quantized residual block of the reference implementation:
///   x_q = Q_a(T(x)),  branch = BN2(K2 Q_a(T(ReLU(BN1(K1 x_q))))),  y = ReLU(S(x_q) - h*branch),
/// with K1 (3x3, stride s) and K2 (3x3) convolutions on quantized weights, and S the ProjectionShortcut. With
/// h = 1 this is He et al.'s BasicBlock written as the forward-Euler step x <- x - h*F(x) of the paper's PDE
/// view (the sign is absorbed by K2). T is the TV smoothing of options.tv (tv_in on the input, the previous
/// ReLU's output; tv_mid after the inner ReLU), the identity where none is placed. Input [N, C_in, H, W] ->
/// output [N, C_out, H/s, W/s]. With Transition::kConcatPool (StableNet without symmetry) K1, K2 are
/// C_in -> C_in at stride 1, S is the identity, and the output is widened by concatenation and pooled (see
/// Transition). Expansion 1: C_out is the stage's width.
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
  bool has_projection() const { return shortcut.is_projection(); }

  BlockOptions options;
  nn::TVSmooth tv_in{nullptr};          ///< before act_in; empty unless options.tv places it
  quant::FakeQuantize act_in{nullptr};  ///< on the block input, shared by branch and shortcut
  nn::QConv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  nn::TVSmooth tv_mid{nullptr};          ///< after the inner ReLU, before act_mid; empty unless placed
  quant::FakeQuantize act_mid{nullptr};  ///< after the inner ReLU
  nn::QConv2d conv2{nullptr};
  torch::nn::BatchNorm2d bn2{nullptr};
  ProjectionShortcut shortcut;  ///< S(x_q), called as shortcut(x_q)

 private:
  /// forward (output_relu) or forward_before_relu.
  torch::Tensor step(const torch::Tensor& x, bool output_relu);
};
TORCH_MODULE(BasicBlock);

/// The BlockFactory of BasicBlocks: BasicBlock(options).
torch::nn::AnyModule basic_block(const BlockOptions& options);

}  // namespace pdeq::models
