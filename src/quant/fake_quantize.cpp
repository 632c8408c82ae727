// Clipped uniform fake quantization: one custom autograd function with fused CPU kernels.
//
// Layout: the output (and dL/dx) has x's strides when x is dense (NCHW, channels-last, ...): the kernels walk
// memory in order, so y and dL/dx are bitwise the same in every layout; dL/da sums in memory order, so across
// layouts it agrees to rounding only.
// Precision: under autocast (at::autocast, CPU or CUDA) a bfloat16/half input is quantized in fp32 and the
// output is fp32, so the levels a * k / n are exact fp32 values; nothing inside runs in autocast's lower
// precision. A bfloat16 CPU input is widened inside the fused kernel (no fp32 copy), and dL/dx comes back in
// bfloat16. Without autocast a reduced-precision input is quantized in its own dtype, as before.
#include <pdeq/quant/fake_quantize.h>

#include <pdeq/compat/torch.h>
#include <pdeq/quant/kernel_path.h>

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/csrc/autograd/custom_function.h>

#include <utility>
#include <vector>

#include "fake_quantize_kernels.h"
#ifdef PDEQ_WITH_CUDA
#include "fake_quantize_cuda.h"
#endif

namespace pdeq::quant {

FakeQuantizeOptions::FakeQuantizeOptions(QuantTarget target)
    : target_(target),
      is_signed_(target == QuantTarget::kWeight),
      init_alpha_(target == QuantTarget::kWeight ? 3.0 : 6.0),
      standardize_(target == QuantTarget::kWeight) {}

namespace {

using torch::Tensor;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// The normalised grid of q_b: t is clipped to [lo, 1] and rounded to multiples of 1/n.
/// Signed b bits use q_{b-1} on [-1, 1] (n = 2^(b-1)-1, 2^b-1 levels; b = 2 gives the ternary {-1, 0, 1});
/// unsigned b bits use q_b on [0, 1] (n = 2^b-1, 2^b levels).
/// `clip_dx` false is the reference's "calibrated gradient" for ternary weights (its
/// uq_with_calibrated_gradients): the input gradient passes unclipped, so weights outside [-a, a] keep
/// learning; dL/da is unchanged.
using Grid = detail::QuantGrid;

/// Mid-rise (signed, no zero level): n = 2^b - 1 steps of 2/n on [-1, 1], i.e. 2^b levels +-(2k-1)/n.
/// `open_lo` (unsigned only): no input gradient at the lower end, see
/// FakeQuantizeFuncOptions::open_lower_end.
Grid grid_for(int64_t bits, bool is_signed, bool ternary_calibrated, bool midrise, bool open_lo) {
  if (midrise) {
    return Grid{(int64_t{1} << bits) - 1, -1.0, true, true};
  }
  const int64_t b = is_signed ? bits - 1 : bits;
  const bool calibrated = ternary_calibrated && is_signed && bits <= 2;
  return Grid{(int64_t{1} << b) - 1, is_signed ? -1.0 : 0.0, !calibrated, false, open_lo && !is_signed};
}

void check_bits(int64_t bits, bool is_signed, bool midrise) {
  TORCH_CHECK(bits >= 1, "bits must be at least 1, but got ", bits);
  TORCH_CHECK(midrise || !is_signed || bits >= 2, "bits of a signed quantizer must be at least 2, but got ",
              bits);
}

// ---- fused CPU path (float, double): see fake_quantize_kernels.cpp
// ---------------------------------------------

/// Threads for the kernels: LibTorch's intra-op count, or 1 inside another parallel region (no nesting).
int kernel_threads() { return at::in_parallel_region() ? 1 : at::get_num_threads(); }

const detail::BFloat16Bits* bf16_data(const Tensor& t) {
  return reinterpret_cast<const detail::BFloat16Bits*>(t.data_ptr<at::BFloat16>());
}
detail::BFloat16Bits* bf16_data(Tensor& t) {
  return reinterpret_cast<detail::BFloat16Bits*>(t.data_ptr<at::BFloat16>());
}

// The kernels walk x in memory order, which any dense layout allows (NCHW, channels-last, ...): y and dx are
// allocated with x's strides (empty_like preserves a dense layout) and g is brought to them, so a
// channels-last activation stays channels-last. Per-channel scales need dim 0 outermost (see dense_input).
template <typename T>
Tensor forward_cpu(const Tensor& x, const Tensor& alpha, const Grid& grid) {
  Tensor y = at::empty_like(x);
  detail::fake_quantize_forward(x.data_ptr<T>(), y.data_ptr<T>(), nullptr, x.numel(), alpha.data_ptr<T>(),
                                alpha.numel(), grid, kernel_threads());
  return y;
}

/// A bfloat16 x computed in float (autocast): read as is, widened in the kernel; y is float.
Tensor forward_cpu_bf16(const Tensor& x, const Tensor& alpha, const Grid& grid) {
  Tensor y = at::empty_like(x, x.options().dtype(torch::kFloat));
  detail::fake_quantize_forward(bf16_data(x), y.data_ptr<float>(), nullptr, x.numel(),
                                alpha.data_ptr<float>(), alpha.numel(), grid, kernel_threads());
  return y;
}

/// Returns {dx (undefined unless need_dx), dalpha (shape of alpha)}.
template <typename T>
std::pair<Tensor, Tensor> backward_cpu(const Tensor& g, const Tensor& x, const Tensor& alpha,
                                       const Grid& grid, bool need_dx) {
  Tensor dx = need_dx ? at::empty_like(x) : Tensor();
  Tensor dalpha = at::empty(alpha.sizes(), alpha.options());
  detail::fake_quantize_backward(g.data_ptr<T>(), nullptr, x.data_ptr<T>(),
                                 need_dx ? dx.data_ptr<T>() : nullptr, dalpha.data_ptr<T>(), x.numel(),
                                 alpha.data_ptr<T>(), alpha.numel(), grid, kernel_threads());
  return {dx, dalpha};
}

/// Backward of forward_cpu_bf16: g float, dx bfloat16 (x's dtype), dalpha float.
std::pair<Tensor, Tensor> backward_cpu_bf16(const Tensor& g, const Tensor& x, const Tensor& alpha,
                                            const Grid& grid, bool need_dx) {
  using detail::BFloat16Bits;
  Tensor dx = need_dx ? at::empty_like(x) : Tensor();
  Tensor dalpha = at::empty(alpha.sizes(), alpha.options());
  detail::fake_quantize_backward(g.data_ptr<float>(), nullptr, bf16_data(x),
                                 need_dx ? bf16_data(dx) : nullptr, dalpha.data_ptr<float>(), x.numel(),
                                 alpha.data_ptr<float>(), alpha.numel(), grid, kernel_threads());
  return {dx, dalpha};
}

/// The float computation for bfloat16 convolutions, x float or bfloat16: {y in float (undefined unless
/// `exact`), y rounded to bfloat16}, one pass.
std::pair<Tensor, Tensor> forward_cpu_for_conv(const Tensor& x, const Tensor& alpha, const Grid& grid,
                                               bool exact) {
  Tensor y = exact ? at::empty_like(x, x.options().dtype(torch::kFloat)) : Tensor();
  Tensor y16 = at::empty_like(x, x.options().dtype(torch::kBFloat16));
  float* yp = exact ? y.data_ptr<float>() : nullptr;
  if (x.scalar_type() == torch::kBFloat16) {
    detail::fake_quantize_forward(bf16_data(x), yp, bf16_data(y16), x.numel(), alpha.data_ptr<float>(),
                                  alpha.numel(), grid, kernel_threads());
  } else {
    detail::fake_quantize_forward(x.data_ptr<float>(), yp, bf16_data(y16), x.numel(), alpha.data_ptr<float>(),
                                  alpha.numel(), grid, kernel_threads());
  }
  return {y, y16};
}

/// Backward of forward_cpu_for_conv: g (float, of y) and g16 (bfloat16, of y16), either undefined, both
/// in x's layout; dx in x's dtype.
std::pair<Tensor, Tensor> backward_cpu_for_conv(const Tensor& g, const Tensor& g16, const Tensor& x,
                                                const Tensor& alpha, const Grid& grid, bool need_dx) {
  Tensor dx = need_dx ? at::empty_like(x) : Tensor();
  Tensor dalpha = at::empty(alpha.sizes(), alpha.options());
  const float* gp = g.defined() ? g.data_ptr<float>() : nullptr;
  const detail::BFloat16Bits* g16p = g16.defined() ? bf16_data(g16) : nullptr;
  if (x.scalar_type() == torch::kBFloat16) {
    detail::fake_quantize_backward(gp, g16p, bf16_data(x), need_dx ? bf16_data(dx) : nullptr,
                                   dalpha.data_ptr<float>(), x.numel(), alpha.data_ptr<float>(),
                                   alpha.numel(), grid, kernel_threads());
  } else {
    detail::fake_quantize_backward(gp, g16p, x.data_ptr<float>(), need_dx ? dx.data_ptr<float>() : nullptr,
                                   dalpha.data_ptr<float>(), x.numel(), alpha.data_ptr<float>(),
                                   alpha.numel(), grid, kernel_threads());
  }
  return {dx, dalpha};
}

// ---- tensor-op path (CUDA, half precision, ...)
// ------------------------------------------------------------

/// alpha shaped to broadcast against x: a scalar, or [C, 1, ..., 1] for per-channel scales.
Tensor broadcastable(const Tensor& alpha, const Tensor& x) {
  if (alpha.numel() == 1) {
    return alpha.reshape({});
  }
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = alpha.numel();
  return alpha.reshape(shape);
}

/// q(t) on the normalised grid, t already clipped to [lo, 1].
Tensor grid_levels(const Tensor& t, const Grid& grid) {
  const double n = static_cast<double>(grid.n);
  if (grid.midrise) {
    return torch::round((t + 1.0) * (0.5 * n)) * (2.0 / n) - 1.0;
  }
  return torch::round(t * n) / n;
}

Tensor forward_ops(const Tensor& x, const Tensor& alpha, const Grid& grid) {
  const Tensor a = broadcastable(alpha, x);
  if (grid.midrise) {
    return grid_levels((x * a.reciprocal()).clamp(grid.lo, 1.0), grid) * a;
  }
  const double n = static_cast<double>(grid.n);
  return torch::round((x * a.reciprocal()).clamp(grid.lo, 1.0) * n) * (a / n);
}

std::pair<Tensor, Tensor> backward_ops(const Tensor& g, const Tensor& x, const Tensor& alpha,
                                       const Grid& grid, bool need_dx) {
  const Tensor a = broadcastable(alpha, x);
  const Tensor t = x * a.reciprocal();
  // At t = lo with open_lo, d = lo = q(lo) - lo either way; only the input gradient's mask differs.
  const Tensor below = grid.open_lo ? t <= grid.lo : t < grid.lo;
  const Tensor above = t > 1.0;
  const Tensor outside = below.logical_or(above);
  const Tensor q = grid_levels(t.clamp(grid.lo, 1.0), grid);
  const Tensor d = torch::where(below, torch::full({}, grid.lo, t.options()),
                                torch::where(above, torch::ones({}, t.options()), q - t));
  Tensor dx = need_dx ? (grid.clip_dx ? g.masked_fill(outside, 0) : g) : Tensor();
  const Tensor gd = (g * d).to(torch::kFloat64);
  Tensor dalpha = alpha.numel() == 1 ? gd.sum() : gd.reshape({alpha.numel(), -1}).sum(1);
  return {dx, dalpha.to(alpha.scalar_type()).reshape(alpha.sizes())};
}

/// `g` laid out exactly as `x` (same strides), copied only when it is not already.
Tensor with_strides_of(const Tensor& g, const Tensor& x) {
  if (g.strides() == x.strides()) return g;
  Tensor out = at::empty_like(x, g.options());
  out.copy_(g);
  return out;
}

/// x itself when the fused kernel can walk its memory (dense, no overlap; with per-channel scales, dim 0 the
/// outermost, as for NCHW and channels-last weights), else a contiguous copy.
Tensor dense_input(const Tensor& x, bool per_channel) {
  if (!x.is_non_overlapping_and_dense()) return x.contiguous();
  const bool dim0_outermost = x.dim() == 0 || x.size(0) <= 1 || x.stride(0) * x.size(0) == x.numel();
  return !per_channel || dim0_outermost ? x : x.contiguous();
}

/// The dtype Q computes in: x's, except under autocast (CPU or CUDA), where a reduced-precision input is
/// quantized in fp32, as autocast's fp32 ops do: the levels a * k / n are then the exact fp32 values
/// whatever precision the convolutions run in, and the output is fp32 (the next convolution casts it back).
/// Call it before an ExcludeDispatchKeyGuard on autocast, which hides autocast's state.
c10::ScalarType compute_dtype(const Tensor& x) {
  const bool autocast = x.device().is_cpu() ? compat::autocast_enabled(at::kCPU)
                                            : x.is_cuda() && compat::autocast_enabled(at::kCUDA);
  const auto dtype = x.scalar_type();
  const bool reduced = dtype == torch::kBFloat16 || dtype == torch::kHalf;
  return autocast && reduced ? torch::kFloat : dtype;
}

/// x in compute_dtype(x) (a differentiable cast when it differs).
Tensor autocast_input(const Tensor& x) { return x.to(compute_dtype(x)); }

/// A bfloat16 CPU input computed in float, which the fused kernel widens itself (no fp32 copy of x).
bool widens_in_kernel(const Tensor& x, c10::ScalarType compute) {
  return compute == torch::kFloat && x.scalar_type() == torch::kBFloat16 && x.device().is_cpu() &&
         fused_cpu_kernels_enabled();
}

/// The fused kernels: float or double x with a scale of its dtype, or bfloat16 x with a float scale, on
/// the CPU outside a GenericKernels scope.
bool use_fused(const Tensor& x, const Tensor& alpha) {
  if (!x.device().is_cpu() || !fused_cpu_kernels_enabled()) return false;
  const auto xt = x.scalar_type(), st = alpha.scalar_type();
  return ((xt == torch::kFloat || xt == torch::kDouble) && st == xt) ||
         (xt == torch::kBFloat16 && st == torch::kFloat);
}

/// The CUDA kernels (fake_quantize_cuda.cu, in builds with CUDA): float or double x with a scale of its
/// dtype on a GPU. Other CUDA dtypes take the tensor-op path.
bool use_cuda_kernel(const Tensor& x, const Tensor& alpha) {
#ifdef PDEQ_WITH_CUDA
  const auto xt = x.scalar_type();
  return x.is_cuda() && (xt == torch::kFloat || xt == torch::kDouble) && alpha.scalar_type() == xt;
#else
  (void)x;
  (void)alpha;
  return false;
#endif
}

/// The CUDA kernels' forward and backward (only reached when use_cuda_kernel said yes).
Tensor forward_cuda(const Tensor& x, const Tensor& alpha, const Grid& grid) {
#ifdef PDEQ_WITH_CUDA
  return detail::fake_quantize_forward_cuda(x, alpha, grid);
#else
  (void)grid;
  TORCH_INTERNAL_ASSERT(false, "no CUDA kernels in this build, but got ", x.device(), alpha.device());
  return {};
#endif
}

std::pair<Tensor, Tensor> backward_cuda(const Tensor& g, const Tensor& x, const Tensor& alpha,
                                        const Grid& grid, bool need_dx) {
#ifdef PDEQ_WITH_CUDA
  return detail::fake_quantize_backward_cuda(with_strides_of(g.to(alpha.scalar_type()), x), x, alpha, grid,
                                             need_dx);
#else
  (void)g;
  (void)grid;
  (void)need_dx;
  TORCH_INTERNAL_ASSERT(false, "no CUDA kernels in this build, but got ", x.device(), alpha.device());
  return {};
#endif
}

enum class Path : int64_t { kOps, kFusedCpu, kCuda };

Path path_for(const Tensor& x, const Tensor& alpha) {
  if (use_fused(x, alpha)) return Path::kFusedCpu;
  return use_cuda_kernel(x, alpha) ? Path::kCuda : Path::kOps;
}

/// Forward and backward of Q(x) = a * q(clip(x/a, lo, 1)) as one autograd node each.
class FakeQuantizeFunction : public torch::autograd::Function<FakeQuantizeFunction> {
 public:
  static Tensor forward(AutogradContext* ctx, const Tensor& x, const Tensor& alpha, int64_t bits,
                        bool is_signed, bool ternary_calibrated, bool midrise, bool open_lo) {
    const Grid grid = grid_for(bits, is_signed, ternary_calibrated, midrise, open_lo);
    ctx->saved_data["bits"] = bits;
    ctx->saved_data["is_signed"] = is_signed;
    ctx->saved_data["ternary_calibrated"] = ternary_calibrated;
    ctx->saved_data["midrise"] = midrise;
    ctx->saved_data["open_lo"] = open_lo;
    // Only x and alpha are kept: the mask and dy/da are recomputed in backward, which costs less than storing
    // them and keeps no extra activation memory (x is usually a ReLU output that autograd holds anyway).
    ctx->save_for_backward({x, alpha});
    // The backward pass takes the path of the forward (it may run on another thread than this one).
    const Path path = path_for(x, alpha);
    ctx->saved_data["path"] = static_cast<int64_t>(path);
    if (path == Path::kCuda) return forward_cuda(x, alpha, grid);
    const bool fused = path == Path::kFusedCpu;
    if (fused && x.scalar_type() == torch::kBFloat16) return forward_cpu_bf16(x, alpha, grid);
    if (fused) {
      return AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fake_quantize_forward",
                                        [&] { return forward_cpu<scalar_t>(x, alpha, grid); });
    }
    return forward_ops(x, alpha, grid);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& x = saved[0];
    const Tensor& alpha = saved[1];
    const Grid grid = grid_for(ctx->saved_data["bits"].toInt(), ctx->saved_data["is_signed"].toBool(),
                               ctx->saved_data["ternary_calibrated"].toBool(),
                               ctx->saved_data["midrise"].toBool(), ctx->saved_data["open_lo"].toBool());
    const bool need_dx = ctx->needs_input_grad(0);
    const bool need_dalpha = ctx->needs_input_grad(1);
    const Tensor& g = grad_outputs[0];
    if (!g.defined() || (!need_dx && !need_dalpha)) {
      return {Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
    }
    std::pair<Tensor, Tensor> grads;
    const auto path = static_cast<Path>(ctx->saved_data["path"].toInt());
    if (path == Path::kCuda) {
      grads = backward_cuda(g, x, alpha, grid, need_dx);
    } else if (path == Path::kFusedCpu) {
      // g in the computation's dtype (alpha's) and x's memory layout.
      const Tensor gc = with_strides_of(g.to(alpha.scalar_type()), x);
      if (x.scalar_type() == torch::kBFloat16) {
        grads = backward_cpu_bf16(gc, x, alpha, grid, need_dx);
      } else {
        grads = AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fake_quantize_backward", [&] {
          return backward_cpu<scalar_t>(gc, x, alpha, grid, need_dx);
        });
      }
    } else {
      grads = backward_ops(g, x, alpha, grid, need_dx);
    }
    return {grads.first, need_dalpha ? grads.second : Tensor(), Tensor(), Tensor(), Tensor(), Tensor(),
            Tensor()};
  }
};

