// Compressed-row sparse times dense: one output row per iteration, the channel loop vectorised.
#include "csr_kernels.h"

namespace pdeq::nn::detail {

template <typename T>
void csr_matmul(const int64_t* row_ptr, const int64_t* cols, const T* values, int64_t rows, const T* dense,
                int64_t channels, T* out, int num_threads) {
  // Small products (a few hundred kB) are faster on one thread than waking a team.
  const bool parallel = num_threads > 1 && rows * channels >= (int64_t{1} << 16);
#pragma omp parallel for num_threads(num_threads) if (parallel) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    T* __restrict__ o = out + r * channels;
    for (int64_t c = 0; c < channels; ++c) o[c] = T(0);
    for (int64_t k = row_ptr[r]; k < row_ptr[r + 1]; ++k) {
      const T v = values[k];
      const T* __restrict__ d = dense + cols[k] * channels;
#pragma omp simd
      for (int64_t c = 0; c < channels; ++c) o[c] += v * d[c];
    }
  }
}

template void csr_matmul<float>(const int64_t*, const int64_t*, const float*, int64_t, const float*, int64_t,
                                float*, int);
template void csr_matmul<double>(const int64_t*, const int64_t*, const double*, int64_t, const double*,
                                 int64_t, double*, int);

}  // namespace pdeq::nn::detail
