// Internal: the CPU kernel behind nn::functional::dropout. Plain pointers and no LibTorch headers: the .cpp
// is compiled with OpenMP, without the precompiled header.
#pragma once

#include <cstdint>

namespace pdeq::nn::detail {

/// mask[i] = scale if hash(seed, i) < keep_threshold (out of 2^32), else 0. The hash of i does not depend on
/// how the range is split between threads.
template <typename T>
void dropout_mask(T* mask, int64_t n, uint32_t keep_threshold, T scale, uint64_t seed, int num_threads);

}  // namespace pdeq::nn::detail
