// Graph differential operators with GCN normalisation: the gradient G (nodes -> edges), its adjoint G^T
// (divergence, edges -> nodes) and the GCN propagation D^-1/2 (A + I) D^-1/2 (Eliasof et al., PDE-GCN;
// Kipf & Welling 2017).
#pragma once

#include <pdeq/nn/csr_matrix.h>

#include <torch/types.h>

namespace pdeq::nn {

/// The graph gradient of an undirected graph and its adjoint, held as constant sparse matrices (CsrMatrix:
/// one fused kernel per product on CPU; the backward of each is the other).
///
/// Edges e = (u, v), u < v, are stored once. Weights w_e = 1/sqrt(d_u d_v) with degrees counting the added
/// self-loop of A + I (and a raw self-loop once more, as Kipf's code, which adds I to an adjacency that may
/// already hold one). Then
///   (G x)_e = w_e (x_u - x_v),       (G^T y)_i = sum_{e=(i,.)} w_e y_e - sum_{e=(.,i)} w_e y_e,
/// G^T G = sum_e w_e^2 (1_u - 1_v)(1_u - 1_v)^T (the weighted Laplacian), and
///   propagate(x) = D^-1/2 (A + I) D^-1/2 x.
/// Node features are [N, C], edge features [E, C].
///
/// Example:
///   GraphOperator G(cora.edges, cora.num_nodes, cora.self_loops);
///   auto div_grad = G.div(G.grad(x));   // = L x
class GraphOperator {
 public:
  GraphOperator() = default;
  /// `edges`: [E, 2] int64, 0 <= u < v < num_nodes; `self_loops`: [S] int64 nodes (may be undefined).
  /// `edge_scale` [E] (positive; may be undefined) multiplies the gradient's weights w_e (G and G^T only:
  /// the GCN propagation keeps its normalisation); `gcn_weights` false makes w_e = 1 before that scale.
  GraphOperator(const torch::Tensor& edges, int64_t num_nodes, const torch::Tensor& self_loops = {},
                const torch::Tensor& edge_scale = {}, bool gcn_weights = true);

  /// [N, C] -> [E, C]
  torch::Tensor grad(const torch::Tensor& x) const;
  /// [E, C] -> [N, C], the adjoint of grad.
  torch::Tensor div(const torch::Tensor& y) const;
  /// [N, C] -> [N, C]: D^-1/2 (A + I) D^-1/2 x.
  torch::Tensor propagate(const torch::Tensor& x) const;

  /// Dense G^T G [N, N] (double), for tests and small graphs.
  torch::Tensor laplacian_dense() const;

  GraphOperator to(torch::Device device) const;

  int64_t num_nodes() const { return num_nodes_; }
  int64_t num_edges() const { return src_.defined() ? src_.size(0) : 0; }
  const torch::Tensor& edge_weight() const { return weight_; }       ///< [E] w_e of G
  const torch::Tensor& self_weight() const { return self_weight_; }  ///< [N] (1 + raw loop) / d_i
  const torch::Tensor& degree() const { return degree_; }            ///< [N] d_i

 private:
  int64_t num_nodes_ = 0;
  torch::Tensor src_, dst_, weight_, self_weight_, degree_, propagation_weight_;
  CsrMatrix gradient_, divergence_, propagation_;  // G, G^T, D^-1/2 (A + I) D^-1/2
};

/// Feature-similarity edge weights exp(-2 D_uv / std(D)), D_uv = ||f_u - f_v||^2 and std(D) over all N^2 node
/// pairs (as the authors' quantized PDE-GCN driver): near 1 between similar nodes, small across dissimilar
/// ones. `features` [N, F] dense or sparse; `edges` [E, 2]. Returns [E] float.
torch::Tensor feature_similarity_weights(const torch::Tensor& features, const torch::Tensor& edges);

}  // namespace pdeq::nn