/// FakeQuantizeFunction for bfloat16 convolutions (CPU, float computation): outputs {y16} or {y16, y}, y16
/// the float levels rounded to bfloat16; the backward pass adds up the gradients of the outputs used.
class FakeQuantizeForConvFunction : public torch::autograd::Function<FakeQuantizeForConvFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const Tensor& x, const Tensor& alpha, int64_t bits,
                               bool is_signed, bool midrise, bool open_lo, bool exact) {
    const Grid grid = grid_for(bits, is_signed, /*ternary_calibrated=*/false, midrise, open_lo);
    ctx->saved_data["bits"] = bits;
    ctx->saved_data["is_signed"] = is_signed;
    ctx->saved_data["midrise"] = midrise;
    ctx->saved_data["open_lo"] = open_lo;
    ctx->saved_data["exact"] = exact;
    ctx->save_for_backward({x, alpha});
    // An unused output's gradient stays undefined instead of a tensor of zeros to read.
    ctx->set_materialize_grads(false);
    auto [y, y16] = forward_cpu_for_conv(x, alpha, grid, exact);
    return exact ? variable_list{y16, y} : variable_list{y16};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& x = saved[0];
    const Tensor& alpha = saved[1];
    const Grid grid = grid_for(ctx->saved_data["bits"].toInt(), ctx->saved_data["is_signed"].toBool(),
                               /*ternary_calibrated=*/false, ctx->saved_data["midrise"].toBool(),
                               ctx->saved_data["open_lo"].toBool());
    const bool need_dx = ctx->needs_input_grad(0);
    const bool need_dalpha = ctx->needs_input_grad(1);
    const Tensor& g16 = grad_outputs[0];
    const Tensor g = ctx->saved_data["exact"].toBool() ? grad_outputs[1] : Tensor();
    if ((!g.defined() && !g16.defined()) || (!need_dx && !need_dalpha)) {
      return {Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor(), Tensor()};
    }
    const Tensor gc = g.defined() ? with_strides_of(g.to(torch::kFloat), x) : Tensor();
    const Tensor g16c = g16.defined() ? with_strides_of(g16.to(torch::kBFloat16), x) : Tensor();
    auto grads = backward_cpu_for_conv(gc, g16c, x, alpha, grid, need_dx);
    return {grads.first, need_dalpha ? grads.second : Tensor(), Tensor(), Tensor(), Tensor(), Tensor(),
            Tensor()};
  }
};

