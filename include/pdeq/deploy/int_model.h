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

/// Runs an IntGraph: quint8 activation codes between the layers, int8 weight codes (per-channel scales) in
/// `quantized::conv2d` / `conv2d_relu`, residual adds in `quantized::add` / `add_relu`, each output
/// requantised to the scale of the fake quantizer that follows it in the trained network. Weights are
/// prepacked once, at construction. Float: the stem, the last residual add and the pooled classifier.
/// Images [N, C, H, W] (float, normalised as for training) -> logits [N, classes].
///
/// Example:
///   pdeq::deploy::IntegerModel model(pdeq::deploy::load_int_graph("r20.pdeqint"));
///   auto logits = model.forward(images);
class IntegerModel {
 public:
  explicit IntegerModel(IntGraph graph);

  /// Called with each op and its output (quantized or float) when set.
  using Observer = std::function<void(const IntOp& op, const torch::Tensor& output)>;
  torch::Tensor forward(const torch::Tensor& images, const Observer& observer = nullptr) const;

  const IntGraph& graph() const { return graph_; }

 private:
  IntGraph graph_;
  std::vector<c10::IValue> packed_;  ///< per op: prepacked conv weights (kQConv), else None
};

}  // namespace pdeq::deploy
