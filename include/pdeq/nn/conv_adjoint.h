// The adjoint K^T of a stride-1 convolution K, which symmetric layers x <- x - h K^T s(K x) apply with K's
// own weight.
#pragma once

#include <torch/types.h>

namespace pdeq::nn {

/// How K^T is computed; both give the same values (to rounding).
enum class TransposeImpl {
  /// conv2d with each group's in/out axes swapped and the kernel flipped, padding k-1-p: runs on oneDNN, as
  /// fast
  /// as the forward convolution.
  kFlippedConv,
  /// conv_transpose2d with K itself (LibTorch 1.13's CPU kernel for it is several times slower than conv2d).
  kConvTranspose,
};

namespace functional {

/// K^T y for K = conv2d(., weight, stride 1, `padding`, `groups`), i.e. conv_transpose2d(y, weight, padding,
/// groups): y [N, C_out, H', W'] -> [N, C_in, H' + k - 1 - 2*padding, ...].
/// `weight` is [C_out, C_in/groups, k, k]; autograd flows into it (a weight used by K and K^T gets both
/// gradients).
///
/// Example:
///   auto z = pdeq::nn::functional::conv2d_adjoint(torch::conv2d(x, w, {}, 1, 1), w, /*padding=*/1);
///   // <conv2d(x, w), y> == <x, conv2d_adjoint(y, w)>
torch::Tensor conv2d_adjoint(const torch::Tensor& y, const torch::Tensor& weight, int64_t padding,
                             int64_t groups = 1, TransposeImpl impl = TransposeImpl::kFlippedConv);

/// The weight of the ordinary convolution that equals K^T (kFlippedConv): [C_in, C_out/groups, k, k].
torch::Tensor adjoint_weight(const torch::Tensor& weight, int64_t groups = 1);

}  // namespace functional
}  // namespace pdeq::nn