/// (w - mean) / std over the whole tensor (unbiased std, as the reference's tensor.std()), differentiable
/// through ordinary autograd (weights are small). The epsilon only guards constant tensors (e.g. a
/// zero-initialised weight), where std is 0 and the reference would produce NaN.
Tensor standardize(const Tensor& w) {
  constexpr double kEps = 1e-8;
  return (w - w.mean()) / (w.std() + kEps);
}

/// alpha in x's dtype, at least kMinAlpha in value; the gradient passes the clamp unchanged (straight
/// through), so the autograd function below computes forward and backward with the clamped scale.
Tensor positive_scale(const Tensor& alpha, c10::ScalarType dtype) {
  // Clamped in float or double (LibTorch 1.13 has no CPU clamp for half), then cast to x's dtype; alpha has
  // one element per channel at most, so the casts cost nothing.
  const Tensor a = alpha.scalar_type() == torch::kDouble ? alpha : alpha.to(torch::kFloat);
  // Value: exactly max(a, kMinAlpha) (a - a.detach() is 0); gradient: the identity.
  return (a.detach().clamp_min(kMinAlpha) + (a - a.detach())).to(dtype);
}

const char* target_name(QuantTarget target) {
  return target == QuantTarget::kWeight ? "weight" : "activation";
}

}  // namespace

