// The integer network an export produces: a list of operations on numbered values, with folded parameters.
#pragma once

#include <pdeq/nn/tv_smoothing.h>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace pdeq::deploy {

/// What one operation computes. "codes" are quint8 activations (unsigned, zero point as given); every kQConv
/// and kAdd output is requantised to its own scale.
enum class OpKind {
  /// Float: y = ReLU(conv2d(x, weight) + bias) (BatchNorm folded), then a 3x3/2 max-pool if `max_pool`.
  kFloatStem,
  /// Float -> codes: q = clamp(round(x / out_scale) + out_zero_point, 0, qmax).
  kQuantize,
  /// Codes -> codes: y = conv2d(x, codes * weight_scale[c]) + bias[c] on LibTorch's int8 engine, then ReLU
  /// if `relu`, then requantised to (out_scale, out_zero_point) and clamped to qmax.
  kQConv,
  /// Codes, codes or float -> codes: y = a + b (dequantised), ReLU if `relu`, requantised and clamped to
  /// qmax.
  kAdd,
  /// Codes, codes or float -> float: y = a + b (dequantised), ReLU if `relu`, kept in float (the last block).
  kAddToFloat,
  /// Float or codes -> float logits: mean over H, W (dequantised first), then weight * x + bias.
  kFloatHead,
  /// Float or codes, float or codes -> float: the two inputs (dequantised) concatenated along the channels
  /// (StableNet transitions: the block output widened by the first channels of its quantized input).
  kConcat,
  /// Float -> float: average pooling over `stride` x `stride` windows at stride `stride` (StableNet
  /// transitions; H and W rounded down as torch::avg_pool2d does).
  kAvgPool,
  /// Codes -> float: y = conv2d(x, codes * weight_scale[c]) + bias[c], ReLU if `relu`, kept in float (the
  /// integer sums exact): the input of a TV smoothing layer, a float convolution or the float head.
  kQConvToFloat,
  /// Float -> float: `tv_iters` explicit steps of the edge-aware TV flow with step `tau[c]` per channel
  /// (pdeq::nn::functional::tv_smooth with eps `tv_eps` and edge weight `tv_weight`), as the trained
  /// network's TVSmooth layer computes between its ReLU and its quantizer.
  kTvSmooth,
  /// Float -> float: y = conv2d(x, weight, groups) + bias[c], ReLU if `relu`: a convolution the trained
  /// network computes on float values (MobileNetV2's head; in its symmetric blocks the second factor of K2 K1
  /// and of K1^T K2^T, which no quantizer separates from the first).
  kFloatConv,
};

/// "float_stem", "quantize", "qconv", "add", "add_to_float", "float_head", "concat", "avg_pool",
/// "qconv_to_float", "tv_smooth", "float_conv".
const char* op_kind_name(OpKind kind);
/// The inverse of op_kind_name; throws std::runtime_error naming the unknown kind.
OpKind op_kind_from_name(const std::string& name);

/// One operation. Value 0 is the float input image; op i writes value `output` (> every input).
struct IntOp {
  OpKind kind = OpKind::kQConv;
  /// The layer it stands for; for outputs that are activation codes, the fake quantizer whose output it
  /// reproduces (e.g. "layer1.0.act_mid"), so a comparison can match the two layer by layer.
  std::string name;
  std::vector<int64_t> inputs;
  int64_t output = 0;
  /// kQConv: int8 codes [O, I/groups, k, k] (BatchNorm signs folded in: |codes| <= 2^(bits-1) - 1);
  /// kFloatStem, kFloatConv: float [O, I/groups, k, k]; kFloatHead: float [classes, C].
  torch::Tensor weight;
  /// kQConv: float64 [O], > 0: per-output-channel scale of the codes (alpha/n times |BN factor|).
  torch::Tensor weight_scale;
  /// kQConv, kFloatStem, kFloatConv, kFloatHead: float [O].
  torch::Tensor bias;
  int64_t stride = 1;
  int64_t padding = 0;
  /// Convolutions: input and output channels split into this many groups (depthwise: groups = channels).
  int64_t groups = 1;
  bool relu = false;
  bool max_pool = false;  ///< kFloatStem only
  /// Output codes (kQuantize, kQConv, kAdd): value = out_scale * (code - out_zero_point), code in [0, qmax].
  double out_scale = 1.0;
  int64_t out_zero_point = 0;
  int64_t qmax = 255;
  /// kQConv: the trained weight bit width (informational; the codes run on 8-bit kernels).
  int64_t weight_bits = 8;
  /// kTvSmooth: float [C], >= 0: the step of each channel (the trained layer's tau_max
  /// tanh(gamma^2/tau_max)).
  torch::Tensor tau;
  int64_t tv_iters = 1;                   ///< kTvSmooth: explicit steps, in [1, 100]
  double tv_eps = 0.1;                    ///< kTvSmooth: Charbonnier's epsilon / Perona-Malik's K^2, > 0
  std::string tv_weight = "charbonnier";  ///< kTvSmooth: "charbonnier" | "perona_malik"
};

/// The options of nn::functional::tv_smooth that a kTvSmooth op holds (iters, eps, edge weight).
nn::TVSmoothFuncOptions tv_smooth_options(const IntOp& op);

/// An exported network: its operations in execution order, and what a user of the file needs besides
/// (`meta`: the run's config, dataset name, input shape [C, H, W], normalisation, bit widths, export report).
struct IntGraph {
  std::vector<IntOp> ops;
  nlohmann::json meta = nlohmann::json::object();

  /// Checks the structure: inputs defined before use (codes vs float), shapes and dtypes of the parameters,
  /// float parameters finite, scales positive and finite, weight codes within +-(2^(weight_bits-1) - 1),
  /// zero points within qmax, and the channels of every weight matching its input's (times groups);
  /// throws std::runtime_error "<where>: op <i> (<kind> '<name>'): <what>". `meta` is not read.
  void validate(const std::string& where) const;
  /// validate() plus what a .pdeqint file promises its readers (save_int_graph and every load check it):
  /// `meta` is an object with "config" (a valid training config), "input_shape" [C, H, W] (each in
  /// [1, 65536]) and "num_classes" (>= 1), and the graph runs on images of that shape: the stem takes C
  /// channels, no convolution or pooling shrinks H or W below 1, both inputs of an add have the same shape
  /// and the head has num_classes outputs. Errors: "<where>: meta.<key>: <what>" or as validate().
  void validate_with_meta(const std::string& where) const;
  /// Parameters of all operations (codes count once each).
  int64_t parameter_count() const;
};

}  // namespace pdeq::deploy
