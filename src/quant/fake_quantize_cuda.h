// Internal: the CUDA kernels behind functional::fake_quantize (float and double CUDA tensors), compiled from
// fake_quantize_cuda.cu only when pdeq is built with CUDA (PDEQ_WITH_CUDA).
#pragma once

#include "fake_quantize_kernels.h"

#include <ATen/core/Tensor.h>

#include <utility>

namespace pdeq::quant::detail {

/// y = Q(x) elementwise in x's memory order (y has x's strides). x dense, with dim 0 outermost when alpha has
/// one scale per slice along it; x and alpha CUDA tensors of one dtype, float or double. The same IEEE
/// operations per element as the fused CPU kernel (no FMA contraction), so y is bitwise the CPU kernel's.
at::Tensor fake_quantize_forward_cuda(const at::Tensor& x, const at::Tensor& alpha, const QuantGrid& grid);

/// {dx (undefined unless need_dx), dalpha (alpha's shape)}: dx bitwise the CPU kernel's; dalpha sums
/// g * dy/da (computed per element in x's dtype) in float64 with ATen's reduction.
std::pair<at::Tensor, at::Tensor> fake_quantize_backward_cuda(const at::Tensor& g, const at::Tensor& x,
                                                              const at::Tensor& alpha, const QuantGrid& grid,
                                                              bool need_dx);

}  // namespace pdeq::quant::detail