namespace functional {

torch::Tensor clip_to_scale(const torch::Tensor& x_in, const torch::Tensor& alpha, bool is_signed,
                            bool open_lower_end) {
  const Tensor x = autocast_input(x_in);  // before the guard, which hides autocast's state
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  // Selections against the (broadcast) scale give exactly the clip mask on dL/dx, closed at the ends as the
  // fused kernel's, and dL/da = lo or 1 outside. Written with where rather than min/max/clamp: LibTorch 2.x
  // gives a tie x = a half of the gradient on each side and stops clamp's gradient at its bounds, 1.13 did
  // neither, and both must agree with the kernel.
  const Tensor a = broadcastable(positive_scale(alpha, x.scalar_type()), x);
  const Tensor upper = torch::where(x > a, a, x);
  if (is_signed) return torch::where(upper < -a, -a, upper);
  // relu has no input gradient at 0 (the open lower end); the closed one passes it. NaN stays NaN.
  return open_lower_end ? torch::relu(upper)
                        : torch::where(upper < 0, torch::zeros({}, upper.options()), upper);
}

torch::Tensor fake_quantize(const torch::Tensor& x_in, const torch::Tensor& alpha,
                            const FakeQuantizeFuncOptions& options) {
  const int64_t bits = options.bits();
  check_bits(bits, options.is_signed(), options.midrise());
  if (bits >= kFullPrecisionBits) {
    return x_in;
  }
  TORCH_CHECK(x_in.defined(), "x must be a defined tensor, but got an undefined one");
  const auto dtype = compute_dtype(x_in);
  // Nothing in here may run in autocast's lower precision (the casts below are ours).
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const Tensor x = widens_in_kernel(x_in, dtype) ? x_in : x_in.to(dtype);
  TORCH_CHECK(alpha.defined(), "alpha must be a defined tensor, but got an undefined one");
  TORCH_CHECK(x.is_floating_point(), "x must be a floating-point tensor, but got ", x.scalar_type());
  const bool per_channel = alpha.numel() != 1;
  TORCH_CHECK(!per_channel || (alpha.dim() == 1 && x.dim() >= 1 && alpha.size(0) == x.size(0)),
              "alpha must have one element or one per slice along dim 0 of x (",
              (x.dim() >= 1 ? x.size(0) : 0), "), but got shape ", alpha.sizes(), " for x of shape ",
              x.sizes());
  // The fused kernel reads x (in its own dense layout) and alpha as flat arrays of one dtype; the casts are
  // differentiable, so alpha's gradient comes back in alpha's own dtype.
  const torch::Tensor xc = dense_input(x, per_channel);
  const torch::Tensor ac = positive_scale(alpha, dtype).contiguous();
  return FakeQuantizeFunction::apply(xc, ac, bits, options.is_signed() || options.midrise(),
                                     options.ternary_at_two_bits(), options.midrise(),
                                     options.open_lower_end());
}

}  // namespace functional

