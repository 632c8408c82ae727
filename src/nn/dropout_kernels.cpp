// Dropout masks from a counter-based hash: element i of a call keyed by `seed` keeps its value when
// lowbias32(i * golden + seed_lo) ^ seed_hi mixed once more falls below the threshold. 32-bit integer
// arithmetic only, so the loop vectorises (8 or 16 lanes).
#include "dropout_kernels.h"

namespace pdeq::nn::detail {
namespace {

/// Chris Wellons' lowbias32: a 32-bit integer hash with low bias (every input bit affects every output bit).
inline uint32_t lowbias32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

}  // namespace

template <typename T>
void dropout_mask(T* mask, int64_t n, uint32_t keep_threshold, T scale, uint64_t seed, int num_threads) {
  constexpr int64_t kBlock = int64_t{1} << 16;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(num_threads) if (num_threads > 1 && blocks > 1) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = b * kBlock, end = begin + kBlock < n ? begin + kBlock : n;
    // Index bits above 32 go into the key, so masks of tensors with more than 2^32 elements do not repeat.
    const uint32_t key_lo = static_cast<uint32_t>(seed) ^ static_cast<uint32_t>((begin >> 32) * 0x9e3779b9U);
    const uint32_t key_hi = static_cast<uint32_t>(seed >> 32);
#pragma omp simd
    for (int64_t i = begin; i < end; ++i) {
      const uint32_t h = lowbias32(lowbias32(static_cast<uint32_t>(i) * 0x9e3779b9U + key_lo) ^ key_hi);
      mask[i] = h < keep_threshold ? scale : T(0);
    }
  }
}

template void dropout_mask<float>(float*, int64_t, uint32_t, float, uint64_t, int);
template void dropout_mask<double>(double*, int64_t, uint32_t, double, uint64_t, int);

}  // namespace pdeq::nn::detail
