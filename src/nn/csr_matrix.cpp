// CsrMatrix: construction from coordinates, the fused CPU product and its autograd rule.
#include <pdeq/nn/csr_matrix.h>

#include <pdeq/quant/kernel_path.h>

#include "csr_kernels.h"

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>
#include <torch/autograd.h>
#include <torch/torch.h>

namespace pdeq::nn {
namespace {

int kernel_threads() { return at::in_parallel_region() ? 1 : at::get_num_threads(); }

torch::Tensor csr_product(const torch::Tensor& row_ptr, const torch::Tensor& col, const torch::Tensor& values,
                          const torch::Tensor& x) {
  const int64_t rows = row_ptr.numel() - 1;
  const auto dense = x.contiguous();
  const auto vals = values.to(dense.scalar_type()).contiguous();
  auto out = torch::empty({rows, dense.size(1)}, dense.options());
  AT_DISPATCH_FLOATING_TYPES(dense.scalar_type(), "csr_matmul", [&] {
    detail::csr_matmul<scalar_t>(row_ptr.data_ptr<int64_t>(), col.data_ptr<int64_t>(),
                                 vals.data_ptr<scalar_t>(), rows, dense.data_ptr<scalar_t>(), dense.size(1),
                                 out.data_ptr<scalar_t>(), kernel_threads());
  });
  return out;
}

/// S x with backward S^T g (itself through this function, so higher derivatives work too).
struct CsrMatmulFunction : torch::autograd::Function<CsrMatmulFunction> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& row_ptr, const torch::Tensor& col,
                               const torch::Tensor& values, const torch::Tensor& t_row_ptr,
                               const torch::Tensor& t_col, const torch::Tensor& t_values) {
    ctx->saved_data["row_ptr"] = row_ptr;
    ctx->saved_data["col"] = col;
    ctx->saved_data["values"] = values;
    ctx->saved_data["t_row_ptr"] = t_row_ptr;
    ctx->saved_data["t_col"] = t_col;
    ctx->saved_data["t_values"] = t_values;
    return csr_product(row_ptr, col, values, x);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto get = [&](const char* key) { return ctx->saved_data[key].toTensor(); };
    const auto dx = apply(grads[0], get("t_row_ptr"), get("t_col"), get("t_values"), get("row_ptr"),
                          get("col"), get("values"));
    return {dx, {}, {}, {}, {}, {}, {}};
  }
};

/// row_ptr [rows + 1] of row-sorted entries.
torch::Tensor row_pointers(const torch::Tensor& sorted_rows, int64_t rows) {
  auto counts = torch::bincount(sorted_rows, {}, rows);
  return torch::cat({torch::zeros({1}, torch::kInt64), counts.cumsum(0)});
}

}  // namespace

CsrMatrix CsrMatrix::from_coo(const torch::Tensor& indices, const torch::Tensor& values, int64_t rows,
                              int64_t cols) {
  TORCH_CHECK(rows >= 0 && cols >= 0, "a sparse matrix needs non-negative sizes, but got ", rows, " x ",
              cols);
  TORCH_CHECK(indices.dim() == 2 && indices.size(0) == 2 && indices.scalar_type() == torch::kInt64,
              "indices must be an int64 tensor of shape [2, nnz], but got ", indices.scalar_type(),
              indices.sizes());
  TORCH_CHECK(values.dim() == 1 && values.size(0) == indices.size(1) && values.is_floating_point(),
              "values must be a floating tensor of shape [", indices.size(1), "], but got ",
              values.scalar_type(), values.sizes());
  const auto idx = indices.to(torch::kCPU);
  if (idx.size(1) > 0) {
    TORCH_CHECK(idx[0].min().item<int64_t>() >= 0 && idx[0].max().item<int64_t>() < rows &&
                    idx[1].min().item<int64_t>() >= 0 && idx[1].max().item<int64_t>() < cols,
                "indices must lie in [0, ", rows, ") x [0, ", cols, ")");
  }
  // coalesce() sorts row-major and sums duplicates; the transpose's order comes from coalescing the swapped
  // coordinates with each entry's position as its value (exact in double up to 2^53 entries).
  const auto s = torch::sparse_coo_tensor(idx, values.to(torch::kCPU), {rows, cols}).coalesce();
  CsrMatrix m;
  m.rows_ = rows;
  m.cols_ = cols;
  m.row_ = s.indices()[0].contiguous();
  m.col_ = s.indices()[1].contiguous();
  m.values_ = s.values().contiguous();
  m.row_ptr_ = row_pointers(m.row_, rows);
  const auto position = torch::arange(m.nnz(), torch::kDouble);
  const auto t = torch::sparse_coo_tensor(torch::stack({m.col_, m.row_}), position, {cols, rows}).coalesce();
  m.t_row_ = t.indices()[0].contiguous();
  m.t_col_ = t.indices()[1].contiguous();
  m.to_t_ = t.values().to(torch::kInt64).contiguous();
  m.from_t_ = torch::empty_like(m.to_t_).index_put_({m.to_t_}, torch::arange(m.nnz(), torch::kInt64));
  m.t_row_ptr_ = row_pointers(m.t_row_, cols);
  m.t_values_ = m.values_.index_select(0, m.to_t_);
  return m;
}

