// A constant sparse matrix in compressed rows, multiplied by dense matrices with a fast CPU kernel; the
// backward of S x is S^T g, so the transpose's pattern is kept beside it.
#pragma once

#include <torch/types.h>

namespace pdeq::nn {

/// Sparse [rows, cols] matrix S with a fixed pattern. `matmul(x)` = S x is differentiable in x (not in S's
/// values): on CPU it runs one fused kernel per product and its backward is the transposed product, where
/// LibTorch 1.13's index_add/sparse paths cost one dispatch per row. Other devices use an index_add form.
///
/// Example:
///   auto s = CsrMatrix::from_coo(indices, values, {n, f});   // indices [2, nnz]
///   auto y = s.matmul(w);                                     // [n, f] x [f, c] -> [n, c]
///   auto z = s.transposed().matmul(y);                        // S^T y
class CsrMatrix {
 public:
  CsrMatrix() = default;
  /// From coordinates `indices` [2, nnz] (int64) and `values` [nnz] (floating); duplicates are summed.
  static CsrMatrix from_coo(const torch::Tensor& indices, const torch::Tensor& values, int64_t rows,
                            int64_t cols);
  /// From a sparse COO tensor of two dimensions.
  static CsrMatrix from_sparse(const torch::Tensor& sparse);

  /// S x: [rows, cols] x [cols, C] -> [rows, C], in x's dtype.
  torch::Tensor matmul(const torch::Tensor& x) const;
  /// S^T, sharing the storage (no copy).
  CsrMatrix transposed() const;
  /// The same pattern with other values [nnz] (in this matrix's entry order, i.e. row-major).
  CsrMatrix with_values(const torch::Tensor& values) const;
  CsrMatrix to(torch::Device device) const;
  torch::Tensor to_dense() const;

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  int64_t nnz() const { return values_.defined() ? values_.numel() : 0; }
  const torch::Tensor& row_ptr() const { return row_ptr_; }  ///< [rows + 1]
  const torch::Tensor& col() const { return col_; }          ///< [nnz]
  const torch::Tensor& values() const { return values_; }    ///< [nnz]

 private:
  int64_t rows_ = 0, cols_ = 0;
  torch::Tensor row_ptr_, col_, row_, values_;  // row_: each entry's row (for the index_add form)
  // S^T: its pattern and values, and for each of its entries the index of the same entry here (to_t_), and
  // for each entry here its index in S^T (from_t_).
  torch::Tensor t_row_ptr_, t_col_, t_row_, t_values_, to_t_, from_t_;
};

}  // namespace pdeq::nn
