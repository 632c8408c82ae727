// Integer-only inference of an exported network on LibTorch's quantized CPU engine.
#pragma once

#include <pdeq/deploy/int_graph.h>

#include <ATen/core/ivalue.h>
#include <torch/types.h>

#include <functional>
#include <string>
#include <vector>

namespace pdeq::deploy {

/// Selects LibTorch's oneDNN quantized engine (int8 convolutions with AVX-512 VNNI where the CPU has it);
/// Debian's LibTorch 1.13 has no FBGEMM, and QNNPACK is slower than float on x86. Throws when the build has
/// no oneDNN. Returns the engine's name.
std::string select_quantized_engine();

/// How the two inputs of a residual add (the branch's last convolution, a projection shortcut) are computed.
enum class ResidualMode {
  /// Their accumulators stay whole, as in the fake-quant network: int8 codes times int8 weights summed
  /// exactly (integers in fp32 below 2^24, else fp64, on oneDNN's float kernels), scaled per channel, added
  /// in
  /// float and quantised once, to the grid of the quantizer that follows. Agrees with fake-quant up to
  /// float ties; those convolutions run at float speed.
  kExact,
  /// Every convolution on oneDNN's int8 kernels; the add's inputs are requantised to 8-bit codes first
  /// (LibTorch 1.13's quantized conv has no int32 output or fused add), which rounds where fake-quant does
  /// not: fastest, but the error grows with depth.
  kInt8,
};

/// "exact" | "int8"; throws std::invalid_argument naming the accepted values otherwise.
ResidualMode parse_residual_mode(const std::string& name);
std::string to_string(ResidualMode mode);

/// Runs an IntGraph: quint8 activation codes between the layers, int8 weight codes (per-channel scales) in
/// `quantized::conv2d` / `conv2d_relu`, each output requantised to the scale of the fake quantizer that
/// follows it in the trained network; residual adds as `mode` says. Weights are prepacked once, at
/// construction. Float: the stem, the last residual add and the pooled classifier.
/// Images [N, C, H, W] (float, normalised as for training) -> logits [N, classes].
///
/// Example:
///   pdeq::deploy::IntegerModel model(pdeq::deploy::load_int_graph("r20.pdeqint"));
///   auto logits = model.forward(images);
class IntegerModel {
 public:
  explicit IntegerModel(IntGraph graph, ResidualMode mode = ResidualMode::kExact);

  /// Called with each op and its output (quantized or float) when set.
  using Observer = std::function<void(const IntOp& op, const torch::Tensor& output)>;
  torch::Tensor forward(const torch::Tensor& images, const Observer& observer = nullptr) const;

  const IntGraph& graph() const { return graph_; }

 private:
  IntGraph graph_;
  ResidualMode mode_;
  std::vector<c10::IValue> packed_;  ///< per op: prepacked int8 weights (kQConv), else None
  /// per op: where a convolution feeding a residual add runs exactly (kExact), its codes as float (or
  /// double) weights; else undefined
  std::vector<torch::Tensor> exact_weight_;
};

}  // namespace pdeq::deploy
