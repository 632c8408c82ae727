// Graph gradient, divergence and GCN propagation as constant sparse matrices.
#include <pdeq/nn/graph_ops.h>

#include <c10/util/Exception.h>
#include <torch/torch.h>

namespace pdeq::nn {

GraphOperator::GraphOperator(const torch::Tensor& edges, int64_t num_nodes, const torch::Tensor& self_loops,
                             const torch::Tensor& edge_scale, bool gcn_weights)
    : num_nodes_(num_nodes) {
  TORCH_CHECK(num_nodes >= 1, "num_nodes must be positive, but got ", num_nodes);
  TORCH_CHECK(
      edges.defined() && edges.dim() == 2 && edges.size(1) == 2 && edges.scalar_type() == torch::kInt64,
      "edges must be an int64 tensor of shape [E, 2], but got ",
      edges.defined() ? c10::str(edges.scalar_type(), edges.sizes()) : "an undefined tensor");
  src_ = edges.select(1, 0).contiguous();
  dst_ = edges.select(1, 1).contiguous();
  if (edges.size(0) > 0) {
    const auto lo = torch::minimum(src_, dst_).min().item<int64_t>();
    const auto hi = torch::maximum(src_, dst_).max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < num_nodes, "edges must hold node ids in [0, ", num_nodes, "), but got ", lo,
                " .. ", hi);
    TORCH_CHECK(src_.ne(dst_).all().item<bool>(), "edges must not hold self-loops (pass them as self_loops)");
  }
  // d_i = 1 (the I of A + I) + neighbours + raw self-loop.
  auto loops = torch::zeros({num_nodes}, torch::kDouble);
  if (self_loops.defined() && self_loops.numel() > 0) {
    TORCH_CHECK(self_loops.min().item<int64_t>() >= 0 && self_loops.max().item<int64_t>() < num_nodes,
                "self_loops must hold node ids in [0, ", num_nodes, ")");
    loops.index_fill_(0, self_loops.to(torch::kInt64), 1.0);
  }
  const auto ones = torch::ones({src_.size(0)}, torch::kDouble);
  degree_ = (1.0 + loops).index_add(0, src_, ones).index_add(0, dst_, ones);
  const auto inv_sqrt = degree_.rsqrt();
  propagation_weight_ = (inv_sqrt.index_select(0, src_) * inv_sqrt.index_select(0, dst_)).to(torch::kFloat);
  weight_ = gcn_weights ? propagation_weight_ : torch::ones_like(propagation_weight_);
  if (edge_scale.defined()) {
    TORCH_CHECK(edge_scale.dim() == 1 && edge_scale.size(0) == src_.size(0), "edge_scale must have shape [",
                src_.size(0), "], but got ", edge_scale.sizes());
    TORCH_CHECK(edge_scale.numel() == 0 || edge_scale.min().item<double>() > 0,
                "edge_scale must be positive");
    weight_ = weight_ * edge_scale.to(torch::kFloat);
  }
  self_weight_ = ((1.0 + loops) / degree_).to(torch::kFloat);
  degree_ = degree_.to(torch::kFloat);

  // G [E, N]: row e holds +w_e at u and -w_e at v. P [N, N]: the self weights and w_e at (u, v) and (v, u).
  const int64_t e = src_.size(0);
  const auto edge_ids = torch::arange(e, torch::kInt64);
  gradient_ = CsrMatrix::from_coo(torch::stack({torch::cat({edge_ids, edge_ids}), torch::cat({src_, dst_})}),
                                  torch::cat({weight_, -weight_}), e, num_nodes);
  divergence_ = gradient_.transposed();
  const auto nodes = torch::arange(num_nodes, torch::kInt64);
  propagation_ =
      CsrMatrix::from_coo(torch::stack({torch::cat({nodes, src_, dst_}), torch::cat({nodes, dst_, src_})}),
                          torch::cat({self_weight_, propagation_weight_, propagation_weight_}), num_nodes,
                          num_nodes);
}

