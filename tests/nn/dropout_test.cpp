// nn::functional::dropout: its distribution, reproducibility, thread independence and gradient.
#include "test_support.h"

#include <pdeq/nn/dropout.h>

#include <ATen/Parallel.h>
#include <torch/torch.h>

namespace pdeq::test {
namespace {

struct DropoutTest : SeedingFixture {};

TEST_F(DropoutTest, KeepsEachElementWithProbabilityOneMinusPAndScalesIt) {
  for (double p : {0.2, 0.6}) {
    const auto x = torch::ones({400, 500});
    const auto y = nn::functional::dropout(x, p, true);
    const auto kept = y.ne(0).to(torch::kDouble);
    EXPECT_NEAR(kept.mean().item<double>(), 1 - p, 0.005) << "p = " << p;
    EXPECT_TRUE((y.eq(0) | (y - 1 / (1 - p)).abs().lt(1e-6)).all().item<bool>()) << "p = " << p;
    // Neighbours (along rows and columns) are independent: P(both kept) = (1 - p)^2.
    const auto flat = kept.flatten();
    const double pairs = (flat.slice(0, 0, -1) * flat.slice(0, 1)).mean().item<double>();
    EXPECT_NEAR(pairs, (1 - p) * (1 - p), 0.005) << "p = " << p;
    const double columns = (kept.slice(0, 0, -1) * kept.slice(0, 1)).mean().item<double>();
    EXPECT_NEAR(columns, (1 - p) * (1 - p), 0.005) << "p = " << p;
  }
}

TEST_F(DropoutTest, EvaluationAndZeroProbabilityReturnTheInput) {
  const auto x = torch::randn({5, 7});
  EXPECT_TRUE(nn::functional::dropout(x, 0.5, false).is_same(x));
  EXPECT_TRUE(nn::functional::dropout(x, 0.0, true).is_same(x));
  EXPECT_TRUE(torch::equal(nn::functional::dropout(x, 1.0, true), torch::zeros_like(x)));
  PDEQ_ASSERT_THROWS_WITH(nn::functional::dropout(x, 1.5, true), "dropout probability must be in [0, 1]");
}

TEST_F(DropoutTest, ReproducibleUnderManualSeedAndFreshOnEachCall) {
  const auto x = torch::randn({300, 300}, torch::kDouble);
  torch::manual_seed(7);
  const auto a = nn::functional::dropout(x, 0.5, true);
  const auto b = nn::functional::dropout(x, 0.5, true);
  torch::manual_seed(7);
  EXPECT_TRUE(torch::equal(nn::functional::dropout(x, 0.5, true), a));
  EXPECT_FALSE(torch::equal(a, b));
}

TEST_F(DropoutTest, MaskDoesNotDependOnTheThreadCount) {
  const int threads = at::get_num_threads();
  const auto x = torch::ones({1000, 300});  // several 2^16-element blocks
  at::set_num_threads(1);
  torch::manual_seed(3);
  const auto one = nn::functional::dropout(x, 0.3, true);
  at::set_num_threads(2);
  torch::manual_seed(3);
  const auto two = nn::functional::dropout(x, 0.3, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, two));
}

TEST_F(DropoutTest, GradientIsTheSameMask) {
  const auto x = torch::randn({64, 33}).requires_grad_(true);
  const auto y = nn::functional::dropout(x, 0.4, true);
  y.backward(torch::ones_like(y));
  const auto expected = y.detach().ne(0).to(torch::kFloat) / 0.6;
  EXPECT_TRUE(torch::allclose(x.grad(), expected));
}

}  // namespace
}  // namespace pdeq::test
