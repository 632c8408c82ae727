// A small hand-checkable graph shared by the graph-operator (nn) and graph-model (models) tests.
#pragma once

#include <pdeq/nn/graph_ops.h>

#include <torch/torch.h>

#include <utility>
#include <vector>

namespace pdeq::test {

/// A small graph: a 5-cycle plus a chord, and a self-loop on node 2 (7 nodes, node 6 isolated).
inline nn::GraphOperator small_graph() {
  const auto edges = torch::tensor({0, 1, 1, 2, 2, 3, 3, 4, 0, 4, 1, 3}, torch::kInt64).reshape({6, 2});
  return nn::GraphOperator(edges, 7, torch::tensor({2}, torch::kInt64));
}

/// Dense D^-1/2 (A + I) D^-1/2 with A holding the self-loop, as Kipf's preprocessing.
inline torch::Tensor dense_gcn_matrix() {
  auto a = torch::zeros({7, 7}, torch::kDouble);
  for (auto [u, v] : std::vector<std::pair<int, int>>{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {0, 4}, {1, 3}}) {
    a[u][v] = 1;
    a[v][u] = 1;
  }
  a[2][2] = 1;
  a += torch::eye(7, torch::kDouble);
  const auto d = a.sum(1).rsqrt();
  return d.unsqueeze(1) * a * d.unsqueeze(0);
}

}  // namespace pdeq::test
