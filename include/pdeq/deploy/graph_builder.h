// Building an IntGraph from a trained network's layers: the steps every family's export shares.
#pragma once

#include <pdeq/deploy/fold.h>
#include <pdeq/deploy/int_graph.h>
#include <pdeq/nn/tv_smoothing.h>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>
#include <torch/types.h>

#include <limits>
#include <string>
#include <utility>

namespace pdeq::deploy {

/// Running min/max of a tensor over the calibration batches.
struct CalibrationRange {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void update(const torch::Tensor& t);
  /// Widened by `margin` of its width on both sides, then intersected with [floor, ceiling] (values outside
  /// those bounds give the same network output: the quantizer that follows clips them).
  CalibrationRange widened(double margin, double floor, double ceiling) const;
};

/// quint8 scale and zero point covering [lo, hi] (extended to contain 0, which must be a code).
std::pair<double, int64_t> affine_codes(double lo, double hi);

/// Where an int8 convolution sits: stride, padding and groups of the trained layer.
struct ConvGeometry {
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t groups = 1;
};
/// The geometry of a quantized convolution; refuses (c10::ValueError) dilated ones.
ConvGeometry conv_geometry(const nn::QConv2dImpl& conv);

/// The graph under construction: each method appends one op (or a short sequence) and returns the value it
/// writes. Names follow the trained network's modules, and an op that writes codes carries the name of the
/// fake quantizer it reproduces.
class GraphBuilder {
 public:
  int64_t add(IntOp op);
  /// A float conv + BatchNorm + ReLU (+ 3x3/2 max-pool) on the image, BN folded.
  int64_t float_stem(const torch::nn::Conv2dImpl& conv, const torch::nn::BatchNorm2dImpl& bn, bool max_pool);
  /// codes -> codes: the folded convolution, ReLU if `relu`, requantised to (scale, zero_point), clipped to
  /// qmax.
  int64_t qconv(int64_t input, const FoldedConv& folded, const WeightCodes& weight, const ConvGeometry& at,
                bool relu, double scale, int64_t zero_point, int64_t qmax, std::string name);
  /// codes -> float: the folded convolution with its integer sums exact, ReLU if `relu`.
  int64_t qconv_to_float(int64_t input, const FoldedConv& folded, const WeightCodes& weight,
                         const ConvGeometry& at, bool relu, std::string name);
  /// float -> float: conv2d(x, weight, groups) + bias, ReLU if `relu`.
  int64_t float_conv(int64_t input, const torch::Tensor& weight, const torch::Tensor& bias,
                     const ConvGeometry& at, bool relu, std::string name);
  /// The trained TVSmooth layer: its steps tau_c and options.
  int64_t tv_smooth(int64_t input, const nn::TVSmoothImpl& tv, std::string name);
  /// Float -> the codes of `grid`, named after its quantizer.
  int64_t quantize(int64_t input, const ActivationGrid& grid, std::string name);
  /// ReLU(BN(K x)) to the codes of `grid`: one int8 convolution, or with TV smoothing between the ReLU and
  /// the quantizer a float convolution, the smoothing and the quantizer. `quantizer` is the quantizer's
  /// module name within `block` ("act_mid"), `smoother` the TV layer's ("tv_mid").
  int64_t conv_relu_codes(int64_t input, const FoldedConv& folded, const WeightCodes& weight,
                          const ConvGeometry& at, const nn::TVSmooth& tv, const ActivationGrid& grid,
                          const std::string& block, const std::string& quantizer,
                          const std::string& smoother);
  /// The float classifier: global average pool and `fc`.
  int64_t head(int64_t input, const torch::nn::LinearImpl& fc);

  IntGraph graph;
};

}  // namespace pdeq::deploy
