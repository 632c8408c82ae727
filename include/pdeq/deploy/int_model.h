// Integer-only inference of an exported network on LibTorch's quantized CPU engine.
#pragma once

#include <pdeq/deploy/int_graph.h>
#include <pdeq/deploy/onednn_conv.h>

#include <ATen/core/ivalue.h>
#include <torch/types.h>

#include <functional>
#include <memory>
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
  /// exactly, scaled per channel, added and quantised once, to the grid of the quantizer that follows.
  /// Agrees with fake-quant up to float ties. With oneDNN (PDEQ_WITH_ONEDNN) the sums are int32 on its int8
  /// kernels with the scale, the add, the clipping and the rounding fused into the convolution; without it,
  /// or for an add that does not fit that kernel, as kExactFloat.
  kExact,
  /// As kExact on float kernels: the integer sums in fp32 (exact below 2^24; fp64 where the bound
  /// 255 * max|w| * fan-in is larger), then scaled, added and rounded in float. Float speed.
  kExactFloat,
  /// Every convolution on LibTorch's int8 kernels; the add's inputs are requantised to 8-bit codes first
  /// (LibTorch's quantized conv has no int32 output or fused add), which rounds where fake-quant does
  /// not: the error grows with depth.
  kInt8,
};

/// "exact" | "exact-float" | "int8"; throws std::invalid_argument naming the accepted values otherwise.
ResidualMode parse_residual_mode(const std::string& name);
std::string to_string(ResidualMode mode);

/// Runs an IntGraph: quint8 activation codes between the layers, int8 weight codes (per-channel scales), each
/// convolution's output rounded to the scale of the fake quantizer that follows it in the trained network;
/// residual adds as `mode` says. Exact mode with oneDNN runs every convolution through OnednnInt8Conv (int32
/// sums, adds fused); otherwise `quantized::conv2d` / `conv2d_relu` (weights prepacked at construction) and
/// float kernels for the exact sums. Float: the stem, TV smoothing, the last residual add and the classifier.
/// Images [N, C, H, W] (float, normalised as for training) -> logits [N, classes].
///
/// Example:
///   pdeq::deploy::IntegerModel model(pdeq::deploy::load_int_graph("r20.pdeqint"));
///   auto logits = model.forward(images);
class IntegerModel {
 public:
  explicit IntegerModel(IntGraph graph, ResidualMode mode = ResidualMode::kExact);

  /// Called with each op and its output (quantized or float) when set; undefined for a convolution that its
  /// residual add runs fused (exact mode on oneDNN).
  using Observer = std::function<void(const IntOp& op, const torch::Tensor& output)>;
  torch::Tensor forward(const torch::Tensor& images, const Observer& observer = nullptr) const;

  const IntGraph& graph() const { return graph_; }
  /// How the convolutions that feed residual adds run: "onednn-int32" (exact mode with oneDNN, every such
  /// add fused), "fp32" (exact mode on float kernels; "onednn-int32+fp32" where only some adds fit oneDNN),
  /// "int8".
  std::string residual_kernel() const;

 private:
  IntGraph graph_;
  ResidualMode mode_;
  std::vector<c10::IValue> packed_;  ///< per op: prepacked int8 weights (kQConv), else None
  /// per op: where a convolution feeding a residual add runs exactly (kExact), its codes as float (or
  /// double) weights; else undefined
  std::vector<torch::Tensor> exact_weight_;
  /// per add op: its convolution(s) on oneDNN's int8 kernels with the add fused (kExact with oneDNN), else
  /// null
  struct FusedAdd;
  std::vector<std::shared_ptr<const FusedAdd>> fused_;
  std::vector<bool> run_by_add_;  ///< per op: a convolution that its add's FusedAdd runs
  /// per op: a convolution to codes on oneDNN's int8 kernels (kExact with oneDNN), else null
  std::vector<std::shared_ptr<const OnednnInt8Conv>> int8_conv_;
  /// per value: the index of the last op that reads it (forward frees it after that op)
  std::vector<size_t> last_use_;
  /// Op i (not fused) on the values computed so far.
  torch::Tensor run_op(size_t i, const std::vector<torch::Tensor>& values) const;
  static torch::Tensor run_fused_add(const FusedAdd& fused, const IntOp& add,
                                     const std::vector<torch::Tensor>& values);
};

}  // namespace pdeq::deploy
