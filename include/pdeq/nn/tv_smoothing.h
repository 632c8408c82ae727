// Edge-aware total-variation smoothing of feature maps (Ben-Yair et al. 2022, Sec. 3.3): explicit steps of
// the TV flow that flatten regions, keep edges and pull outliers in, so that a quantizer wastes fewer levels.
#pragma once

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

#include <functional>
#include <ostream>

namespace pdeq::nn {

/// Edge-stopping function phi of the diffusivity w = phi(|grad u|^2).
enum class TVWeight {
  /// Charbonnier (smoothed TV): phi(s) = 1/sqrt(s + eps); max phi = 1/sqrt(eps).
  kCharbonnier,
  /// Perona-Malik: phi(s) = 1/(1 + s/eps) (eps plays K^2, the squared contrast threshold); max phi = 1.
  kPeronaMalik,
};

/// Options of the stateless operator (one or more explicit steps with given step sizes).
struct TVSmoothFuncOptions {
  /// Explicit steps (>= 1).
  TORCH_ARG(int64_t, iters) = 1;
  /// Smoothing of the edge weight (> 0): Charbonnier's epsilon, Perona-Malik's K^2.
  TORCH_ARG(double, eps) = 0.1;
  TORCH_ARG(TVWeight, weight) = TVWeight::kCharbonnier;
};

/// Options of the TVSmooth module.
struct TVSmoothOptions {
  /* implicit */ TVSmoothOptions(int64_t channels = 0);
  /// Channels C of the input (> 0), one learned gamma each.
  TORCH_ARG(int64_t, channels);
  /// Explicit steps per forward (>= 1); the paper reports feature maps after 3.
  TORCH_ARG(int64_t, iters) = 1;
  /// Initial gamma (>= 0) of every channel; the step is tau = tau_max * tanh(gamma^2 / tau_max) ~ gamma^2.
  TORCH_ARG(double, gamma_init) = 0.2;
  /// Charbonnier's epsilon / Perona-Malik's K^2 (> 0), in squared activation units. Differences well below
  /// sqrt(eps) diffuse linearly, larger ones (edges) barely move; it also sets the step bound tau_max.
  TORCH_ARG(double, eps) = 0.1;
  TORCH_ARG(TVWeight, weight) = TVWeight::kCharbonnier;
};

/// Largest stable step for `options`: tau_max = 1 / (4 max phi) (sqrt(eps)/4 Charbonnier, 1/4 Perona-Malik).
double tv_max_step(const TVSmoothFuncOptions& options);

namespace functional {
/// `iters` explicit steps of the edge-aware TV flow on every channel of x [N, C, H, W]:
///
///   x <- x - tau_c (D_x + D_y) x,   (D_x + D_y) x = dx^T (w . dx x) + dy^T (w . dy x),
///   w = phi(|dx x|^2 + |dy x|^2),
///
/// with forward differences dx x[i,j] = x[i,j+1] - x[i,j], dy x[i,j] = x[i+1,j] - x[i,j], set to 0 on the
/// last column / row (zero flux: nothing leaves the image, so a constant map is a fixed point and each
/// channel's mean is preserved). Written out per pixel with the fluxes f = w dx x, g = w dy x:
///
///   x[i,j] <- x[i,j] + tau_c (f[i,j] - f[i,j-1] + g[i,j] - g[i-1,j]),   f[.,-1] = g[-1,.] = 0.
///
/// (D_x + D_y) x is the gradient of J(x) = sum Psi(|grad x|^2)/2 with Psi' = phi (Charbonnier: J is the
/// smoothed TV norm sum sqrt(|grad x|^2 + eps)), so each step is a gradient step on J. For tau_c <= tau_max =
/// 1/(4 max phi) (tv_max_step), the step is a convex combination of a pixel and its 4 neighbours (a discrete
/// maximum principle: no new extrema, outliers only shrink) and, for Charbonnier, J does not increase.
/// `tau` holds one non-negative step per channel [C] (or one element for all); it is not clamped here.
/// Differentiable in x and tau (the backward applies the symmetric Hessian of J). Float and double CPU
/// tensors use a fused multi-threaded kernel (one pass per step forward, one backward); other devices use
/// tensor ops.
///
/// Example:
///   auto y = pdeq::nn::functional::tv_smooth(x, torch::full({x.size(1)}, 0.02),
///                                            TVSmoothFuncOptions().iters(3).eps(0.01));
torch::Tensor tv_smooth(const torch::Tensor& x, const torch::Tensor& tau,
                        const TVSmoothFuncOptions& options = {});

/// Smoothed TV norm sum_{n,c,i,j} sqrt(|grad x|^2 + eps) with the same differences (tensor ops; for tests and
/// analyses).
torch::Tensor tv_norm(const torch::Tensor& x, double eps);
}  // namespace functional

/// Learned TV-denoising step S(x) = x - gamma^2 (D_x + D_y) x of the paper, applied after an activation and
/// before its quantizer. The step per channel is tau_c = tau_max tanh(gamma_c^2 / tau_max): about gamma_c^2
/// while it is small, never above the stability bound tau_max (see functional::tv_smooth), and smooth so
/// gamma keeps its gradient; the sign of gamma does not matter (non-negative step). Input and output [N, C,
/// H, W].
///
/// Example:
///   pdeq::nn::TVSmooth tv(pdeq::nn::TVSmoothOptions(16).iters(3));
///   auto y = act_quant(tv(torch::relu(x)));
class TVSmoothImpl : public torch::nn::Cloneable<TVSmoothImpl> {
 public:
  explicit TVSmoothImpl(TVSmoothOptions options);

  void reset() override;
  /// gamma = gamma_init for every channel.
  void reset_parameters();
  /// `pdeq::nn::TVSmooth(16, iters=3, eps=0.001, weight=perona_malik)`: non-default options only.
  void pretty_print(std::ostream& stream) const override;

  torch::Tensor forward(const torch::Tensor& x);
  /// tau_c = tau_max tanh(gamma_c^2 / tau_max) [C], differentiable in gamma.
  torch::Tensor step_sizes() const;
  TVSmoothFuncOptions func_options() const;

  TVSmoothOptions options;
  torch::Tensor gamma;  ///< parameter [C]
  /// Analyses only (not saved, not cloned into a meaning): called as observer(x, y) after every forward.
  std::function<void(const torch::Tensor& input, const torch::Tensor& output)> observer;
};
TORCH_MODULE(TVSmooth);

}  // namespace pdeq::nn