FakeQuantizeImpl::ConvOperand FakeQuantizeImpl::forward_for_conv(const torch::Tensor& x, bool exact) {
  const bool bf16_conv = fused_cpu_kernels_enabled() && compat::autocast_enabled(at::kCPU) &&
                         compat::autocast_dtype(at::kCPU) == torch::kBFloat16 && x.defined() &&
                         x.device().is_cpu() &&
                         (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kBFloat16);
  // Activations with one scale, quantizing, nobody watching: everything else takes the ordinary path.
  if (!bf16_conv || is_weight() || options.channels() != 0 || observer || bits() >= kFullPrecisionBits) {
    torch::Tensor y = forward(x);
    return {y, exact ? y : torch::Tensor()};
  }
  const int64_t b = bits();
  check_bits(b, options.is_signed(), options.midrise());
  const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  const variable_list out = FakeQuantizeForConvFunction::apply(
      dense_input(x, /*per_channel=*/false), positive_scale(alpha, torch::kFloat).contiguous(), b,
      options.is_signed() || options.midrise(), options.midrise(), options.absorb_relu(), exact);
  return {out[0], exact ? out[1] : torch::Tensor()};
}

FakeQuantizeImpl::FakeQuantizeImpl(FakeQuantizeOptions options_) : options(std::move(options_)) { reset(); }

