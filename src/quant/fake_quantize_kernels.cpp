// Fused CPU kernels of the fake quantizer: one pass over the data for the forward, one for the backward.
//
// Built with OpenMP (LibTorch's CPU backend here is OpenMP, so at::parallel_for in a translation unit without
// -fopenmp silently runs serially) and -fno-trapping-math (otherwise GCC keeps the clip/select loops scalar).
// Each loop is compiled twice, for AVX2 and for the x86-64 baseline, and the variant is picked once at run
// time. Both do the same IEEE operations per element (no FMA contraction), so y and dx are bitwise identical;
// the alpha gradient is summed in double, so its float value does not depend on the vector width either.
#include "fake_quantize_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PDEQ_QUANT_AVX2_VARIANT 1
#define PDEQ_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define PDEQ_QUANT_AVX2_VARIANT 0
#define PDEQ_TARGET_AVX2
#endif

#if defined(__GNUC__)
#define PDEQ_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define PDEQ_ALWAYS_INLINE inline
#endif

namespace pdeq::quant::detail {
namespace {

/// Elements per chunk, the unit of work of a thread and of the alpha-gradient partial sums. Fixed, not
/// derived from the thread count, so that the alpha gradient is summed in the same order whatever the number
/// of threads: training stays deterministic.
constexpr int64_t kChunk = int64_t{1} << 15;

/// Adding and subtracting 1.5 * 2^mantissa rounds to the nearest integer, ties to even (the default rounding
/// mode, as torch::round), for |v| < 2^(mantissa - 1). Unlike std::nearbyint it vectorises without SSE4.1.
template <typename T>
constexpr T kRoundMagic = std::is_same_v<T, float> ? T(12582912.0) : T(6755399441055744.0);

/// Largest n (grid steps) for which the magic rounding is exact; wider grids (bits > 21 in float) use
/// nearbyint.
template <typename T>
constexpr int64_t kMagicLimit = std::is_same_v<T, float> ? (int64_t{1} << 21) : (int64_t{1} << 50);

/// Element loads and stores: T itself, or bfloat16 (BFloat16Bits, its raw bits) widened exactly to float
/// and narrowed with round-to-nearest-even, bit for bit as c10::BFloat16 (NaN -> 0x7FC0).
template <typename T>
PDEQ_ALWAYS_INLINE T widen(T v) {
  return v;
}
PDEQ_ALWAYS_INLINE float widen(BFloat16Bits v) {
  const uint32_t u = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
template <typename In, typename T>
PDEQ_ALWAYS_INLINE In narrow(T v) {
  if constexpr (std::is_same_v<In, T>) {
    return v;
  } else {
    uint32_t u;
    std::memcpy(&u, &v, sizeof u);
    const auto rounded = static_cast<BFloat16Bits>((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
    return v != v ? BFloat16Bits{0x7FC0} : rounded;
  }
}

template <typename T, bool kMagic>
PDEQ_ALWAYS_INLINE T round_even(T v) {
  if constexpr (kMagic) {
    return (v + kRoundMagic<T>)-kRoundMagic<T>;
  } else {
    return std::nearbyint(v);
  }
}

/// y = round(clip(x/a, lo, 1) * n) * (a/n) over one run sharing the scale a; kMid: the mid-rise grid
/// y = (round((t + 1) * n/2) * (2/n) - 1) * a (n is then 2^b - 1, odd, so no level is zero). kStores says
/// which of y (T) and y16 (y rounded to bfloat16) are written.
template <typename In, typename T, bool kMagic, bool kMid, Precisions kStores>
PDEQ_ALWAYS_INLINE void forward_body(const In* __restrict__ x, T* __restrict__ y,
                                     BFloat16Bits* __restrict__ y16, int64_t len, T alpha, T n, T lo) {
  const T inv_a = T(1) / alpha;
  const T step = alpha / n;
  const T half_n = n * T(0.5);
  const T inv_half_n = T(2) / n;
#pragma omp simd
  for (int64_t i = 0; i < len; ++i) {
    T t = widen(x[i]) * inv_a;
    t = t < lo ? lo : t;
    t = t > T(1) ? T(1) : t;
    T v;
    if constexpr (kMid) {
      v = (round_even<T, kMagic>((t + T(1)) * half_n) * inv_half_n - T(1)) * alpha;
    } else {
      v = round_even<T, kMagic>(t * n) * step;
    }
    if constexpr (kStores != Precisions::kBf16) y[i] = v;
    if constexpr (kStores != Precisions::kExact) y16[i] = narrow<BFloat16Bits>(v);
  }
}

/// Backward over one run sharing the scale a; writes dx when kDx and returns sum g * dy/da. The output
/// gradient is g, g16 widened, or their sum (kGrads: the outputs forward_body stored).
template <typename In, typename T, bool kMagic, bool kMid, bool kDx, Precisions kGrads>
PDEQ_ALWAYS_INLINE double backward_body(const T* __restrict__ g, const BFloat16Bits* __restrict__ g16,
                                        const In* __restrict__ x, In* __restrict__ dx, int64_t len, T alpha,
                                        T n, T lo, bool clip_dx, bool open_lo) {
  const T inv_a = T(1) / alpha;
  const T inv_n = T(1) / n;
  const T half_n = n * T(0.5);
  const T inv_half_n = T(2) / n;
  // Without the clip mask every element passes its gradient: bounds no t lies beyond do that branch-free.
  const T dx_hi = clip_dx ? T(1) : std::numeric_limits<T>::infinity();
  const T dx_lo = clip_dx ? lo : -std::numeric_limits<T>::infinity();
  const bool dx_lo_open = clip_dx && open_lo;
  // The products g * dy/da are summed in double, lane-wise in blocks: dL/da cancels heavily, and in T its
  // value would depend on the summation order, which differs between the variants of this loop (their
  // vector widths differ with the gradients' precisions). In double, every order rounds to the same T.
  constexpr int64_t kBlock = 1024;
  double total = 0.0;
  for (int64_t begin = 0; begin < len; begin += kBlock) {
    const int64_t end = std::min(len, begin + kBlock);
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = begin; i < end; ++i) {
      T gi;
      if constexpr (kGrads == Precisions::kExact) {
        gi = g[i];
      } else if constexpr (kGrads == Precisions::kBf16) {
        gi = widen(g16[i]);
      } else {
        gi = g[i] + widen(g16[i]);
      }
      const T t = widen(x[i]) * inv_a;
      T tc = t < lo ? lo : t;
      tc = tc > T(1) ? T(1) : tc;
      T q;
      if constexpr (kMid) {
        q = round_even<T, kMagic>((tc + T(1)) * half_n) * inv_half_n - T(1);
      } else {
        q = round_even<T, kMagic>(tc * n) * inv_n;
      }
      if constexpr (kDx) {
        dx[i] = narrow<In>(((t < dx_lo) | (t > dx_hi) | (dx_lo_open & (t == dx_lo))) ? T(0) : gi);
      }
      // tc != t exactly when t is outside [lo, 1] (or NaN, which then propagates).
      sum += static_cast<double>(gi * (tc != t ? tc : q - t));
    }
    total += sum;
  }
  return total;
}

template <typename In, typename T>
using ForwardFn = void (*)(const In*, T*, BFloat16Bits*, int64_t, T, T, T);
template <typename In, typename T>
using BackwardFn = double (*)(const T*, const BFloat16Bits*, const In*, In*, int64_t, T, T, T, bool, bool);

template <typename In, typename T, bool kMagic, bool kMid, Precisions kStores>
void forward_base(const In* x, T* y, BFloat16Bits* y16, int64_t len, T alpha, T n, T lo) {
  forward_body<In, T, kMagic, kMid, kStores>(x, y, y16, len, alpha, n, lo);
}
template <typename In, typename T, bool kMagic, bool kMid, bool kDx, Precisions kGrads>
double backward_base(const T* g, const BFloat16Bits* g16, const In* x, In* dx, int64_t len, T alpha, T n,
                     T lo, bool clip_dx, bool open_lo) {
  return backward_body<In, T, kMagic, kMid, kDx, kGrads>(g, g16, x, dx, len, alpha, n, lo, clip_dx, open_lo);
}

#if PDEQ_QUANT_AVX2_VARIANT
template <typename In, typename T, bool kMagic, bool kMid, Precisions kStores>
PDEQ_TARGET_AVX2 void forward_avx2(const In* x, T* y, BFloat16Bits* y16, int64_t len, T alpha, T n, T lo) {
  forward_body<In, T, kMagic, kMid, kStores>(x, y, y16, len, alpha, n, lo);
}
template <typename In, typename T, bool kMagic, bool kMid, bool kDx, Precisions kGrads>
PDEQ_TARGET_AVX2 double backward_avx2(const T* g, const BFloat16Bits* g16, const In* x, In* dx, int64_t len,
                                      T alpha, T n, T lo, bool clip_dx, bool open_lo) {
  return backward_body<In, T, kMagic, kMid, kDx, kGrads>(g, g16, x, dx, len, alpha, n, lo, clip_dx, open_lo);
}

bool has_avx2() {
  static const bool supported = __builtin_cpu_supports("avx2");
  return supported;
}
#endif

template <typename In, typename T, bool kMagic, bool kMid, Precisions kStores>
ForwardFn<In, T> pick_forward() {
#if PDEQ_QUANT_AVX2_VARIANT
  if (has_avx2()) {
    return &forward_avx2<In, T, kMagic, kMid, kStores>;
  }
#endif
  return &forward_base<In, T, kMagic, kMid, kStores>;
}

template <typename In, typename T, bool kMagic, bool kMid, bool kDx, Precisions kGrads>
BackwardFn<In, T> pick_backward() {
#if PDEQ_QUANT_AVX2_VARIANT
  if (has_avx2()) {
    return &backward_avx2<In, T, kMagic, kMid, kDx, kGrads>;
  }
#endif
  return &backward_base<In, T, kMagic, kMid, kDx, kGrads>;
}

/// The forward variant for a grid: magic rounding when exact, mid-rise or ordinary levels.
template <typename In, typename T, Precisions kStores>
ForwardFn<In, T> forward_for(const QuantGrid& grid) {
  const bool magic = grid.n <= kMagicLimit<T>;
  if (grid.midrise) {
    return magic ? pick_forward<In, T, true, true, kStores>() : pick_forward<In, T, false, true, kStores>();
  }
  return magic ? pick_forward<In, T, true, false, kStores>() : pick_forward<In, T, false, false, kStores>();
}

/// The bfloat16 outputs exist for float computations only.
template <typename In, typename T>
ForwardFn<In, T> forward_for(const QuantGrid& grid, Precisions stores) {
  if constexpr (std::is_same_v<T, float>) {
    if (stores == Precisions::kBf16) return forward_for<In, T, Precisions::kBf16>(grid);
    if (stores == Precisions::kBoth) return forward_for<In, T, Precisions::kBoth>(grid);
  }
  return forward_for<In, T, Precisions::kExact>(grid);
}

template <typename In, typename T, bool kDx, Precisions kGrads>
BackwardFn<In, T> backward_for(const QuantGrid& grid) {
  const bool magic = grid.n <= kMagicLimit<T>;
  if (grid.midrise) {
    return magic ? pick_backward<In, T, true, true, kDx, kGrads>()
                 : pick_backward<In, T, false, true, kDx, kGrads>();
  }
  return magic ? pick_backward<In, T, true, false, kDx, kGrads>()
               : pick_backward<In, T, false, false, kDx, kGrads>();
}

template <typename In, typename T, bool kDx>
BackwardFn<In, T> backward_for(const QuantGrid& grid, Precisions grads) {
  if constexpr (std::is_same_v<T, float>) {
    if (grads == Precisions::kBf16) return backward_for<In, T, kDx, Precisions::kBf16>(grid);
    if (grads == Precisions::kBoth) return backward_for<In, T, kDx, Precisions::kBoth>(grid);
  }
  return backward_for<In, T, kDx, Precisions::kExact>(grid);
}

/// Which of the exact and the bfloat16 arrays are present (non-null).
template <typename T>
Precisions present(const T* exact, const BFloat16Bits* bf16) {
  if (exact != nullptr && bf16 != nullptr) return Precisions::kBoth;
  return bf16 != nullptr ? Precisions::kBf16 : Precisions::kExact;
}

/// Calls f(begin, end, channel) for the runs of [begin, end) that share one alpha (`inner` elements each).
template <typename F>
void for_each_run(int64_t begin, int64_t end, int64_t inner, const F& f) {
  int64_t i = begin;
  while (i < end) {
    const int64_t c = i / inner;
    const int64_t run_end = std::min(end, (c + 1) * inner);
    f(i, run_end, c);
    i = run_end;
  }
}

int threads_for(int64_t num_chunks, int num_threads) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads, num_chunks)));
}

}  // namespace

