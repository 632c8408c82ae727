// Internal: the CPU kernel behind nn::CsrMatrix::matmul (float and double, contiguous row-major data).
// Plain pointers and no LibTorch headers: the .cpp is compiled with OpenMP, without the precompiled header.
#pragma once

#include <cstdint>

namespace pdeq::nn::detail {

/// out[r, :] = sum over k in [row_ptr[r], row_ptr[r + 1]) of values[k] * dense[cols[k], :], for r < rows;
/// `dense` and `out` are row-major with `channels` columns. Each output row is summed by one thread in the
/// order of its entries, so the result does not depend on num_threads.
template <typename T>
void csr_matmul(const int64_t* row_ptr, const int64_t* cols, const T* values, int64_t rows, const T* dense,
                int64_t channels, T* out, int num_threads);

}  // namespace pdeq::nn::detail