void FakeQuantizeImpl::reset() {
  check_bits(options.bits(), options.is_signed(), options.midrise());
  TORCH_CHECK(options.init_alpha() > 0, "init_alpha must be positive, but got ", options.init_alpha());
  TORCH_CHECK(options.channels() >= 0, "channels must be non-negative, but got ", options.channels());
  alpha = register_parameter("alpha",
                             options.channels() > 0 ? torch::empty({options.channels()}) : torch::empty({}));
  bits_ = register_buffer("bits", torch::tensor(options.bits(), torch::kInt64));
  reset_parameters();
}

void FakeQuantizeImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  alpha.fill_(options.init_alpha());
}

void FakeQuantizeImpl::pretty_print(std::ostream& stream) const {
  const FakeQuantizeOptions defaults(options.target());
  stream << "pdeq::quant::FakeQuantize(target=" << target_name(options.target());
  // The current bit width (set_bits and checkpoints change it), not the initial one.
  if (bits() != defaults.bits()) {
    stream << ", bits=" << bits();
  }
  if (options.is_signed() != defaults.is_signed()) {
    stream << ", is_signed=" << std::boolalpha << options.is_signed();
  }
  if (options.midrise() != defaults.midrise()) {
    stream << ", midrise=" << std::boolalpha << options.midrise();
  }
  if (options.init_alpha() != defaults.init_alpha()) {
    stream << ", init_alpha=" << options.init_alpha();
  }
  if (options.channels() != defaults.channels()) {
    stream << ", channels=" << options.channels();
  }
  if (is_weight() && options.standardize() != defaults.standardize()) {
    stream << ", standardize=" << std::boolalpha << options.standardize();
  }
  stream << ")";
}

