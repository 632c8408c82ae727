// Fused CPU kernels of the TV step: one sweep over each image plane forward, one backward.
//
// Built with OpenMP (LibTorch's CPU backend here is OpenMP), -fno-trapping-math and -fno-math-errno (so that
// the sqrt and division loops vectorise; pdeq never reads errno or the floating-point flags). As the
// quantizer kernels, each plane sweep is compiled twice, for AVX2 and for the x86-64 baseline, and the
// variant is picked once at run time (no FMA contraction in either, so both compute the same IEEE operations
// per element). Each plane is processed row by row: the fluxes of a row go to small per-thread buffers in one
// vectorisable loop, then the output row combines them with the previous row's vertical fluxes, so every edge
// weight (one sqrt or division) is computed once per pixel.
#include "tv_smoothing_kernels.h"

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

/// Fluxes of row `r` (`below` is row r + 1, null on the last row): fx = phi dx, fy = phi dy, each set to 0
/// where its difference is (last column, last row).
template <typename T, typename W>
PDEQ_ALWAYS_INLINE void row_fluxes(const T* __restrict__ r, const T* __restrict__ below, T* __restrict__ fx,
                                   T* __restrict__ fy, int64_t width, const W& w) {
  const int64_t last = width - 1;
  if (below) {
#pragma omp simd
    for (int64_t j = 0; j < last; ++j) {
      const T gx = r[j + 1] - r[j];
      const T gy = below[j] - r[j];
      const T p = w.phi(gx * gx + gy * gy);
      fx[j] = p * gx;
      fy[j] = p * gy;
    }
    const T gy = below[last] - r[last];
    fx[last] = T(0);
    fy[last] = w.phi(gy * gy) * gy;
  } else {
#pragma omp simd
    for (int64_t j = 0; j < last; ++j) {
      const T gx = r[j + 1] - r[j];
      fx[j] = w.phi(gx * gx) * gx;
      fy[j] = T(0);
    }
    fx[last] = T(0);
    fy[last] = T(0);
  }
}

template <typename T, typename W>
PDEQ_ALWAYS_INLINE void forward_plane(const T* __restrict__ x, T* __restrict__ y, T tau, int64_t height,
                                      int64_t width, const W& w, std::vector<T>& buffer) {
  buffer.assign(static_cast<size_t>(3 * width), T(0));
  T* fx = buffer.data();
  T* fy = fx + width;
  T* fy_above = fy + width;  // row -1: zero flux
  for (int64_t i = 0; i < height; ++i) {
    const T* r = x + i * width;
    row_fluxes(r, i + 1 < height ? r + width : nullptr, fx, fy, width, w);
    T* out = y + i * width;
    out[0] = r[0] + tau * ((fx[0]) + (fy[0] - fy_above[0]));
#pragma omp simd
    for (int64_t j = 1; j < width; ++j) out[j] = r[j] + tau * ((fx[j] - fx[j - 1]) + (fy[j] - fy_above[j]));
    std::swap(fy, fy_above);
  }
}

/// Fluxes of x (fx, fy) and of the linearised flux P applied to g's differences (px, py) for row r.
template <typename T, typename W>
PDEQ_ALWAYS_INLINE void row_fluxes_backward(const T* __restrict__ r, const T* __restrict__ below,
                                            const T* __restrict__ gr, const T* __restrict__ gbelow,
                                            T* __restrict__ fx, T* __restrict__ fy, T* __restrict__ px,
                                            T* __restrict__ py, int64_t width, const W& w) {
  const int64_t last = width - 1;
  if (below) {
#pragma omp simd
    for (int64_t j = 0; j < last; ++j) {
      const T ux = r[j + 1] - r[j], uy = below[j] - r[j];
      const T vx = gr[j + 1] - gr[j], vy = gbelow[j] - gr[j];
      const T p = w.phi(ux * ux + uy * uy);
      const T b = w.dphi2(p) * (ux * vx + uy * vy);
      fx[j] = p * ux;
      fy[j] = p * uy;
      px[j] = p * vx + b * ux;
      py[j] = p * vy + b * uy;
    }
    const T uy = below[last] - r[last], vy = gbelow[last] - gr[last];
    const T p = w.phi(uy * uy);
    fx[last] = T(0);
    px[last] = T(0);
    fy[last] = p * uy;
    py[last] = p * vy + w.dphi2(p) * uy * vy * uy;
  } else {
#pragma omp simd
    for (int64_t j = 0; j < last; ++j) {
      const T ux = r[j + 1] - r[j], vx = gr[j + 1] - gr[j];
      const T p = w.phi(ux * ux);
      fx[j] = p * ux;
      px[j] = p * vx + w.dphi2(p) * ux * vx * ux;
      fy[j] = T(0);
      py[j] = T(0);
    }
    fx[last] = px[last] = fy[last] = py[last] = T(0);
  }
}