template <typename In, typename T>
void fake_quantize_forward(const In* x, T* y, BFloat16Bits* y_bf16, int64_t numel, const T* alpha,
                           int64_t channels, const QuantGrid& grid, int num_threads) {
  if (numel == 0) {
    return;
  }
  const int64_t inner = numel / channels;
  const T n = static_cast<T>(grid.n);
  const T lo = static_cast<T>(grid.lo);
  const ForwardFn<In, T> run = forward_for<In, T>(grid, present(y, y_bf16));
  const int64_t num_chunks = (numel + kChunk - 1) / kChunk;
  const int threads = threads_for(num_chunks, num_threads);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t chunk = 0; chunk < num_chunks; ++chunk) {
    const int64_t begin = chunk * kChunk;
    const int64_t end = std::min(numel, begin + kChunk);
    for_each_run(begin, end, inner, [&](int64_t b, int64_t e, int64_t c) {
      run(x + b, y == nullptr ? nullptr : y + b, y_bf16 == nullptr ? nullptr : y_bf16 + b, e - b, alpha[c], n,
          lo);
    });
  }
}

template <typename In, typename T>
void fake_quantize_backward(const T* g, const BFloat16Bits* g_bf16, const In* x, In* dx, T* dalpha,
                            int64_t numel, const T* alpha, int64_t channels, const QuantGrid& grid,
                            int num_threads) {
  const int64_t inner = std::max<int64_t>(1, numel / channels);
  const T n = static_cast<T>(grid.n);
  const T lo = static_cast<T>(grid.lo);
  const Precisions grads = present(g, g_bf16);
  const BackwardFn<In, T> run =
      dx != nullptr ? backward_for<In, T, true>(grid, grads) : backward_for<In, T, false>(grid, grads);
  const int64_t num_chunks = (numel + kChunk - 1) / kChunk;
  const int threads = threads_for(num_chunks, num_threads);
  // partial[chunk * channels + c]: each chunk writes only its own row, so threads need no synchronisation.
  std::vector<double> partial(static_cast<size_t>(num_chunks * channels), 0.0);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1)
  for (int64_t chunk = 0; chunk < num_chunks; ++chunk) {
    const int64_t begin = chunk * kChunk;
    const int64_t end = std::min(numel, begin + kChunk);
    double* row = partial.data() + chunk * channels;
    for_each_run(begin, end, inner, [&](int64_t b, int64_t e, int64_t c) {
      row[c] += run(g == nullptr ? nullptr : g + b, g_bf16 == nullptr ? nullptr : g_bf16 + b, x + b,
                    dx == nullptr ? nullptr : dx + b, e - b, alpha[c], n, lo, grid.clip_dx, grid.open_lo);
    });
  }
  for (int64_t c = 0; c < channels; ++c) {
    double sum = 0.0;
    for (int64_t chunk = 0; chunk < num_chunks; ++chunk) {
      sum += partial[static_cast<size_t>(chunk * channels + c)];
    }
    dalpha[c] = static_cast<T>(sum);
  }
}

template void fake_quantize_forward<float, float>(const float*, float*, BFloat16Bits*, int64_t, const float*,
                                                  int64_t, const QuantGrid&, int);
template void fake_quantize_forward<double, double>(const double*, double*, BFloat16Bits*, int64_t,
                                                    const double*, int64_t, const QuantGrid&, int);
template void fake_quantize_forward<BFloat16Bits, float>(const BFloat16Bits*, float*, BFloat16Bits*, int64_t,
                                                         const float*, int64_t, const QuantGrid&, int);
template void fake_quantize_backward<float, float>(const float*, const BFloat16Bits*, const float*, float*,
                                                   float*, int64_t, const float*, int64_t, const QuantGrid&,
                                                   int);
template void fake_quantize_backward<double, double>(const double*, const BFloat16Bits*, const double*,
                                                     double*, double*, int64_t, const double*, int64_t,
                                                     const QuantGrid&, int);
template void fake_quantize_backward<BFloat16Bits, float>(const float*, const BFloat16Bits*,
                                                          const BFloat16Bits*, BFloat16Bits*, float*, int64_t,
                                                          const float*, int64_t, const QuantGrid&, int);

}  // namespace pdeq::quant::detail
