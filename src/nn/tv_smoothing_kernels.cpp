// Fused CPU kernels of the TV step: one sweep over each image plane (NCHW) or each image (NHWC) forward, one
// backward.
//
// Built with OpenMP (LibTorch's CPU backend here is OpenMP), -fno-trapping-math and -fno-math-errno (so that
// the sqrt and division loops vectorise; pdeq never reads errno or the floating-point flags). As the
// quantizer kernels, each plane sweep is compiled twice, for AVX2 and for the x86-64 baseline, and the
// variant is picked once at run time (no FMA contraction in either, so both compute the same IEEE operations
// per element). Each plane is processed row by row (an NHWC image too: a row of W pixels x C channels, the
// horizontal neighbour C elements on, so NHWC gives bitwise the NCHW values): the fluxes of a row go to small
// per-thread buffers in one vectorisable loop, then the output row combines them with the previous row's
// vertical fluxes, so every edge weight (one sqrt or division) is computed once per pixel.
#include "tv_smoothing_kernels.h"

#include <algorithm>
#include <cmath>
#include <vector>

#if defined(__GNUC__)
#define PDEQ_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define PDEQ_ALWAYS_INLINE inline
#endif

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define PDEQ_TV_AVX2_VARIANT 1
#define PDEQ_TARGET_AVX2 __attribute__((target("avx2")))
#else
#define PDEQ_TV_AVX2_VARIANT 0
#define PDEQ_TARGET_AVX2
#endif