template <typename T, typename W>
PDEQ_ALWAYS_INLINE double backward_plane(const T* __restrict__ g, const T* __restrict__ x, T* __restrict__ dx,
                                         T tau, int64_t height, int64_t width, const W& w,
                                         std::vector<T>& buffer) {
  buffer.assign(static_cast<size_t>(6 * width), T(0));
  T* fx = buffer.data();
  T* fy = fx + width;
  T* fy_above = fy + width;
  T* px = fy_above + width;
  T* py = px + width;
  T* py_above = py + width;
  double dtau = 0.0;
  for (int64_t i = 0; i < height; ++i) {
    const bool has_below = i + 1 < height;
    const T* r = x + i * width;
    const T* gr = g + i * width;
    row_fluxes_backward(r, has_below ? r + width : nullptr, gr, has_below ? gr + width : nullptr, fx, fy, px,
                        py, width, w);
    // Divergences (f[j] - f[j-1]) + (g[j] - g_above[j]), the first column peeled so the loops have no branch.
    T sum = gr[0] * (fx[0] + (fy[0] - fy_above[0]));
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 1; j < width; ++j) sum += gr[j] * ((fx[j] - fx[j - 1]) + (fy[j] - fy_above[j]));
    dtau += static_cast<double>(sum);
    if (dx) {
      T* out = dx + i * width;
      out[0] = gr[0] + tau * (px[0] + (py[0] - py_above[0]));
#pragma omp simd
      for (int64_t j = 1; j < width; ++j)
        out[j] = gr[j] + tau * ((px[j] - px[j - 1]) + (py[j] - py_above[j]));
    }
    std::swap(fy, fy_above);
    std::swap(py, py_above);
  }
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

#if PDEQ_TV_AVX2_VARIANT
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

template <typename T, typename W>
void forward_all(const T* x, T* y, const T* tau, const TVPlanes& s, const W& w, int threads) {
  const int64_t size = s.height * s.width;
  auto run = forward_plane_base<T, W>;
#if PDEQ_TV_AVX2_VARIANT
  if (use_avx2()) run = forward_plane_avx2<T, W>;
#endif
#pragma omp parallel num_threads(threads) if (threads > 1 && s.planes > 1)
  {
    std::vector<T> buffer;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < s.planes; ++p) {
      run(x + p * size, y + p * size, tau[p % s.channels], s.height, s.width, w, buffer);
    }
  }
}

template <typename T, typename W>
void backward_all(const T* g, const T* x, T* dx, double* dtau, const T* tau, const TVPlanes& s, const W& w,
                  int threads) {
  const int64_t size = s.height * s.width;
  auto run = backward_plane_base<T, W>;
#if PDEQ_TV_AVX2_VARIANT
  if (use_avx2()) run = backward_plane_avx2<T, W>;
#endif
#pragma omp parallel num_threads(threads) if (threads > 1 && s.planes > 1)
  {
    std::vector<T> buffer;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < s.planes; ++p) {
      dtau[p] = run(g + p * size, x + p * size, dx ? dx + p * size : nullptr, tau[p % s.channels], s.height,
                    s.width, w, buffer);
    }
  }
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
