// Parameter counts, as the paper's tables report them.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>

namespace pdeq::analysis {

/// Parameter elements of a model, split into the float model and the quantizers' clipping scales.
struct ParamCount {
  int64_t total = 0;      ///< every parameter element (buffers such as BN running statistics excluded)
  int64_t quantizer = 0;  ///< clipping scales (alpha) of fake quantizers
  int64_t model() const { return total - quantizer; }  ///< what a float model of the same shape has
};

/// Counts the parameters of `module` and everything below it; `quantizer` sums the alpha elements of every
/// pdeq::quant::FakeQuantize found (1 per tensor, C per channel).
///
/// Example:
///   auto count = pdeq::analysis::count_params(*pdeq::models::make_model("resnet20", {}));
///   count.model();  // 272474, as the reference implementation
ParamCount count_params(const torch::nn::Module& module);

}  // namespace pdeq::analysis