torch::Tensor GraphOperator::grad(const torch::Tensor& x) const {
  TORCH_CHECK(x.dim() == 2 && x.size(0) == num_nodes_, "x must be node features [", num_nodes_,
              ", C], but got shape ", x.sizes());
  return gradient_.matmul(x);
}

torch::Tensor GraphOperator::div(const torch::Tensor& y) const {
  TORCH_CHECK(y.dim() == 2 && y.size(0) == num_edges(), "y must be edge features [", num_edges(),
              ", C], but got shape ", y.sizes());
  return divergence_.matmul(y);
}

torch::Tensor GraphOperator::propagate(const torch::Tensor& x) const {
  TORCH_CHECK(x.dim() == 2 && x.size(0) == num_nodes_, "x must be node features [", num_nodes_,
              ", C], but got shape ", x.sizes());
  return propagation_.matmul(x);
}

torch::Tensor GraphOperator::laplacian_dense() const {
  auto l = torch::zeros({num_nodes_, num_nodes_}, torch::kDouble);
  const auto w2 = weight_.to(torch::kDouble).square();
  const auto s = src_.to(torch::kCPU), d = dst_.to(torch::kCPU);
  auto acc = l.accessor<double, 2>();
  const auto sa = s.accessor<int64_t, 1>(), da = d.accessor<int64_t, 1>();
  const auto w2c = w2.to(torch::kCPU);
  const auto wa = w2c.accessor<double, 1>();
  for (int64_t e = 0; e < num_edges(); ++e) {
    acc[sa[e]][sa[e]] += wa[e];
    acc[da[e]][da[e]] += wa[e];
    acc[sa[e]][da[e]] -= wa[e];
    acc[da[e]][sa[e]] -= wa[e];
  }
  return l;
}

GraphOperator GraphOperator::to(torch::Device device) const {
  GraphOperator out = *this;
  for (torch::Tensor* t : {&out.src_, &out.dst_, &out.weight_, &out.self_weight_, &out.degree_}) {
    *t = t->to(device);
  }
  out.gradient_ = gradient_.to(device);
  out.divergence_ = divergence_.to(device);
  out.propagation_ = propagation_.to(device);
  return out;
}

torch::Tensor feature_similarity_weights(const torch::Tensor& features, const torch::Tensor& edges) {
  TORCH_CHECK(features.dim() == 2, "features must be [N, F], but got shape ", features.sizes());
  TORCH_CHECK(edges.dim() == 2 && edges.size(1) == 2, "edges must be [E, 2], but got shape ", edges.sizes());
  const auto f = (features.is_sparse() ? features.to_dense() : features).to(torch::kFloat).contiguous();
  const int64_t n = f.size(0);
  const auto sq = f.square().sum(1);
  // std(D) over all N^2 pairs, in row blocks so that no N x N matrix is held (PubMed has 19717 nodes).
  double sum = 0.0, sum_sq = 0.0;
  constexpr int64_t kBlock = 1024;
  for (int64_t begin = 0; begin < n; begin += kBlock) {
    const int64_t rows = std::min(kBlock, n - begin);
    const auto d = torch::relu(sq.narrow(0, begin, rows).unsqueeze(1) + sq.unsqueeze(0) -
                               2 * torch::mm(f.narrow(0, begin, rows), f.t()))
                       .to(torch::kDouble);
    sum += d.sum().item<double>();
    sum_sq += d.square().sum().item<double>();
  }
  const double count = static_cast<double>(n) * static_cast<double>(n);
  const double variance = (sum_sq - sum * sum / count) / std::max(1.0, count - 1.0);
  TORCH_CHECK(variance > 0, "feature_similarity_weights: all node features are identical");
  const auto u = edges.select(1, 0), v = edges.select(1, 1);
  const auto d_edges = torch::relu(sq.index_select(0, u) + sq.index_select(0, v) -
                                   2 * (f.index_select(0, u) * f.index_select(0, v)).sum(1));
  // w = exp(-2 D / std(D)) (Ben-Yair et al.'s quantized PDE-GCN driver).
  return torch::exp(-2.0 * d_edges.to(torch::kDouble) / std::sqrt(variance)).to(torch::kFloat);
}

}  // namespace pdeq::nn
