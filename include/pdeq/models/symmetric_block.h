// The symmetric (forward-stable) residual block of Ben-Yair et al. 2022, one weight used forward and
// transposed.
#pragma once

#include <pdeq/models/block.h>
#include <pdeq/models/layers.h>
#include <pdeq/nn/qconv.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>

#include <ostream>

namespace pdeq::models {

/// The symmetric (forward-stable) residual block of the paper, one weight K used forward and transposed:
///   x_q = Q_a(T(x)),  y = ReLU(x_q - h * BN2(K^T Q_a(T(ReLU(BN1(K x_q)))))),  T the TV smoothing of
///   options.tv,
/// so that without BN and quantization the Jacobian of the residual map, h K^T diag(s') K, is symmetric
/// (Ben-Yair et al. 2022, eq. 3.3) and the step is non-expansive for h ||K||^2 <= 2. K is one 3x3 C_in ->
/// C_in convolution whose weight is quantized once per forward and used by both products. Width or resolution
/// changes need Transition::kConcatPool (StableNet). About half the parameters of a BasicBlock; expansion 1.
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

/// The BlockFactory of SymmetricBlocks: SymmetricBlock(options).
torch::nn::AnyModule symmetric_block(const BlockOptions& options);

}  // namespace pdeq::models
