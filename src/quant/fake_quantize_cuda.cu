// CUDA kernels of the fake quantizer: one pass over the data forward, one backward (plus ATen's reduction of
// the scale gradient). Compiled only when pdeq is built with CUDA (PDEQ_WITH_CUDA).
//
// Each element does the IEEE operations of the fused CPU kernel (fake_quantize_kernels.cpp) in the same order
// -- t = x * (1/a), clip to [lo, 1], round half to even, times a/n -- with explicitly rounded multiplies,
// adds and divisions (__fmul_rn, __dadd_rn, ...), so that nvcc cannot contract them into FMAs or approximate
// a division: y and dx are bitwise those of the CPU kernel (and of the generic path on the CPU). dL/da is
// summed by ATen in float64, so it agrees with the CPU kernel's to the rounding of the summation order.
#include "fake_quantize_cuda.h"

#include <ATen/Dispatch.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

namespace pdeq::quant::detail {
namespace {

__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add_rn(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add_rn(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float div_rn(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div_rn(double a, double b) { return __ddiv_rn(a, b); }
/// Round half to even, as torch::round.
__device__ __forceinline__ float round_even(float v) { return rintf(v); }
__device__ __forceinline__ double round_even(double v) { return rint(v); }

/// Grid constants in T, computed in T on the host as the CPU kernel computes them.
template <typename T>
struct DeviceGrid {
  T n, lo, half_n, inv_half_n, inv_n;
  bool midrise, clip_dx, open_lo;
};

template <typename T>
DeviceGrid<T> device_grid(const QuantGrid& grid) {
  const T n = static_cast<T>(grid.n);
  return {n,           static_cast<T>(grid.lo), n * T(0.5), T(2) / n, T(1) / n, grid.midrise, grid.clip_dx,
          grid.open_lo};
}

/// q(tc) on the normalised grid for tc already in [lo, 1], as the CPU kernel's backward computes it.
template <typename T>
__device__ __forceinline__ T levels(T tc, const DeviceGrid<T>& g) {
  if (g.midrise) return add_rn(mul_rn(round_even(mul_rn(add_rn(tc, T(1)), g.half_n)), g.inv_half_n), T(-1));
  return mul_rn(round_even(mul_rn(tc, g.n)), g.inv_n);
}

template <typename T>
__global__ void forward_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t numel,
                               const T* __restrict__ alpha, int64_t per_scale, DeviceGrid<T> g) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < numel;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const T a = alpha[i / per_scale];
    T t = mul_rn(x[i], div_rn(T(1), a));
    t = t < g.lo ? g.lo : (t > T(1) ? T(1) : t);
    if (g.midrise) {
      y[i] = mul_rn(levels(t, g), a);
    } else {
      // The CPU kernel's forward_body: round(t * n) * (a / n).
      y[i] = mul_rn(round_even(mul_rn(t, g.n)), div_rn(a, g.n));
    }
  }
}

/// dx (when not null) and gd = g * dy/da per element, in x's memory order.
template <typename T>
__global__ void backward_kernel(const T* __restrict__ grad, const T* __restrict__ x, T* __restrict__ dx,
                                T* __restrict__ gd, int64_t numel, const T* __restrict__ alpha,
                                int64_t per_scale, DeviceGrid<T> g) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < numel;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const T a = alpha[i / per_scale];
    const T t = mul_rn(x[i], div_rn(T(1), a));
    const bool below = g.open_lo ? t <= g.lo : t < g.lo;
    const bool above = t > T(1);
    const T tc = t < g.lo ? g.lo : (above ? T(1) : t);
    const T d = below ? g.lo : (above ? T(1) : add_rn(levels(tc, g), -t));
    if (dx != nullptr) dx[i] = g.clip_dx && (below || above) ? T(0) : grad[i];
    gd[i] = mul_rn(grad[i], d);
  }
}

/// Enough blocks to fill the GPU a few times over; the kernels stride over the rest.
std::pair<unsigned, unsigned> launch_shape(int64_t numel) {
  constexpr int64_t kThreads = 256;
  const int64_t wanted = (numel + kThreads - 1) / kThreads;
  const int64_t limit =
      static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->multiProcessorCount) * 32;
  return {static_cast<unsigned>(std::max<int64_t>(1, std::min(wanted, limit))),
          static_cast<unsigned>(kThreads)};
}

int64_t per_scale(const at::Tensor& x, const at::Tensor& alpha) {
  return alpha.numel() == 1 ? std::max<int64_t>(1, x.numel()) : x.numel() / alpha.numel();
}

}  // namespace

at::Tensor fake_quantize_forward_cuda(const at::Tensor& x, const at::Tensor& alpha, const QuantGrid& grid) {
  const c10::cuda::CUDAGuard device_guard(x.device());
  at::Tensor y = at::empty_like(x);
  if (x.numel() == 0) return y;
  const auto [blocks, threads] = launch_shape(x.numel());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fake_quantize_forward_cuda", [&] {
    forward_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
        x.data_ptr<scalar_t>(), y.data_ptr<scalar_t>(), x.numel(), alpha.data_ptr<scalar_t>(),
        per_scale(x, alpha), device_grid<scalar_t>(grid));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return y;
}

std::pair<at::Tensor, at::Tensor> fake_quantize_backward_cuda(const at::Tensor& g, const at::Tensor& x,
                                                              const at::Tensor& alpha, const QuantGrid& grid,
                                                              bool need_dx) {
  const c10::cuda::CUDAGuard device_guard(x.device());
  at::Tensor dx = need_dx ? at::empty_like(x) : at::Tensor();
  at::Tensor gd = at::empty_like(x);
  if (x.numel() > 0) {
    const auto [blocks, threads] = launch_shape(x.numel());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fake_quantize_backward_cuda", [&] {
      backward_kernel<scalar_t><<<blocks, threads, 0, at::cuda::getCurrentCUDAStream()>>>(
          g.data_ptr<scalar_t>(), x.data_ptr<scalar_t>(), need_dx ? dx.data_ptr<scalar_t>() : nullptr,
          gd.data_ptr<scalar_t>(), x.numel(), alpha.data_ptr<scalar_t>(), per_scale(x, alpha),
          device_grid<scalar_t>(grid));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  // gd is in x's memory order with dim 0 outermost, so a flat view splits it by scale.
  const at::Tensor flat = gd.as_strided({gd.numel()}, {1}).to(at::kDouble);
  const at::Tensor dalpha = alpha.numel() == 1 ? flat.sum() : flat.reshape({alpha.numel(), -1}).sum(1);
  return {dx, dalpha.to(alpha.scalar_type()).reshape(alpha.sizes())};
}

}  // namespace pdeq::quant::detail