namespace pdeq::nn::detail {
namespace {

/// phi(s) and c(s) = 2 phi'(s) of the Charbonnier weight: 1/sqrt(s + eps) and -phi^3.
template <typename T>
struct Charbonnier {
  T eps;
  PDEQ_ALWAYS_INLINE T phi(T s) const { return T(1) / std::sqrt(s + eps); }
  PDEQ_ALWAYS_INLINE T dphi2(T p) const { return -p * p * p; }
};

/// Perona-Malik: phi(s) = 1/(1 + s/eps), 2 phi'(s) = -2 phi^2 / eps.
template <typename T>
struct PeronaMalik {
  T eps;
  PDEQ_ALWAYS_INLINE T phi(T s) const { return eps / (eps + s); }
  PDEQ_ALWAYS_INLINE T dphi2(T p) const { return T(-2) * p * p / eps; }
};

/// One step per element of a row: the plane's step (NCHW rows) or tau[c] of each element (NHWC rows).
template <typename T>
struct PlaneTau {
  T tau;
  PDEQ_ALWAYS_INLINE T operator[](int64_t) const { return tau; }
};
template <typename T>
struct RowTau {
  const T* __restrict__ tau;
  PDEQ_ALWAYS_INLINE T operator[](int64_t j) const { return tau[j]; }
};

// A row is `length` elements; its horizontal neighbour is `step` elements on (NCHW: a row of W pixels, step
// 1; NHWC: a row of W pixels x C channels, step C), so the last `step` elements are the last column.

/// Fluxes of row `r` (`below` is the next row, null on the last row): fx = phi dx, fy = phi dy, each set to
/// 0 where its difference is (last column, last row).
template <typename T, typename W>
PDEQ_ALWAYS_INLINE void row_fluxes(const T* __restrict__ r, const T* __restrict__ below, T* __restrict__ fx,
                                   T* __restrict__ fy, int64_t length, int64_t step, const W& w) {
  const int64_t inner = length - step;
  if (below) {
#pragma omp simd
    for (int64_t j = 0; j < inner; ++j) {
      const T gx = r[j + step] - r[j];
      const T gy = below[j] - r[j];
      const T p = w.phi(gx * gx + gy * gy);
      fx[j] = p * gx;
      fy[j] = p * gy;
    }
    for (int64_t j = inner; j < length; ++j) {
      const T gy = below[j] - r[j];
      fx[j] = T(0);
      fy[j] = w.phi(gy * gy) * gy;
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < inner; ++j) {
      const T gx = r[j + step] - r[j];
      fx[j] = w.phi(gx * gx) * gx;
      fy[j] = T(0);
    }
    for (int64_t j = inner; j < length; ++j) fx[j] = fy[j] = T(0);
  }
}

/// out = base + tau (fx[j] - fx[j - step] + fy[j] - fy_above[j]), the first column peeled so the loop has no
/// branch.
template <typename T, typename Tau>
PDEQ_ALWAYS_INLINE void row_update(const T* __restrict__ base, T* __restrict__ out, const T* __restrict__ fx,
                                   const T* __restrict__ fy, const T* __restrict__ fy_above, int64_t length,
                                   int64_t step, const Tau& tau) {
  for (int64_t j = 0; j < step; ++j) out[j] = base[j] + tau[j] * ((fx[j]) + (fy[j] - fy_above[j]));
#pragma omp simd
  for (int64_t j = step; j < length; ++j)
    out[j] = base[j] + tau[j] * ((fx[j] - fx[j - step]) + (fy[j] - fy_above[j]));
}

/// One step over one image stored as `height` rows of `length` elements.
template <typename T, typename W, typename Tau>
PDEQ_ALWAYS_INLINE void forward_image(const T* __restrict__ x, T* __restrict__ y, const Tau& tau,
                                      int64_t height, int64_t length, int64_t step, const W& w,
                                      std::vector<T>& buffer) {
  buffer.assign(static_cast<size_t>(3 * length), T(0));
  T* fx = buffer.data();
  T* fy = fx + length;
  T* fy_above = fy + length;  // row -1: zero flux
  for (int64_t i = 0; i < height; ++i) {
    const T* r = x + i * length;
    row_fluxes(r, i + 1 < height ? r + length : nullptr, fx, fy, length, step, w);
    row_update(r, y + i * length, fx, fy, fy_above, length, step, tau);
    std::swap(fy, fy_above);
  }
}

/// Fluxes of x (fx, fy) and of the linearised flux P applied to g's differences (px, py) for row r.
template <typename T, typename W>
PDEQ_ALWAYS_INLINE void row_fluxes_backward(const T* __restrict__ r, const T* __restrict__ below,
                                            const T* __restrict__ gr, const T* __restrict__ gbelow,
                                            T* __restrict__ fx, T* __restrict__ fy, T* __restrict__ px,
                                            T* __restrict__ py, int64_t length, int64_t step, const W& w) {
  const int64_t inner = length - step;
  if (below) {
#pragma omp simd
    for (int64_t j = 0; j < inner; ++j) {
      const T ux = r[j + step] - r[j], uy = below[j] - r[j];
      const T vx = gr[j + step] - gr[j], vy = gbelow[j] - gr[j];
      const T p = w.phi(ux * ux + uy * uy);
      const T b = w.dphi2(p) * (ux * vx + uy * vy);
      fx[j] = p * ux;
      fy[j] = p * uy;
      px[j] = p * vx + b * ux;
      py[j] = p * vy + b * uy;
    }
    for (int64_t j = inner; j < length; ++j) {
      const T uy = below[j] - r[j], vy = gbelow[j] - gr[j];
      const T p = w.phi(uy * uy);
      fx[j] = T(0);
      px[j] = T(0);
      fy[j] = p * uy;
      py[j] = p * vy + w.dphi2(p) * uy * vy * uy;
    }
  } else {
#pragma omp simd
    for (int64_t j = 0; j < inner; ++j) {
      const T ux = r[j + step] - r[j], vx = gr[j + step] - gr[j];
      const T p = w.phi(ux * ux);
      fx[j] = p * ux;
      px[j] = p * vx + w.dphi2(p) * ux * vx * ux;
      fy[j] = T(0);
      py[j] = T(0);
    }
    for (int64_t j = inner; j < length; ++j) fx[j] = px[j] = fy[j] = py[j] = T(0);
  }
}

/// Backward over one image (rows as in forward_image). The step's gradient, sum of g * div over each
/// channel, goes to dtau: one total for an NCHW plane (`channels` = 1, step 1); per channel for an NHWC image
/// (`channels` = step = C), summed per row in T and per image in double, as the NCHW plane.
template <typename T, typename W, typename Tau>
PDEQ_ALWAYS_INLINE void backward_image(const T* __restrict__ g, const T* __restrict__ x, T* __restrict__ dx,
                                       double* __restrict__ dtau, const Tau& tau, int64_t height,
                                       int64_t length, int64_t step, const W& w, std::vector<T>& buffer) {
  const bool per_channel = step > 1;
  buffer.assign(static_cast<size_t>(6 * length + (per_channel ? step : 0)), T(0));
  T* fx = buffer.data();
  T* fy = fx + length;
  T* fy_above = fy + length;
  T* px = fy_above + length;
  T* py = px + length;
  T* py_above = py + length;
  T* row_sums = py_above + length;  // NHWC: one per channel
  for (int64_t i = 0; i < height; ++i) {
    const bool has_below = i + 1 < height;
    const T* r = x + i * length;
    const T* gr = g + i * length;
    row_fluxes_backward(r, has_below ? r + length : nullptr, gr, has_below ? gr + length : nullptr, fx, fy,
                        px, py, length, step, w);
    if (!per_channel) {
      T sum = gr[0] * (fx[0] + (fy[0] - fy_above[0]));
#pragma omp simd reduction(+ : sum)
      for (int64_t j = 1; j < length; ++j) sum += gr[j] * ((fx[j] - fx[j - 1]) + (fy[j] - fy_above[j]));
      dtau[0] += static_cast<double>(sum);
    } else {
      for (int64_t c = 0; c < step; ++c) row_sums[c] = gr[c] * (fx[c] + (fy[c] - fy_above[c]));
      for (int64_t k = step; k < length; k += step) {
#pragma omp simd
        for (int64_t c = 0; c < step; ++c) {
          const int64_t j = k + c;
          row_sums[c] += gr[j] * ((fx[j] - fx[j - step]) + (fy[j] - fy_above[j]));
        }
      }
      for (int64_t c = 0; c < step; ++c) dtau[c] += static_cast<double>(row_sums[c]);
    }
    if (dx) row_update(gr, dx + i * length, px, py, py_above, length, step, tau);
    std::swap(fy, fy_above);
    std::swap(py, py_above);
  }
}

// NCHW planes and NHWC images, each compiled for the baseline and (below) for AVX2.
template <typename T, typename W>
PDEQ_ALWAYS_INLINE void forward_plane(const T* x, T* y, T tau, int64_t height, int64_t width, const W& w,
                                      std::vector<T>& buffer) {
  forward_image(x, y, PlaneTau<T>{tau}, height, width, 1, w, buffer);
}

template <typename T, typename W>
PDEQ_ALWAYS_INLINE double backward_plane(const T* g, const T* x, T* dx, T tau, int64_t height, int64_t width,
                                         const W& w, std::vector<T>& buffer) {
  double dtau = 0.0;
  backward_image(g, x, dx, &dtau, PlaneTau<T>{tau}, height, width, 1, w, buffer);
  return dtau;
}

template <typename T, typename W>
void forward_plane_base(const T* x, T* y, T tau, int64_t height, int64_t width, const W& w,
                        std::vector<T>& buffer) {
  forward_plane(x, y, tau, height, width, w, buffer);
}

template <typename T, typename W>
double backward_plane_base(const T* g, const T* x, T* dx, T tau, int64_t height, int64_t width, const W& w,
                           std::vector<T>& buffer) {
  return backward_plane(g, x, dx, tau, height, width, w, buffer);
}

template <typename T, typename W>
PDEQ_ALWAYS_INLINE void forward_nhwc(const T* x, T* y, const T* tau_row, int64_t height, int64_t width,
                                     int64_t channels, const W& w, std::vector<T>& buffer) {
  forward_image(x, y, RowTau<T>{tau_row}, height, width * channels, channels, w, buffer);
}

template <typename T, typename W>
PDEQ_ALWAYS_INLINE void backward_nhwc(const T* g, const T* x, T* dx, double* dtau, const T* tau_row,
                                      int64_t height, int64_t width, int64_t channels, const W& w,
                                      std::vector<T>& buffer) {
  backward_image(g, x, dx, dtau, RowTau<T>{tau_row}, height, width * channels, channels, w, buffer);
}

template <typename T, typename W>
void forward_nhwc_base(const T* x, T* y, const T* tau_row, int64_t height, int64_t width, int64_t channels,
                       const W& w, std::vector<T>& buffer) {
  forward_nhwc(x, y, tau_row, height, width, channels, w, buffer);
}

template <typename T, typename W>
void backward_nhwc_base(const T* g, const T* x, T* dx, double* dtau, const T* tau_row, int64_t height,
                        int64_t width, int64_t channels, const W& w, std::vector<T>& buffer) {
  backward_nhwc(g, x, dx, dtau, tau_row, height, width, channels, w, buffer);
}

#if PDEQ_TV_AVX2_VARIANT
template <typename T, typename W>
PDEQ_TARGET_AVX2 void forward_nhwc_avx2(const T* x, T* y, const T* tau_row, int64_t height, int64_t width,
                                        int64_t channels, const W& w, std::vector<T>& buffer) {
  forward_nhwc(x, y, tau_row, height, width, channels, w, buffer);
}

template <typename T, typename W>
PDEQ_TARGET_AVX2 void backward_nhwc_avx2(const T* g, const T* x, T* dx, double* dtau, const T* tau_row,
                                         int64_t height, int64_t width, int64_t channels, const W& w,
                                         std::vector<T>& buffer) {
  backward_nhwc(g, x, dx, dtau, tau_row, height, width, channels, w, buffer);
}

template <typename T, typename W>
PDEQ_TARGET_AVX2 void forward_plane_avx2(const T* x, T* y, T tau, int64_t height, int64_t width, const W& w,
                                         std::vector<T>& buffer) {
  forward_plane(x, y, tau, height, width, w, buffer);
}

template <typename T, typename W>
PDEQ_TARGET_AVX2 double backward_plane_avx2(const T* g, const T* x, T* dx, T tau, int64_t height,
                                            int64_t width, const W& w, std::vector<T>& buffer) {
  return backward_plane(g, x, dx, tau, height, width, w, buffer);
}
#endif

bool use_avx2() {
#if PDEQ_TV_AVX2_VARIANT
  static const bool supported = __builtin_cpu_supports("avx2");
  return supported;
#else
  return false;
#endif
}

/// Runs body(i, buffer) for i in [0, count) on `threads` OpenMP threads, each with its own row buffer.
template <typename T, typename Body>
void parallel_for_each(int64_t count, int threads, const Body& body) {
#pragma omp parallel num_threads(threads) if (threads > 1 && count > 1)
  {
    std::vector<T> buffer;
#pragma omp for schedule(static)
    for (int64_t i = 0; i < count; ++i) body(i, buffer);
  }
}

/// tau[c] repeated along one NHWC row (W pixels x C channels).
template <typename T>
std::vector<T> tau_row_of(const T* tau, const TVPlanes& s) {
  std::vector<T> row(static_cast<size_t>(s.width * s.channels));
  for (size_t k = 0; k < row.size(); ++k) row[k] = tau[static_cast<int64_t>(k) % s.channels];
  return row;
}

template <typename T, typename W>
void forward_all(const T* x, T* y, const T* tau, const TVPlanes& s, const W& w, int threads) {
  if (s.channels_last) {
    const int64_t images = s.planes / s.channels, size = s.channels * s.height * s.width;
    const std::vector<T> tau_row = tau_row_of(tau, s);
    auto run = forward_nhwc_base<T, W>;
#if PDEQ_TV_AVX2_VARIANT
    if (use_avx2()) run = forward_nhwc_avx2<T, W>;
#endif
    parallel_for_each<T>(images, threads, [&](int64_t n, std::vector<T>& buffer) {
      run(x + n * size, y + n * size, tau_row.data(), s.height, s.width, s.channels, w, buffer);
    });
    return;
  }
  const int64_t size = s.height * s.width;
  auto run = forward_plane_base<T, W>;
#if PDEQ_TV_AVX2_VARIANT
  if (use_avx2()) run = forward_plane_avx2<T, W>;
#endif
  parallel_for_each<T>(s.planes, threads, [&](int64_t p, std::vector<T>& buffer) {
    run(x + p * size, y + p * size, tau[p % s.channels], s.height, s.width, w, buffer);
  });
}

template <typename T, typename W>
void backward_all(const T* g, const T* x, T* dx, double* dtau, const T* tau, const TVPlanes& s, const W& w,
                  int threads) {
  if (s.channels_last) {
    const int64_t images = s.planes / s.channels, size = s.channels * s.height * s.width;
    const std::vector<T> tau_row = tau_row_of(tau, s);
    auto run = backward_nhwc_base<T, W>;
#if PDEQ_TV_AVX2_VARIANT
    if (use_avx2()) run = backward_nhwc_avx2<T, W>;
#endif
    parallel_for_each<T>(images, threads, [&](int64_t n, std::vector<T>& buffer) {
      double* image_dtau = dtau + n * s.channels;  // [N, C] like the planes
      std::fill(image_dtau, image_dtau + s.channels, 0.0);
      run(g + n * size, x + n * size, dx ? dx + n * size : nullptr, image_dtau, tau_row.data(), s.height,
          s.width, s.channels, w, buffer);
    });
    return;
  }
  const int64_t size = s.height * s.width;
  auto run = backward_plane_base<T, W>;
#if PDEQ_TV_AVX2_VARIANT
  if (use_avx2()) run = backward_plane_avx2<T, W>;
#endif
  parallel_for_each<T>(s.planes, threads, [&](int64_t p, std::vector<T>& buffer) {
    dtau[p] = run(g + p * size, x + p * size, dx ? dx + p * size : nullptr, tau[p % s.channels], s.height,
                  s.width, w, buffer);
  });
}

}  // namespace

template <typename T>
void tv_step_forward(const T* x, T* y, const T* tau, const TVPlanes& shape, const TVWeightFn& weight,
                     int num_threads) {
  if (weight.kind == 0) {
    forward_all(x, y, tau, shape, Charbonnier<T>{static_cast<T>(weight.eps)}, num_threads);
  } else {
    forward_all(x, y, tau, shape, PeronaMalik<T>{static_cast<T>(weight.eps)}, num_threads);
  }
}

template <typename T>
void tv_step_backward(const T* g, const T* x, T* dx, double* dtau, const T* tau, const TVPlanes& shape,
                      const TVWeightFn& weight, int num_threads) {
  if (weight.kind == 0) {
    backward_all(g, x, dx, dtau, tau, shape, Charbonnier<T>{static_cast<T>(weight.eps)}, num_threads);
  } else {
    backward_all(g, x, dx, dtau, tau, shape, PeronaMalik<T>{static_cast<T>(weight.eps)}, num_threads);
  }
}

template void tv_step_forward<float>(const float*, float*, const float*, const TVPlanes&, const TVWeightFn&,
                                     int);
template void tv_step_forward<double>(const double*, double*, const double*, const TVPlanes&,
                                      const TVWeightFn&, int);
template void tv_step_backward<float>(const float*, const float*, float*, double*, const float*,
                                      const TVPlanes&, const TVWeightFn&, int);
template void tv_step_backward<double>(const double*, const double*, double*, double*, const double*,
                                       const TVPlanes&, const TVWeightFn&, int);

}  // namespace pdeq::nn::detail
