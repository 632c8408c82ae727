// Fake quantizer values: the levels of each grid, hand-computed values, rounding, idempotence.
#include "fake_quantize_support.h"

namespace pdeq::quant {
namespace {

TEST_F(FakeQuantizeTest, UnsignedHas2PowBLevelsFromZeroToAlpha) {
  const auto x = torch::linspace(-10.0, 10.0, 20001);
  for (const int64_t bits : {2, 3, 4, 8}) {
    const auto y = F::fake_quantize(x, scalar(6.0), unsigned_bits(bits));
    const auto levels = std::get<0>(torch::_unique(y));
    EXPECT_EQ(levels.numel(), int64_t{1} << bits) << "bits=" << bits;
    EXPECT_FLOAT_EQ(levels.min().item<float>(), 0.0f);
    EXPECT_FLOAT_EQ(levels.max().item<float>(), 6.0f);
  }
}

TEST_F(FakeQuantizeTest, SignedHas2PowBMinusOneSymmetricLevels) {
  const auto x = torch::linspace(-10.0, 10.0, 20001);
  for (const int64_t bits : {2, 3, 4, 8}) {
    const auto y = F::fake_quantize(x, scalar(3.0), signed_bits(bits));
    const auto levels = std::get<0>(torch::_unique(y));
    EXPECT_EQ(levels.numel(), (int64_t{1} << bits) - 1) << "bits=" << bits;
    EXPECT_FLOAT_EQ(levels.min().item<float>(), -3.0f);
    EXPECT_FLOAT_EQ(levels.max().item<float>(), 3.0f);
    // Symmetric around 0 and 0 itself is a level.
    EXPECT_TRUE(torch::allclose(levels, -levels.flip(0), /*rtol=*/0.0, /*atol=*/1e-6));
    EXPECT_EQ((levels == 0).sum().item<int64_t>(), 1);
  }
}

TEST_F(FakeQuantizeTest, TernaryAtTwoSignedBits) {
  // q_1 on [-1, 1]: levels {-a, 0, a}, threshold a/2.
  const auto x = values({-5.0, -1.2, -0.8, 0.0, 0.8, 1.2, 5.0});
  const auto y = F::fake_quantize(x, scalar(2.0), signed_bits(2));
  EXPECT_TRUE(torch::allclose(y, values({-2, -2, 0, 0, 0, 2, 2}), /*rtol=*/0.0, /*atol=*/1e-6)) << y;
  const auto levels =
      std::get<0>(torch::_unique(F::fake_quantize(torch::randn({1000}) * 3, scalar(1.7), signed_bits(2))));
  EXPECT_TRUE(torch::allclose(levels, values({-1.7, 0.0, 1.7}), /*rtol=*/0.0, /*atol=*/1e-6)) << levels;
}

TEST_F(FakeQuantizeTest, TernaryCalibratedGradientDoesNotClipDx) {
  // The reference's uq_with_calibrated_gradients: dx = g everywhere; da = sign outside, q - t inside.
  //   a = 2: x = -5 -> -1;  x = -0.8 -> t = -0.4, q = 0: 0.4;  x = 1.2 -> t = 0.6, q = 1: 0.4;  x = 3 -> 1.
  const auto x = values({-5.0, -0.8, 1.2, 3.0}).requires_grad_();
  const auto alpha = scalar(2.0).requires_grad_();
  const auto g = values({1.0, 2.0, 3.0, 4.0});
  F::fake_quantize(x, alpha, signed_bits(2)).backward(g);
  EXPECT_TRUE(torch::equal(x.grad(), g)) << x.grad();
  EXPECT_NEAR(alpha.grad().item<double>(), -1.0 + 2.0 * 0.4 + 3.0 * 0.4 + 4.0, 1e-6);

  // Without the flag (and for signed activations) the clip mask applies as at other widths.
  const auto x2 = values({-5.0, -0.8, 1.2, 3.0}).requires_grad_();
  F::fake_quantize(x2, scalar(2.0), signed_bits(2).ternary_at_two_bits(false)).backward(g);
  EXPECT_TRUE(torch::equal(x2.grad(), values({0.0, 2.0, 3.0, 0.0}))) << x2.grad();
  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).is_signed(true).bits(2).init_alpha(2.0));
  const auto x3 = values({-5.0, -0.8, 1.2, 3.0}).requires_grad_();
  act(x3).backward(g);
  EXPECT_TRUE(torch::equal(x3.grad(), values({0.0, 2.0, 3.0, 0.0}))) << x3.grad();
  // Weight quantizers use it by default.
  FakeQuantize weight(FakeQuantizeOptions(QuantTarget::kWeight).bits(2).standardize(false).init_alpha(2.0));
  const auto w = values({-5.0, -0.8, 1.2, 3.0}).requires_grad_();
  weight(w).backward(g);
  EXPECT_TRUE(torch::equal(w.grad(), g)) << w.grad();
}

TEST_F(FakeQuantizeTest, HandComputedUnsignedValues) {
  // a = 3, 2 bits: levels {0, 1, 2, 3}.
  const auto x = values({-1.0, 0.0, 0.4, 0.6, 1.3, 1.7, 2.4, 2.6, 3.0, 7.0});
  const auto y = F::fake_quantize(x, scalar(3.0), unsigned_bits(2));
  EXPECT_TRUE(torch::allclose(y, values({0, 0, 0, 1, 1, 2, 2, 3, 3, 3}), /*rtol=*/0.0, /*atol=*/1e-6)) << y;
}

TEST_F(FakeQuantizeTest, HandComputedSignedValues) {
  // a = 3, 3 signed bits: q_2 on [-1, 1] gives levels {-3, -2, ..., 3}.
  const auto x = values({-7.0, -2.6, -1.4, -0.4, 0.4, 1.6, 2.4, 2.6, 9.0});
  const auto y = F::fake_quantize(x, scalar(3.0), signed_bits(3));
  EXPECT_TRUE(torch::allclose(y, values({-3, -3, -1, 0, 0, 2, 2, 3, 3}), /*rtol=*/0.0, /*atol=*/1e-6)) << y;
}

TEST_F(FakeQuantizeTest, RoundsTiesToEvenAsTorchRound) {
  // a = 1, 1 unsigned bit: t = 0.5 lies exactly between the levels 0 and 1.
  const auto y = F::fake_quantize(values({0.5, 0.25, 0.75}), scalar(1.0), unsigned_bits(1));
  EXPECT_TRUE(torch::equal(y, values({0.0, 0.0, 1.0}))) << y;
}

TEST_F(FakeQuantizeTest, IsIdempotent) {
  const auto x = torch::randn({4, 3, 5, 5}) * 4;
  for (const int64_t bits : {2, 3, 4, 8}) {
    const auto yu = F::fake_quantize(x, scalar(6.0), unsigned_bits(bits));
    EXPECT_TRUE(torch::equal(F::fake_quantize(yu, scalar(6.0), unsigned_bits(bits)), yu)) << "bits=" << bits;
    const auto ys = F::fake_quantize(x, scalar(3.0), signed_bits(bits));
    EXPECT_TRUE(torch::equal(F::fake_quantize(ys, scalar(3.0), signed_bits(bits)), ys)) << "bits=" << bits;
  }
  FakeQuantize weight_quant(FakeQuantizeOptions(QuantTarget::kWeight).bits(4).standardize(false).channels(4));
  const auto w = weight_quant(x);
  EXPECT_TRUE(torch::equal(weight_quant(w), w));
}

}  // namespace
}  // namespace pdeq::quant
