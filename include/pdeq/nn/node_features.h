// The input of a graph model: node features, dense or sparse (bag-of-words features are ~1% non-zero).
#pragma once

#include <pdeq/nn/csr_matrix.h>

#include <torch/types.h>

namespace pdeq::nn {

/// Node features [N, F]: a dense tensor, or a sparse one kept as a CsrMatrix, converted once, so that each
/// epoch's product with the opening weights is one CSR kernel and dropout touches only the non-zeros.
///
/// Example:
///   NodeFeatures features(cora.features);                                 // sparse COO -> CSR, once
///   auto h = features.dropout(0.6, is_training()).matmul(w);              // [N, F] x [F, C]
class NodeFeatures {
 public:
  NodeFeatures() = default;
  /// Dense [N, F] or sparse COO [N, F] (a tensor is node features: implicit on purpose).
  NodeFeatures(const torch::Tensor& features);  // NOLINT(google-explicit-constructor)

  bool is_sparse() const { return !dense_.defined(); }
  int64_t num_nodes() const;
  int64_t num_features() const;

  /// Dropout with probability p when `training` (else the features themselves). Sparse features drop
  /// non-zeros: the same distribution as dense dropout of their dense form.
  NodeFeatures dropout(double p, bool training) const;
  /// features x weight: [N, F] x [F, C] -> [N, C], differentiable in `weight`.
  torch::Tensor matmul(const torch::Tensor& weight) const;

  torch::Tensor to_dense() const;
  NodeFeatures to(torch::Device device) const;

 private:
  torch::Tensor dense_;
  CsrMatrix sparse_;
};

}  // namespace pdeq::nn
