#include <pdeq/deploy/fold.h>

#include <cmath>

namespace pdeq::deploy {
namespace {

/// The clipping scale as the quantizer computes with it (see quant::kMinAlpha), float64.
torch::Tensor effective_alpha(const quant::FakeQuantizeImpl& q) {
  return q.alpha.detach().to(torch::kDouble).clamp_min(quant::kMinAlpha);
}

}  // namespace

WeightCodes weight_codes(nn::QConv2dImpl& conv, const std::string& name) {
  torch::NoGradGuard no_grad;
  const auto& q = *conv.weight_quant;
  const int64_t bits = q.bits();
  TORCH_CHECK_VALUE(
      bits < quant::kFullPrecisionBits, name,
      ": full-precision weights cannot be exported as integers; train with quant.weight_bits <= 8");
  TORCH_CHECK_VALUE(bits <= 8, name, ": ", bits,
                    "-bit weights cannot run on the 8-bit integer kernels; export needs weight bits <= 8");
  TORCH_CHECK_VALUE(q.options.is_signed() && !q.options.midrise(), name,
                    ": only signed, zero-centred weight grids can be exported");
  TORCH_CHECK_VALUE(!conv.bias.defined(), name,
                    ": convolution biases are not supported by the export (pdeq's models fold a BatchNorm "
                    "instead)");
  const int64_t n = (int64_t{1} << (bits - 1)) - 1;
  const int64_t out = conv.options.out_channels();
  torch::Tensor step = effective_alpha(q) / static_cast<double>(n);
  if (step.numel() == 1) step = step.reshape({1}).expand({out}).contiguous();
  const torch::Tensor wq = conv.quantized_weight().detach().to(torch::kDouble);
  // Q(w) = code * alpha/n exactly up to float rounding, so the division recovers the integer.
  const torch::Tensor codes = torch::round(wq / step.view({out, 1, 1, 1}));
  TORCH_INTERNAL_ASSERT(codes.abs().max().item<double>() <= static_cast<double>(n), name,
                        ": weight codes outside [-", n, ", ", n, "]");
  return {codes.to(torch::kInt8), step, bits, q.options.channels() > 0};
}

ChannelAffine batch_norm_affine(const torch::nn::BatchNorm2dImpl& bn) {
  torch::NoGradGuard no_grad;
  const auto var = bn.running_var.to(torch::kDouble);
  const auto mean = bn.running_mean.to(torch::kDouble);
  torch::Tensor scale = (var + bn.options.eps()).rsqrt();
  torch::Tensor shift = -mean * scale;
  if (bn.options.affine()) {
    const auto gamma = bn.weight.detach().to(torch::kDouble);
    scale = scale * gamma;
    shift = shift * gamma + bn.bias.detach().to(torch::kDouble);
  }
  return {scale, shift};
}

FoldedConv fold_conv(const WeightCodes& weight, const ChannelAffine& bn, double factor) {
  const int64_t out = weight.codes.size(0);
  TORCH_CHECK(bn.scale.numel() == out, "batch norm has ", bn.scale.numel(), " channels, the convolution ",
              out);
  const torch::Tensor scale = weight.scale * bn.scale * factor;
  // Quantized kernels take positive per-channel scales: a negative one flips the channel's codes instead
  // (the grid is symmetric, so -code is a code); a zero one (gamma = 0) zeroes the channel.
  const torch::Tensor sign = torch::sign(scale);
  torch::Tensor codes = (weight.codes.to(torch::kInt16) * sign.to(torch::kInt16).view({out, 1, 1, 1}));
  torch::Tensor weight_scale = scale.abs();
  weight_scale = torch::where(weight_scale > 0, weight_scale, torch::ones_like(weight_scale));
  return {codes.to(torch::kInt8), weight_scale, (bn.shift * factor).to(torch::kFloat)};
}

ActivationGrid activation_grid(const quant::FakeQuantizeImpl& quantizer, const std::string& name) {
  const int64_t bits = quantizer.bits();
  // Mid-rise levels +-(2k-1)/n have no zero: as affine codes they would need a half-integer zero point.
  TORCH_CHECK_VALUE(!quantizer.options.midrise(), name,
                    ": mid-rise activation quantizers cannot be exported (their levels have no zero code)");
  TORCH_CHECK_VALUE(
      bits < quant::kFullPrecisionBits, name,
      ": full-precision activations cannot be exported as integers; train with quant.act_bits <= 8");
  TORCH_CHECK_VALUE(
      bits <= 8, name, ": ", bits,
      "-bit activations cannot run on the 8-bit integer kernels; export needs activation bits <= 8");
  const double alpha = effective_alpha(quantizer).item<double>();
  if (quantizer.options.is_signed()) {
    const int64_t n = (int64_t{1} << (bits - 1)) - 1;
    return {alpha / static_cast<double>(n), 2 * n, bits, n};
  }
  const int64_t qmax = (int64_t{1} << bits) - 1;
  return {alpha / static_cast<double>(qmax), qmax, bits, 0};
}

}  // namespace pdeq::deploy
