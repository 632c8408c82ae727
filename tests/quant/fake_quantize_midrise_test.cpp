// The mid-rise grid (graph networks): levels, values, gradients.
#include "fake_quantize_support.h"

namespace pdeq::quant {
namespace {

FakeQuantizeFuncOptions midrise_bits(int64_t bits) {
  return FakeQuantizeFuncOptions().bits(bits).midrise(true);
}

/// Independent autograd formulation of the mid-rise grid: the nearest of the levels (2k - n)/n, k = 0..n,
/// n = 2^b - 1; STE by detaching the residual, clamp gives the clip mask.
torch::Tensor midrise_reference(const torch::Tensor& x, const torch::Tensor& alpha, int64_t bits) {
  const double n = static_cast<double>((int64_t{1} << bits) - 1);
  // Clipped to [-1, 1] with the gradient passing at the ends, as the kernel's closed clip mask
  // (LibTorch 2.x's clamp stops the gradient at its bounds, 1.13's passed it).
  const torch::Tensor r = x / alpha;
  const torch::Tensor t =
      torch::where(r > 1.0, torch::ones_like(r), torch::where(r < -1.0, -torch::ones_like(r), r));
  // Index k in 0..n of the nearest level (2k - n)/n.
  const torch::Tensor k = torch::round((t * n + n) / 2);
  const torch::Tensor q = (2 * k - n) / n;
  return alpha * (t + (q - t).detach());
}

TEST_F(FakeQuantizeTest, MidriseTwoBitLevelsAreThirdsWithoutZero) {
  const auto x = torch::linspace(-5, 5, 1001, torch::kDouble);
  const auto y = F::fake_quantize(x, scalar(3.0, torch::kDouble), midrise_bits(2));
  const auto levels = std::get<0>(at::_unique(y));
  EXPECT_TRUE(torch::allclose(levels, values({-3.0, -1.0, 1.0, 3.0}, torch::kDouble), 0.0, 1e-12)) << levels;
  // 0 maps to one of the two innermost levels, never to 0.
  EXPECT_NEAR(std::abs(F::fake_quantize(scalar(0.0), scalar(3.0), midrise_bits(2)).item<double>()), 1.0,
              1e-6);
}

TEST_F(FakeQuantizeTest, MidriseFourBitLevelsAreOddFifteenths) {
  const auto x = torch::linspace(-2, 2, 4001, torch::kDouble);
  const auto y = F::fake_quantize(x, scalar(1.0, torch::kDouble), midrise_bits(4));
  const auto levels = std::get<0>(at::_unique(y));
  const auto expected = (torch::arange(-15, 16, 2, torch::kDouble)) / 15.0;
  ASSERT_EQ(levels.numel(), 16);
  EXPECT_TRUE(torch::allclose(levels, expected, 0.0, 1e-12)) << levels;
  // One bit: the sign times a.
  const auto y1 = F::fake_quantize(values({-0.3, 0.2, 7.0}), scalar(2.0), midrise_bits(1));
  EXPECT_TRUE(torch::allclose(y1, values({-2.0, 2.0, 2.0}), 0.0, 1e-6)) << y1;
}

TEST_F(FakeQuantizeTest, MidriseHandComputedValues) {
  // a = 3, b = 2: levels -3, -1, 1, 3 with decision thresholds -2, 0, 2 (ties away from the level 0 that does
  // not exist go to the even index: t = 0 -> k = round(1.5) = 2 -> +1).
  const auto y =
      F::fake_quantize(values({-4.0, -2.1, -1.9, -0.1, 0.1, 1.9, 2.1, 9.0}), scalar(3.0), midrise_bits(2));
  EXPECT_TRUE(torch::allclose(y, values({-3, -3, -1, -1, 1, 1, 3, 3}), 0.0, 1e-6)) << y;
}

TEST_F(FakeQuantizeTest, MidriseGradientsMatchAutogradReferenceOnBothPaths) {
  for (const auto dtype : {torch::kFloat, torch::kDouble, torch::kBFloat16}) {
    for (const int64_t bits : {1, 2, 4, 8}) {
      const auto x = (torch::randn({64, 700}, torch::kDouble) * 4).to(dtype);
      const auto g = torch::randn({64, 700}, torch::kDouble).to(dtype);
      const auto x1 = x.clone().requires_grad_();
      const auto a1 = scalar(3.0, dtype).requires_grad_();
      const auto y1 = F::fake_quantize(x1, a1, midrise_bits(bits));
      y1.backward(g);
      const auto x2 = x.to(torch::kDouble).requires_grad_();
      const auto a2 = scalar(3.0, torch::kDouble).requires_grad_();
      const auto y2 = midrise_reference(x2, a2, bits);
      y2.backward(g.to(torch::kDouble));
      const bool low = dtype == torch::kBFloat16;
      const std::string where = c10::str("dtype=", dtype, " bits=", bits);
      // bfloat16 inputs can sit on the other side of a decision threshold than their double copy: compare
      // the share of exactly matching elements there.
      const auto same =
          (y1.to(torch::kDouble) - y2).abs().le(low ? 3e-2 * 3 : 1e-5).to(torch::kDouble).mean();
      EXPECT_GT(same.item<double>(), low ? 0.97 : 0.99999) << where;
      EXPECT_TRUE(torch::equal(x1.grad().to(torch::kDouble).ne(0), x2.grad().ne(0))) << where;
      if (!low) {
        EXPECT_NEAR(a1.grad().item<double>(), a2.grad().item<double>(),
                    1e-4 * std::abs(a2.grad().item<double>()) + 1e-2)
            << where;
      }
    }
  }
}

TEST_F(FakeQuantizeTest, MidriseAlphaGradientHandComputed) {
  // a = 3, b = 2: x = 0.6 -> t = 0.2, q = 1/3: dy/da = q - t = 2/15; x = 4.5 -> clipped: dy/da = 1;
  // x = -6 -> -1. Sum with g = 1: 2/15.
  const auto alpha = scalar(3.0, torch::kDouble).requires_grad_();
  const auto x = values({0.6, 4.5, -6.0}, torch::kDouble).requires_grad_();
  F::fake_quantize(x, alpha, midrise_bits(2)).sum().backward();
  EXPECT_NEAR(alpha.grad().item<double>(), 2.0 / 15.0, 1e-12);
  EXPECT_TRUE(torch::equal(x.grad(), values({1.0, 0.0, 0.0}, torch::kDouble)));
}

TEST_F(FakeQuantizeTest, MidriseModuleAndPrettyPrint) {
  FakeQuantize q(FakeQuantizeOptions(QuantTarget::kActivation).bits(1).midrise(true));
  EXPECT_EQ(c10::str(*q), "pdeq::quant::FakeQuantize(target=activation, bits=1, midrise=true)");
  const auto y = q(values({-0.5, 0.5}));
  EXPECT_TRUE(torch::allclose(y, values({-6.0, 6.0}), 0.0, 1e-6));
  q->set_bits(2);
  EXPECT_EQ(q->bits(), 2);
}

}  // namespace
}  // namespace pdeq::quant
