// Graph operators: gradient and its adjoint (divergence), the weighted Laplacian, GCN propagation.
#include <pdeq/nn/graph_ops.h>

#include <torch/torch.h>

#include <cmath>

#include "graph_support.h"
#include "test_support.h"

namespace pdeq::test {
namespace {

struct GraphOpsTest : SeedingFixture {};

TEST_F(GraphOpsTest, DivergenceIsTheAdjointOfTheGradient) {
  const auto g = small_graph();
  const auto x = torch::randn({7, 5}, torch::kDouble);
  const auto y = torch::randn({6, 5}, torch::kDouble);
  const double lhs = (g.grad(x) * y).sum().item<double>();
  const double rhs = (x * g.div(y)).sum().item<double>();
  EXPECT_NEAR(lhs, rhs, 1e-12);
  EXPECT_GT(std::abs(lhs), 1e-3);  // not trivially zero
}

TEST_F(GraphOpsTest, DivGradIsTheWeightedLaplacian) {
  const auto g = small_graph();
  const auto x = torch::randn({7, 3}, torch::kDouble);
  const auto l = g.laplacian_dense();
  EXPECT_TRUE(torch::allclose(g.div(g.grad(x)), torch::mm(l, x), 1e-12, 1e-12));
  // The Laplacian of w^2 weights: row sums 0, symmetric, PSD, off-diagonal -w_e^2 = -1/(d_u d_v).
  EXPECT_TRUE(torch::allclose(l.sum(1), torch::zeros({7}, torch::kDouble), 0, 1e-12));
  EXPECT_TRUE(torch::allclose(l, l.t()));
  EXPECT_GT(torch::linalg_eigvalsh(l, "L").min().item<double>(), -1e-12);
  // Degrees with A + I and the raw self-loop: d_2 = 2 neighbours + I + loop; isolated nodes 5, 6 have 1.
  EXPECT_TRUE(torch::equal(g.degree(), torch::tensor({3.f, 4.f, 4.f, 4.f, 3.f, 1.f, 1.f})));
  EXPECT_NEAR(l[0][1].item<double>(), -1.0 / 12.0, 1e-7);
}

TEST_F(GraphOpsTest, PropagateIsTheNormalisedAdjacencyWithSelfLoops) {
  const auto g = small_graph();
  const auto x = torch::randn({7, 4});
  const auto expected = torch::mm(dense_gcn_matrix(), x.to(torch::kDouble)).to(torch::kFloat);
  EXPECT_TRUE(torch::allclose(g.propagate(x), expected, 1e-5, 1e-6));
}

TEST_F(GraphOpsTest, OperatorsRejectBadShapes) {
  const auto g = small_graph();
  PDEQ_ASSERT_THROWS_WITH(g.grad(torch::zeros({6, 2})),
                          "x must be node features [7, C], but got shape [6, 2]");
  PDEQ_ASSERT_THROWS_WITH(g.div(torch::zeros({7, 2})), "y must be edge features [6, C]");
  PDEQ_ASSERT_THROWS_WITH(nn::GraphOperator(torch::tensor({0, 9}, torch::kInt64).reshape({1, 2}), 5),
                          "edges must hold node ids in [0, 5), but got 0 .. 9");
}

TEST_F(GraphOpsTest, EdgeScaleReweightsTheGradientOnly) {
  const auto edges = torch::tensor({0, 1, 1, 2, 2, 3, 3, 4, 0, 4, 1, 3}, torch::kInt64).reshape({6, 2});
  const auto loops = torch::tensor({2}, torch::kInt64);
  const auto scale = torch::tensor({1.0f, 0.5f, 2.0f, 0.25f, 1.0f, 3.0f});
  const auto plain = small_graph();
  const nn::GraphOperator scaled(edges, 7, loops, scale);
  const nn::GraphOperator unnormalised(edges, 7, loops, scale, /*gcn_weights=*/false);
  EXPECT_TRUE(torch::allclose(scaled.edge_weight(), plain.edge_weight() * scale));
  EXPECT_TRUE(torch::equal(unnormalised.edge_weight(), scale));
  // (G x)_e = s_e (x_u - x_v) without the GCN normalisation; G^T stays its adjoint; propagation unchanged.
  const auto x = torch::randn({7, 3}, torch::kDouble);
  const auto y = torch::randn({6, 3}, torch::kDouble);
  const auto expected = scale.to(torch::kDouble).unsqueeze(1) *
                        (x.index_select(0, edges.select(1, 0)) - x.index_select(0, edges.select(1, 1)));
  EXPECT_TRUE(torch::allclose(unnormalised.grad(x), expected, 1e-6, 1e-6));
  EXPECT_NEAR((unnormalised.grad(x) * y).sum().item<double>(), (x * unnormalised.div(y)).sum().item<double>(),
              1e-6);
  EXPECT_TRUE(torch::allclose(scaled.propagate(x), plain.propagate(x)));
  PDEQ_ASSERT_THROWS_WITH(nn::GraphOperator(edges, 7, loops, -scale), "edge_scale must be positive");
  PDEQ_ASSERT_THROWS_WITH(nn::GraphOperator(edges, 7, loops, scale.narrow(0, 0, 5)),
                          "edge_scale must have shape [6], but got [5]");
}

TEST_F(GraphOpsTest, FeatureSimilarityWeightsByHand) {
  // Nodes 0 and 2 share a feature vector, node 1 differs: D = [[0, 2, 0], [2, 0, 2], [0, 2, 0]] over all 9
  // pairs (four 2s, five 0s): mean 8/9, sample variance (4 (10/9)^2 + 5 (8/9)^2) / 8 = 10/9.
  const auto features = torch::tensor({1.0f, 0.0f, 0.0f, 1.0f, 1.0f, 0.0f}).reshape({3, 2});
  const auto edges = torch::tensor({0, 1, 0, 2, 1, 2}, torch::kInt64).reshape({3, 2});
  const double w = std::exp(-2.0 * 2.0 / std::sqrt(10.0 / 9.0));
  const auto expected = torch::tensor({static_cast<float>(w), 1.0f, static_cast<float>(w)});
  EXPECT_TRUE(torch::allclose(nn::feature_similarity_weights(features, edges), expected, 1e-5, 1e-7));
  // Sparse features give the same weights.
  EXPECT_TRUE(torch::allclose(nn::feature_similarity_weights(features.to_sparse(), edges), expected, 1e-5,
                              1e-7));
  PDEQ_ASSERT_THROWS_WITH(nn::feature_similarity_weights(torch::ones({3, 2}), edges),
                          "all node features are identical");
}

}  // namespace
}  // namespace pdeq::test
