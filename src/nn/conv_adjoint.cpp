#include <pdeq/nn/conv_adjoint.h>

#include <pdeq/nn/conv2d.h>

#include <ATen/ATen.h>

namespace pdeq::nn::functional {

torch::Tensor adjoint_weight(const torch::Tensor& weight, int64_t groups) {
  TORCH_CHECK(weight.dim() == 4, "weight must be [C_out, C_in/groups, k, k], but got shape ", weight.sizes());
  TORCH_CHECK(groups > 0 && weight.size(0) % groups == 0, "groups must divide C_out (", weight.size(0),
              "), but got ", groups);
  const int64_t out = weight.size(0), in_per_group = weight.size(1), kh = weight.size(2), kw = weight.size(3);
  // Per group: [C_out/g, C_in/g] -> [C_in/g, C_out/g]; the flip turns correlation into its adjoint.
  return weight.reshape({groups, out / groups, in_per_group, kh, kw})
      .transpose(1, 2)
      .reshape({groups * in_per_group, out / groups, kh, kw})
      .flip({2, 3});
}

torch::Tensor conv2d_adjoint(const torch::Tensor& y, const torch::Tensor& weight, int64_t padding,
                             int64_t groups, TransposeImpl impl) {
  TORCH_CHECK(padding >= 0, "padding must be non-negative, but got ", padding);
  if (impl == TransposeImpl::kConvTranspose) {
    return at::conv_transpose2d(y, weight, {}, {1, 1}, {padding, padding}, {0, 0}, groups);
  }
  const int64_t kh = weight.size(2), kw = weight.size(3);
  TORCH_CHECK(padding <= kh - 1 && padding <= kw - 1, "padding must be at most k-1 (", kh - 1, "), but got ",
              padding);
  return pdeq::nn::functional::conv2d(y, adjoint_weight(weight, groups), {}, {1, 1},
                                      {kh - 1 - padding, kw - 1 - padding}, {1, 1}, groups);
}

}  // namespace pdeq::nn::functional
