// Internal: the fused CPU kernels behind functional::tv_smooth (float and double, dense NCHW or NHWC data).
// Plain pointers and no LibTorch headers: the .cpp is compiled with OpenMP and its own vectorisation flags,
// which would not match the library's precompiled header.
#pragma once

#include <cstdint>

namespace pdeq::nn::detail {

/// The image planes of one [N, C, H, W] tensor; plane p belongs to channel p % channels.
struct TVPlanes {
  int64_t planes;              ///< N * C
  int64_t channels;            ///< C
  int64_t height;              ///< H
  int64_t width;               ///< W
  bool channels_last = false;  ///< NHWC in memory (channels-last) instead of NCHW
};

/// Edge weight phi(s) of s = |grad u|^2: 0 Charbonnier 1/sqrt(s + eps), 1 Perona-Malik 1/(1 + s/eps).
struct TVWeightFn {
  int kind;
  double eps;
};

/// One explicit step y = x + tau_c (f[i,j] - f[i,j-1] + g[i,j] - g[i-1,j]), f = phi dx x, g = phi dy x
/// (forward differences, zero on the last column / row). `tau` holds one step per channel.
template <typename T>
void tv_step_forward(const T* x, T* y, const T* tau, const TVPlanes& shape, const TVWeightFn& weight,
                     int num_threads);

/// Backward of tv_step_forward for the output gradient `g`: dx = g + tau_c D^T P with P = phi D g +
/// 2 phi'(s) (grad x . D g) grad x (the Hessian of J applied to g; skipped when dx is null), and per plane
/// dtau[p] = sum over the plane of g * (y - x) / tau_c. Each plane is summed on its own, so the result does
/// not depend on num_threads (nor, but for rounding, on the layout: y and dx are bitwise the same in both).
template <typename T>
void tv_step_backward(const T* g, const T* x, T* dx, double* dtau, const T* tau, const TVPlanes& shape,
                      const TVWeightFn& weight, int num_threads);

}  // namespace pdeq::nn::detail
