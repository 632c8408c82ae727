// Folding a trained quantized layer into integer codes and per-channel requantisation scales.
#pragma once

#include <pdeq/nn/qconv.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>

#include <string>

namespace pdeq::deploy {

/// The weight of a QConv2d as integers: Q(w) = codes * scale[c], codes in [-n, n], n = 2^(bits-1) - 1, the
/// standardisation (w - mean)/std and the clipping scale alpha already inside (they only set the grid).
struct WeightCodes {
  torch::Tensor codes;  ///< int8 [O, I, k, k]
  torch::Tensor scale;  ///< float64 [O] (per-tensor alpha: all equal)
  int64_t bits = 8;
  bool per_channel = false;
};

/// Codes and scales of conv's quantized weight. Refuses (c10::ValueError naming `name`) weights that are not
/// quantized (32 bits) or have more than 8 bits.
WeightCodes weight_codes(nn::QConv2dImpl& conv, const std::string& name);

/// An eval-mode BatchNorm as y = x * scale[c] + shift[c]: scale = gamma/sqrt(var + eps), shift = beta -
/// mean*scale (float64 [C]).
struct ChannelAffine {
  torch::Tensor scale;
  torch::Tensor shift;
};
ChannelAffine batch_norm_affine(const torch::nn::BatchNorm2dImpl& bn);

/// The per-channel parameters of one int8 convolution: factor * BN(conv2d(x, codes * scale)) =
/// conv2d(x, codes' * weight_scale) + bias, codes' = codes with the sign of factor*scale*BN.scale folded in
/// (quantized kernels need positive scales). Exact up to rounding of float64 -> float32 of the bias.
struct FoldedConv {
  torch::Tensor codes;         ///< int8 [O, I, k, k]
  torch::Tensor weight_scale;  ///< float64 [O], > 0
  torch::Tensor bias;          ///< float32 [O]
};
FoldedConv fold_conv(const WeightCodes& weight, const ChannelAffine& bn, double factor = 1.0);

/// An activation quantizer as uint8 codes: value = scale * (code - zero_point), code in [0, qmax].
/// Unsigned b bits: scale alpha/(2^b - 1), zero point 0, qmax 2^b - 1. Signed b bits (values m alpha/n,
/// m in [-n, n], n = 2^(b-1) - 1): scale alpha/n, zero point n, qmax 2n.
struct ActivationGrid {
  double scale = 1.0;
  int64_t qmax = 255;
  int64_t bits = 8;
  int64_t zero_point = 0;
  double lowest() const { return -scale * static_cast<double>(zero_point); }
  double highest() const { return scale * static_cast<double>(qmax - zero_point); }
};
/// Refuses (c10::ValueError naming `name`) mid-rise, full-precision or > 8-bit quantizers.
ActivationGrid activation_grid(const quant::FakeQuantizeImpl& quantizer, const std::string& name);

}  // namespace pdeq::deploy
