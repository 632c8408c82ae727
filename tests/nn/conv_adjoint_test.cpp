// K^T of the symmetric layers: conv2d_adjoint is the adjoint of conv2d, by either implementation.
#include <pdeq/nn/conv_adjoint.h>

#include <torch/torch.h>

#include "test_support.h"

namespace {

using pdeq::nn::TransposeImpl;
using pdeq::nn::functional::conv2d_adjoint;

struct ConvAdjointTest : pdeq::test::SeedingFixture {};

constexpr auto kDouble = torch::kFloat64;

TEST_F(ConvAdjointTest, AdjointIsTheTransposeForEveryShape) {
  struct Case {
    int64_t in, out, k, padding, groups;
  };
  for (const auto& c : {Case{3, 5, 3, 1, 1}, Case{6, 6, 3, 0, 6}, Case{4, 8, 1, 0, 1}, Case{4, 6, 3, 1, 2}}) {
    SCOPED_TRACE(testing::Message() << c.in << "->" << c.out << " k" << c.k << " p" << c.padding << " g"
                                    << c.groups);
    const auto w = torch::randn({c.out, c.in / c.groups, c.k, c.k}, kDouble);
    const auto x = torch::randn({2, c.in, 7, 7}, kDouble);
    const auto kx = torch::conv2d(x, w, {}, {1, 1}, {c.padding, c.padding}, {1, 1}, c.groups);
    const auto y = torch::randn(kx.sizes(), kDouble);
    for (auto impl : {TransposeImpl::kFlippedConv, TransposeImpl::kConvTranspose}) {
      const auto kty = conv2d_adjoint(y, w, c.padding, c.groups, impl);
      ASSERT_EQ(kty.sizes(), x.sizes());
      EXPECT_NEAR((kx * y).sum().item<double>(), (x * kty).sum().item<double>(), 1e-9);
    }
    EXPECT_TRUE(torch::allclose(
        conv2d_adjoint(y, w, c.padding, c.groups, TransposeImpl::kFlippedConv),
        torch::conv_transpose2d(y, w, {}, {1, 1}, {c.padding, c.padding}, {0, 0}, c.groups), 1e-10, 1e-10));
  }
}

}  // namespace
