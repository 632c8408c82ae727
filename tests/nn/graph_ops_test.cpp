// Graph operators: gradient and its adjoint (divergence), the weighted Laplacian, GCN propagation.
#include <pdeq/nn/graph_ops.h>

#include <torch/torch.h>

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
  EXPECT_GT(torch::linalg::eigvalsh(l, "L").min().item<double>(), -1e-12);
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

}  // namespace
}  // namespace pdeq::test