torch::Tensor FakeQuantizeImpl::forward(const torch::Tensor& x) {
  if (!observer) return quantize(x);
  torch::Tensor y = quantize(x);
  observer(x, y);
  return y;
}

torch::Tensor FakeQuantizeImpl::quantize(const torch::Tensor& x) {
  const int64_t b = bits();
  if (passes_through()) {
    return x;
  }
  TORCH_CHECK(options.channels() == 0 || (x.dim() >= 1 && x.size(0) == options.channels()),
              "x.size(0) must equal channels (", options.channels(),
              ") of a per-channel quantizer, but got shape ", x.sizes());
  torch::Tensor input = x;
  if (is_weight() && options.standardize()) {
    // The statistics in fp32 under autocast too (mean/std are no autocast ops today; this keeps it so). The
    // guard ends here: the functional quantizers below read autocast's state themselves.
    const torch::Tensor xf = autocast_input(x);
    const c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
    input = standardize(xf);
  }
  if (b >= kFullPrecisionBits) {
    // A layer trained to quantize, evaluated in "full precision" as the paper means it: BN was trained behind
    // the standardisation and the clip, so both stay and only the rounding goes.
    return functional::clip_to_scale(input, alpha, options.is_signed(), options.absorb_relu());
  }
  // The reference uses the calibrated ternary gradient for weights only (signed activations keep the clip
  // mask).
  return functional::fake_quantize(input, alpha,
                                   FakeQuantizeFuncOptions()
                                       .bits(b)
                                       .is_signed(options.is_signed())
                                       .midrise(options.midrise())
                                       .open_lower_end(options.absorb_relu())
                                       .ternary_at_two_bits(is_weight()));
}

void FakeQuantizeImpl::set_bits(int64_t bits) {
  check_bits(bits, options.is_signed(), options.midrise());
  torch::NoGradGuard no_grad;
  bits_.fill_(bits);
}

int64_t FakeQuantizeImpl::bits() const {
  // Inference tensors carry no version counter; they are read every time.
  if (bits_.is_inference()) return bits_.item<int64_t>();
  const void* data = bits_.data_ptr();
  const uint32_t version = bits_.unsafeGetTensorImpl()->version_counter().current_version();
  if (data != cached_bits_data_ || version != cached_bits_version_) {
    cached_bits_ = bits_.item<int64_t>();
    cached_bits_data_ = data;
    cached_bits_version_ = version;
  }
  return cached_bits_;
}

bool FakeQuantizeImpl::passes_through() const {
  return options.bits() >= kFullPrecisionBits && bits() >= kFullPrecisionBits;
}

bool FakeQuantizeImpl::absorbs_relu() const {
  return options.absorb_relu() && !is_weight() && !options.is_signed() && !options.midrise() &&
         !passes_through() && !observer;
}

}  // namespace pdeq::quant