CsrMatrix CsrMatrix::from_sparse(const torch::Tensor& sparse) {
  TORCH_CHECK(sparse.is_sparse() && sparse.sparse_dim() == 2 && sparse.dense_dim() == 0,
              "expected a two-dimensional sparse COO tensor, but got layout ", sparse.layout(), " and shape ",
              sparse.sizes());
  const auto s = sparse.coalesce();
  return from_coo(s.indices(), s.values(), s.size(0), s.size(1));
}

torch::Tensor CsrMatrix::matmul(const torch::Tensor& x) const {
  TORCH_CHECK(x.dim() == 2 && x.size(0) == cols_, "expected a dense [", cols_, ", C] matrix, but got shape ",
              x.sizes());
  TORCH_CHECK(!x.is_sparse(), "expected a dense matrix, but got a sparse one");
  if (x.device().is_cpu() && (x.scalar_type() == torch::kFloat || x.scalar_type() == torch::kDouble) &&
      row_ptr_.device().is_cpu() && quant::fused_cpu_kernels_enabled()) {
    return CsrMatmulFunction::apply(x, row_ptr_, col_, values_, t_row_ptr_, t_col_, t_values_);
  }
  // Any device or dtype: gather, scale, scatter (autograd differentiates it as is).
  const auto scaled = values_.to(x.scalar_type()).unsqueeze(1) * x.index_select(0, col_);
  return torch::zeros({rows_, x.size(1)}, x.options()).index_add_(0, row_, scaled);
}

CsrMatrix CsrMatrix::transposed() const {
  CsrMatrix t = *this;
  std::swap(t.rows_, t.cols_);
  std::swap(t.row_ptr_, t.t_row_ptr_);
  std::swap(t.col_, t.t_col_);
  std::swap(t.row_, t.t_row_);
  std::swap(t.values_, t.t_values_);
  std::swap(t.to_t_, t.from_t_);
  return t;
}

CsrMatrix CsrMatrix::with_values(const torch::Tensor& values) const {
  TORCH_CHECK(values.dim() == 1 && values.size(0) == nnz(), "expected ", nnz(), " values, but got shape ",
              values.sizes());
  CsrMatrix m = *this;
  m.values_ = values.contiguous();
  m.t_values_ = m.values_.index_select(0, to_t_);
  return m;
}

CsrMatrix CsrMatrix::to(torch::Device device) const {
  CsrMatrix m = *this;
  for (torch::Tensor* t : {&m.row_ptr_, &m.col_, &m.row_, &m.values_, &m.t_row_ptr_, &m.t_col_, &m.t_row_,
                           &m.t_values_, &m.to_t_, &m.from_t_}) {
    if (t->defined()) *t = t->to(device);
  }
  return m;
}

torch::Tensor CsrMatrix::to_dense() const {
  return torch::zeros({rows_, cols_}, values_.options())
      .index_put_({row_, col_}, values_, /*accumulate=*/true);
}

}  // namespace pdeq::nn
