// MobileNetV2 (Sandler et al. 2018) for 32x32 inputs, with quantized inverted-residual blocks, and its
// symmetric (forward-stable) form from Ben-Yair et al. 2022.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/models/model_options.h>
#include <pdeq/nn/conv_adjoint.h>
#include <pdeq/nn/qconv.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <optional>
#include <ostream>
#include <vector>

namespace pdeq::models {

struct InvertedResidualOptions {
  InvertedResidualOptions(int64_t in_channels, int64_t out_channels, int64_t stride = 1,
                          int64_t expand_ratio = 6);
  /// Input channels C_in (> 0).
  TORCH_ARG(int64_t, in_channels);
  /// Output channels C_out (> 0); symmetric blocks need C_out == C_in.
  TORCH_ARG(int64_t, out_channels);
  /// Stride of the depthwise convolution (1 or 2); symmetric blocks need 1.
  TORCH_ARG(int64_t, stride) = 1;
  /// t: hidden width = t * C_in (>= 1).
  TORCH_ARG(int64_t, expand_ratio) = 6;
  /// h in y = x_q - h * branch (only blocks with C_out == C_in and stride 1 have the residual).
  TORCH_ARG(double, step_size) = 1.0;
  /// Symmetric blocks only: how K^T is computed.
  TORCH_ARG(nn::TransposeImpl, transpose_impl) = nn::TransposeImpl::kFlippedConv;
  TORCH_ARG(quant::FakeQuantizeOptions, weight_quant) = {quant::QuantTarget::kWeight};
  TORCH_ARG(quant::FakeQuantizeOptions, act_quant) = {quant::QuantTarget::kActivation};
  /// TV smoothing before the quantizers: on the block input (TVOptions::block_input) and after the inner
  /// ReLUs (TVOptions::block_inner); unset: none.
  TORCH_ARG(std::optional<TVOptions>, tv) = std::nullopt;
};

/// The ordinary quantized inverted residual block of the reference:
///   x_q = Q_a(T(x)),  u = Q_a(T(ReLU(BN1(K1 x_q)))),  v = Q_a(T(ReLU(BN2(K2 u)))),  z = BN3(K3 v),
///   y = x_q - h z when stride 1 and C_in == C_out, else y = z,
/// with K1 the 1x1 expansion, K2 the 3x3 depthwise convolution (stride s) and K3 the 1x1 projection.
/// Input [N, C_in, H, W] -> [N, C_out, H/s, W/s].
class InvertedResidualImpl : public torch::nn::Cloneable<InvertedResidualImpl> {
 public:
  explicit InvertedResidualImpl(InvertedResidualOptions options);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& x);
  bool has_residual() const {
    return options.stride() == 1 && options.in_channels() == options.out_channels();
  }

  InvertedResidualOptions options;
  quant::FakeQuantize act_in{nullptr}, act_mid{nullptr}, act_out{nullptr};
  /// Before act_in (block input) and act_mid / act_out (inner); empty unless options.tv places them.
  nn::TVSmooth tv_in{nullptr}, tv_mid{nullptr}, tv_out{nullptr};
  nn::QConv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
};
TORCH_MODULE(InvertedResidual);

/// The symmetric inverted residual block (paper, Sec. 4.2): K = K2 K1 with K1 the 1x1 expansion and K2 the
/// 3x3 depthwise convolution without padding, applied forward and transposed with the same (quantized)
/// weights:
///   x_q = Q_a(T(x)),  y = x_q - h * BN2(K1^T K2^T Q_a(T(ReLU(BN1(K2 K1 x_q))))),  T: TV smoothing
///   (options.tv: on the block input, inside, or both).
/// No projection convolution and no final ReLU; C_out == C_in, stride 1. [N, C, H, W] -> [N, C, H, W].
class SymmetricInvertedResidualImpl : public torch::nn::Cloneable<SymmetricInvertedResidualImpl> {
 public:
  explicit SymmetricInvertedResidualImpl(InvertedResidualOptions options);

  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& x);
  /// BN2(K1^T K2^T Q_a(T(ReLU(BN1(K2 K1 x_q))))) for an already quantized input.
  torch::Tensor branch(const torch::Tensor& x_q);

  InvertedResidualOptions options;
  quant::FakeQuantize act_in{nullptr}, act_mid{nullptr};
  nn::TVSmooth tv_in{nullptr};          ///< before act_in; empty unless options.tv places it
  nn::TVSmooth tv_mid{nullptr};         ///< before act_mid; empty unless options.tv places it
  nn::QConv2d conv1{nullptr};           ///< K1: 1x1, C -> tC
  nn::QConv2d conv2{nullptr};           ///< K2: 3x3 depthwise, tC -> tC, no padding
  torch::nn::BatchNorm2d bn1{nullptr};  ///< tC channels
  torch::nn::BatchNorm2d bn2{nullptr};  ///< C channels
};
TORCH_MODULE(SymmetricInvertedResidual);

/// One stage of MobileNetV2: expansion t, output channels c, n blocks, stride s of the first block.
struct InvertedResidualStage {
  int64_t expand_ratio;
  int64_t channels;
  int64_t blocks;
  int64_t stride;
};

/// The stage table of MobileNetV2 for 32x32 images (Sandler et al. 2018, Table 2, with the reference's
/// stride 1 in the second stage): seven stages, 16 to 320 channels.
std::vector<InvertedResidualStage> cifar_mobilenetv2_stages();

/// MobileNetV2 for 32x32 images as in the reference: float stem 3x3 conv (stride 1) + BN + ReLU to 16
/// channels, the stages of inverted residual blocks, a float 1x1 conv to `head_channels` + BN + ReLU
/// ("head"), global average pooling and a float linear classifier. ModelOptions::stable makes every
/// non-first block of a stage a SymmetricInvertedResidual (h = step_size); the first blocks stay ordinary
/// with h = 1. Trace names: "stem", "layer1.0", ..., "layer<stages>.0", "head". Other stage tables and head
/// widths give narrower or shallower variants of the same family (tests use them).
class MobileNetV2Impl : public ClassifierImpl {
 public:
  explicit MobileNetV2Impl(ModelOptions options,
                           std::vector<InvertedResidualStage> stages = cifar_mobilenetv2_stages(),
                           int64_t head_channels = 1280);

  void reset();
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward_traced(const torch::Tensor& x, ActivationTrace* trace) override;

  ModelOptions options;
  std::vector<InvertedResidualStage> stages;
  int64_t head_channels;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  std::vector<torch::nn::Sequential> layers;  ///< registered as "layer1", ... (one per stage)
  torch::nn::Conv2d head_conv{nullptr};
  torch::nn::BatchNorm2d head_bn{nullptr};
  torch::nn::Linear fc{nullptr};
};

/// 2,236,074 parameters for 10 classes (1,719,306 symmetric), as the reference.
Classifier mobilenetv2(const ModelOptions& options);

}  // namespace pdeq::models
