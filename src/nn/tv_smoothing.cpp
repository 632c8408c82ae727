#include <pdeq/nn/tv_smoothing.h>

#include <pdeq/quant/kernel_path.h>

#include "tv_smoothing_kernels.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/nn/init.h>

#include <cmath>

namespace pdeq::nn {
namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

void check_func_options(const TVSmoothFuncOptions& options) {
  TORCH_CHECK(options.iters() >= 1, "iters must be at least 1, but got ", options.iters());
  TORCH_CHECK(options.eps() > 0 && std::isfinite(options.eps()), "eps must be positive and finite, but got ",
              options.eps());
}

const char* weight_name(TVWeight weight) {
  return weight == TVWeight::kCharbonnier ? "charbonnier" : "perona_malik";
}

// ---- tensor-op path (CUDA, half precision, ...): autograd differentiates it
// --------------------------------

/// Forward differences along `dim` with a zero last slice.
Tensor forward_difference(const Tensor& x, int64_t dim) {
  const int64_t n = x.size(dim);
  const Tensor d = x.narrow(dim, 1, n - 1) - x.narrow(dim, 0, n - 1);
  std::vector<int64_t> pad(static_cast<size_t>(2 * (x.dim() - dim)), 0);
  pad[pad.size() - 1] = 1;  // after the last slice of `dim` (pad lists dims from the last one backwards)
  return torch::constant_pad_nd(d, pad, 0);
}

/// f shifted by one along `dim` towards higher indices, with a zero first slice: f[j-1].
Tensor shifted(const Tensor& f, int64_t dim) {
  const int64_t n = f.size(dim);
  std::vector<int64_t> pad(static_cast<size_t>(2 * (f.dim() - dim)), 0);
  pad[pad.size() - 2] = 1;
  return torch::constant_pad_nd(f.narrow(dim, 0, n - 1), pad, 0);
}

Tensor phi(const Tensor& s, const TVSmoothFuncOptions& options) {
  return options.weight() == TVWeight::kCharbonnier ? torch::rsqrt(s + options.eps())
                                                    : options.eps() / (s + options.eps());
}

Tensor step_ops(const Tensor& x, const Tensor& tau, const TVSmoothFuncOptions& options) {
  const Tensor gx = forward_difference(x, 3);
  const Tensor gy = forward_difference(x, 2);
  const Tensor w = phi(gx * gx + gy * gy, options);
  const Tensor fx = w * gx;
  const Tensor fy = w * gy;
  const Tensor div = (fx - shifted(fx, 3)) + (fy - shifted(fy, 2));
  return x + tau.reshape({1, -1, 1, 1}) * div;
}

// ---- fused CPU path (float, double): see tv_smoothing_kernels.cpp
// ------------------------------------------

int kernel_threads() { return at::in_parallel_region() ? 1 : at::get_num_threads(); }

/// Float and double CPU tensors outside a quant::GenericKernels scope; everything else takes step_ops.
bool use_fused(const Tensor& x) {
  return x.device().is_cpu() && (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble) &&
         quant::fused_cpu_kernels_enabled();
}

/// The layout the fused kernel sweeps x in: NCHW, or NHWC for a channels-last x (a tensor that is both, e.g.
/// C = 1, counts as NCHW).
at::MemoryFormat kernel_format(const Tensor& x) {
  return !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast)
             ? at::MemoryFormat::ChannelsLast
             : at::MemoryFormat::Contiguous;
}

detail::TVPlanes planes_of(const Tensor& x) {
  return {x.size(0) * x.size(1), x.size(1), x.size(2), x.size(3),
          kernel_format(x) == at::MemoryFormat::ChannelsLast};
}

/// One explicit step as one autograd node: only x and tau are saved; the fluxes are recomputed in backward.
class TVStepFunction : public torch::autograd::Function<TVStepFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& tau, double eps, int64_t kind) {
    ctx->save_for_backward({x, tau});
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["kind"] = kind;
    Tensor y = at::empty_like(x, kernel_format(x));
    const detail::TVWeightFn w{static_cast<int>(kind), eps};
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "tv_step_forward", [&] {
      detail::tv_step_forward<scalar_t>(x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(),
                                        tau.data_ptr<scalar_t>(), planes_of(x), w, kernel_threads());
    });
    return y;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& x = saved[0];
    const Tensor& tau = saved[1];
    const Tensor& g = grad_outputs[0];
    const bool need_dx = ctx->needs_input_grad(0);
    const bool need_dtau = ctx->needs_input_grad(1);
    if (!g.defined() || (!need_dx && !need_dtau)) return {Tensor(), Tensor(), Tensor(), Tensor()};
    const Tensor gc = g.to(x.scalar_type()).contiguous(kernel_format(x));
    Tensor dx = need_dx ? at::empty_like(x, kernel_format(x)) : Tensor();
    Tensor dtau_planes = torch::empty({x.size(0), x.size(1)}, x.options().dtype(torch::kFloat64));
    const detail::TVWeightFn w{static_cast<int>(ctx->saved_data["kind"].toInt()),
                               ctx->saved_data["eps"].toDouble()};
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "tv_step_backward", [&] {
      detail::tv_step_backward<scalar_t>(
          gc.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), need_dx ? dx.data_ptr<scalar_t>() : nullptr,
          dtau_planes.data_ptr<double>(), tau.data_ptr<scalar_t>(), planes_of(x), w, kernel_threads());
    });
    // Sum over the batch in a fixed order: deterministic whatever the thread count.
    Tensor dtau = need_dtau ? dtau_planes.sum(0).to(tau.scalar_type()) : Tensor();
    return {dx, dtau, Tensor(), Tensor()};
  }
};

}  // namespace

