// Internal: the fused CPU kernels behind functional::fake_quantize (float and double; bfloat16 inputs
// computed in float; any dense layout, walked in memory order).
// Plain pointers and no LibTorch headers: the .cpp is compiled with OpenMP and its own vectorisation flags,
// which would not match the library's precompiled header.
#pragma once

#include <cstdint>

namespace pdeq::quant::detail {

/// The normalised grid of q_b: t = x/a is clipped to [lo, 1] and rounded to a multiple of 1/n.
/// `clip_dx` false: the input gradient is not clip-masked (the reference's calibrated ternary gradient).
/// `midrise`: t in [-1, 1] is rounded to the mid-rise grid (2k - n)/n, k = 0..n (n odd: no zero level), i.e.
/// q(t) = round((t + 1) n/2) / (n/2) - 1; `lo` must then be -1.
struct QuantGrid {
  int64_t n;
  double lo;
  bool clip_dx;
  bool midrise = false;
  /// The input gradient is masked at t = lo too (0 < t <= 1 passes): the unsigned grid's lower end, where
  /// ReLU's convention relu'(0) = 0 makes Q(relu(x)) and Q(x) agree in gradient as in value.
  bool open_lo = false;
};

/// A bfloat16 element as its raw bits (the upper half of an fp32), so that no LibTorch header is needed.
using BFloat16Bits = uint16_t;

/// Which outputs a forward pass writes (and which output gradients the backward pass adds up): the values in
/// T, the values rounded to bfloat16 (for a bfloat16 convolution), or both. The bfloat16 forms exist for T =
/// float only.
enum class Precisions { kExact, kBf16, kBoth };

/// y[i] = a_c * round(clip(x[i]/a_c, lo, 1) * n) / n (mid-rise: see QuantGrid), with c = i / (numel /
/// channels). `alpha` holds `channels` scales (1 for a per-tensor scale). In is T, or BFloat16Bits with T
/// float: x is widened exactly, so y is the float kernel's result on x's float values. y_bf16, when not
/// null, gets y rounded to bfloat16 (to nearest even, bit for bit a cast) in the same pass, and y may then be
/// null (T = float only).
template <typename In, typename T>
void fake_quantize_forward(const In* x, T* y, BFloat16Bits* y_bf16, int64_t numel, const T* alpha,
                           int64_t channels, const QuantGrid& grid, int num_threads);

/// The output gradient g[i] is that of y, that of y_bf16 (g_bf16 widened exactly), or their sum, whichever
/// of g and g_bf16 is not null (g_bf16 for T = float only).
/// dx[i] = g[i] inside [lo*a, a] ((lo*a, a] with open_lo; everywhere when !clip_dx), else 0; skipped when dx
/// is null.
/// dalpha[c] = sum over channel c of g * (q(t) - t inside, the clip value lo or 1 outside).
/// The sum is taken over fixed-size chunks, then over chunks in order: the result does not depend on
/// num_threads. With In = BFloat16Bits, dx is g rounded to bfloat16 (as a cast would) where it passes.
template <typename In, typename T>
void fake_quantize_backward(const T* g, const BFloat16Bits* g_bf16, const In* x, In* dx, T* dalpha,
                            int64_t numel, const T* alpha, int64_t channels, const QuantGrid& grid,
                            int num_threads);

}  // namespace pdeq::quant::detail
