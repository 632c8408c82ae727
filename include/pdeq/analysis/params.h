// Parameter counts, as the paper's tables report them.
#pragma once

#include <torch/nn/module.h>

namespace pdeq::analysis {

struct ParamCount {
  int64_t total = 0;      ///< every parameter element
  int64_t quantizer = 0;  ///< clipping scales (alpha) of fake quantizers
  int64_t model() const { return total - quantizer; }  ///< what a float model of the same shape has
};

ParamCount count_params(const torch::nn::Module& module);

}  // namespace pdeq::analysis