double tv_max_step(const TVSmoothFuncOptions& options) {
  check_func_options(options);
  // tau * (sum of the 4 edge weights around a pixel) <= 1 with every weight <= max phi.
  return options.weight() == TVWeight::kCharbonnier ? 0.25 * std::sqrt(options.eps()) : 0.25;
}

namespace functional {

torch::Tensor tv_smooth(const torch::Tensor& x, const torch::Tensor& tau,
                        const TVSmoothFuncOptions& options) {
  check_func_options(options);
  TORCH_CHECK(x.defined() && x.dim() == 4, "x must be a [N, C, H, W] tensor, but got shape ",
              x.defined() ? x.sizes() : torch::IntArrayRef{});
  TORCH_CHECK(x.is_floating_point(), "x must be a floating-point tensor, but got ", x.scalar_type());
  TORCH_CHECK(tau.defined() && tau.dim() <= 1 && (tau.numel() == 1 || tau.numel() == x.size(1)),
              "tau must have one element or one per channel (", x.size(1), "), but got shape ",
              tau.defined() ? tau.sizes() : torch::IntArrayRef{});
  if (x.numel() == 0) return x;
  // One step per channel, in x's dtype (the cast is differentiable, so tau's gradient keeps its own dtype).
  const Tensor t = tau.to(x.scalar_type()).reshape({-1}).expand({x.size(1)}).contiguous();
  // The fused kernel sweeps NCHW planes or NHWC images, so the output keeps the caller's layout; other
  // layouts go through a dense copy.
  const auto format = x.suggest_memory_format();
  Tensor y = x;
  for (int64_t k = 0; k < options.iters(); ++k) {
    if (use_fused(y)) {
      y = TVStepFunction::apply(y.contiguous(kernel_format(y)), t, options.eps(),
                                static_cast<int64_t>(options.weight() == TVWeight::kCharbonnier ? 0 : 1));
    } else {
      y = step_ops(y, t, options);
    }
  }
  return y.contiguous(format);
}

torch::Tensor tv_norm(const torch::Tensor& x, double eps) {
  TORCH_CHECK(x.dim() == 4, "x must be a [N, C, H, W] tensor, but got shape ", x.sizes());
  const Tensor gx = forward_difference(x, 3);
  const Tensor gy = forward_difference(x, 2);
  return torch::sqrt(gx * gx + gy * gy + eps).sum();
}

}  // namespace functional

TVSmoothOptions::TVSmoothOptions(int64_t channels) : channels_(channels) {}

TVSmoothImpl::TVSmoothImpl(TVSmoothOptions options_) : options(std::move(options_)) { reset(); }

void TVSmoothImpl::reset() {
  TORCH_CHECK(options.channels() > 0, "channels must be positive, but got ", options.channels());
  TORCH_CHECK(options.gamma_init() >= 0 && std::isfinite(options.gamma_init()),
              "gamma_init must be non-negative and finite, but got ", options.gamma_init());
  check_func_options(func_options());
  gamma = register_parameter("gamma", torch::empty({options.channels()}));
  reset_parameters();
}

void TVSmoothImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  gamma.fill_(options.gamma_init());
}

void TVSmoothImpl::pretty_print(std::ostream& stream) const {
  const TVSmoothOptions defaults(options.channels());
  stream << "pdeq::nn::TVSmooth(" << options.channels();
  if (options.iters() != defaults.iters()) stream << ", iters=" << options.iters();
  if (options.gamma_init() != defaults.gamma_init()) stream << ", gamma_init=" << options.gamma_init();
  if (options.eps() != defaults.eps()) stream << ", eps=" << options.eps();
  if (options.weight() != defaults.weight()) stream << ", weight=" << weight_name(options.weight());
  stream << ")";
}

TVSmoothFuncOptions TVSmoothImpl::func_options() const {
  return TVSmoothFuncOptions().iters(options.iters()).eps(options.eps()).weight(options.weight());
}

torch::Tensor TVSmoothImpl::step_sizes() const {
  const double tau_max = tv_max_step(func_options());
  return tau_max * torch::tanh(gamma * gamma / tau_max);
}

torch::Tensor TVSmoothImpl::forward(const torch::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == options.channels(), "x must be [N, ", options.channels(),
              ", H, W], but got shape ", x.sizes());
  torch::Tensor y = functional::tv_smooth(x, step_sizes(), func_options());
  if (observer) observer(x, y);
  return y;
}

}  // namespace pdeq::nn
