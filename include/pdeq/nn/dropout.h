// Inverted dropout whose mask is a hash of each element's index, keyed by one draw from LibTorch's generator.
#pragma once

#include <torch/types.h>

namespace pdeq::nn::functional {

/// Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1 - p) when
/// `training`, else returns x. On CPU the mask is a counter-based hash (one 64-bit draw from the default
/// generator keys it): reproducible under torch::manual_seed and checkpointed RNG state, independent of the
/// thread count, and ~20x faster than at::bernoulli_ (a serial generator call per element in LibTorch 1.13
/// without MKL), which dominated PDE-GCN epochs (one dropout per layer). Other devices and dtypes (and a
/// quant::GenericKernels scope) compute the same hash with ATen integer operations: the same mask bit for
/// bit. Differentiable in x (the gradient is the same mask).
///
/// Example:
///   auto z = pdeq::nn::functional::dropout(x, 0.6, is_training());
torch::Tensor dropout(const torch::Tensor& x, double p, bool training);

}  // namespace pdeq::nn::functional
