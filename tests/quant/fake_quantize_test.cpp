// Tests of the fake quantizer: levels, hand-computed values, gradients, the fused kernel, the module.
#include <pdeq/quant/fake_quantize.h>

#include <ATen/autocast_mode.h>
#include <torch/torch.h>

#include <sstream>
#include <vector>

#include "test_support.h"

namespace pdeq::quant {
namespace {

namespace F = functional;

struct FakeQuantizeTest : pdeq::test::SeedingFixture {};

FakeQuantizeFuncOptions unsigned_bits(int64_t bits) { return FakeQuantizeFuncOptions().bits(bits); }

FakeQuantizeFuncOptions signed_bits(int64_t bits) {
  return FakeQuantizeFuncOptions().bits(bits).is_signed(true);
}

torch::Tensor scalar(double value, torch::Dtype dtype = torch::kFloat) {
  return torch::tensor(value, torch::TensorOptions().dtype(dtype));
}

torch::Tensor values(const std::vector<double>& v, torch::Dtype dtype = torch::kFloat) {
  return torch::tensor(v, torch::TensorOptions().dtype(dtype));
}

int64_t grid_steps(int64_t bits, bool is_signed) {
  return is_signed ? (int64_t{1} << (bits - 1)) - 1 : (int64_t{1} << bits) - 1;
}

/// Independent formulation with ordinary autograd ops: the rounding residual is detached, which is exactly
/// the straight-through estimator, and clamp's own gradient is the clip mask. `calibrated` adds x - x (value
/// 0) outside the range so that dx passes unclipped there, as the reference's ternary calibrated gradient.
torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& alpha, int64_t bits, bool is_signed,
                        bool calibrated = false) {
  const double n = static_cast<double>(grid_steps(bits, is_signed));
  const double lo = is_signed ? -1.0 : 0.0;
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  if (alpha.numel() > 1) {
    shape[0] = alpha.numel();
  }
  const torch::Tensor a = alpha.numel() > 1 ? alpha.reshape(shape) : alpha.reshape({});
  // Unsigned: relu after the clamp gives the open lower end (no dx at x = 0), as relu'(0) = 0.
  const torch::Tensor clamped = (x * a.reciprocal()).clamp(lo, 1.0);
  const torch::Tensor t = is_signed ? clamped : torch::relu(clamped);
  const torch::Tensor q = torch::round(t * n) / n;
  const torch::Tensor y = a * (t + (q - t).detach());
  if (!calibrated) {
    return y;
  }
  const torch::Tensor u = (x * a.reciprocal()).detach();
  return y + (x - x.detach()) * ((u < lo) | (u > 1.0));
}

// ---- levels and values
// --------------------------------------------------------------------------------------

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

// ---- gradients
// ----------------------------------------------------------------------------------------------

TEST_F(FakeQuantizeTest, StraightThroughGradientWithClipMask) {
  const auto x = values({-1.0, 0.0, 0.5, 2.9, 3.0, 3.5}).requires_grad_();
  const auto alpha = scalar(3.0).requires_grad_();
  const auto g = values({1.0, 2.0, 3.0, 4.0, 5.0, 6.0});
  F::fake_quantize(x, alpha, unsigned_bits(4)).backward(g);
  // Inside (0, a] dx = g; outside 0. The lower end is open, as relu'(0) = 0 (Q(relu(x)) = Q(x) in gradient).
  EXPECT_TRUE(torch::equal(x.grad(), values({0.0, 0.0, 3.0, 4.0, 5.0, 0.0}))) << x.grad();

  const auto xs = values({-3.5, -3.0, -0.2, 2.0, 3.2}).requires_grad_();
  F::fake_quantize(xs, scalar(3.0), signed_bits(4)).backward(torch::ones({5}));
  EXPECT_TRUE(torch::equal(xs.grad(), values({0.0, 1.0, 1.0, 1.0, 0.0}))) << xs.grad();
}

TEST_F(FakeQuantizeTest, HandComputedAlphaGradient) {
  // a = 3, 2 unsigned bits (levels at multiples of 1/3 of a): dy/da = q(t) - t inside, the clip value
  // outside.
  //   x = -1  -> below: 0;   x = 0.4 -> t = 0.1333, q = 0: -0.1333;
  //   x = 1.3 -> t = 0.4333, q = 1/3: -0.1;   x = 7 -> above: 1.     Sum: 0.766667.
  const auto alpha = scalar(3.0).requires_grad_();
  F::fake_quantize(values({-1.0, 0.4, 1.3, 7.0}), alpha, unsigned_bits(2)).sum().backward();
  EXPECT_NEAR(alpha.grad().item<double>(), 1.0 - 0.4 / 3.0 - 0.1, 1e-6);

  // Signed: -1 below the range, +1 above.
  const auto alpha_s = scalar(3.0).requires_grad_();
  F::fake_quantize(values({-7.0, -9.0, 8.0}), alpha_s, signed_bits(3)).backward(values({1.0, 2.0, 0.5}));
  EXPECT_NEAR(alpha_s.grad().item<double>(), -1.0 - 2.0 + 0.5, 1e-6);
}

/// L(a) = sum(g * Q(x; a)) in double.
double loss_at(const torch::Tensor& x, const torch::Tensor& g, double a, const FakeQuantizeFuncOptions& opt) {
  return (g * F::fake_quantize(x, scalar(a, torch::kDouble), opt)).sum().item<double>();
}

TEST_F(FakeQuantizeTest, AlphaGradientMatchesFiniteDifferenceInClipRegion) {
  // Outside the range y = a * clip value is linear in a, so the STE gradient is the true derivative.
  const auto x = torch::cat({torch::rand({50}, torch::kDouble) * 5 + 3.5,       // above a = 3
                             -(torch::rand({50}, torch::kDouble) * 5 + 3.5)});  // below -a
  const auto g = torch::randn({100}, torch::kDouble);
  for (const bool is_signed : {false, true}) {
    const auto opt = FakeQuantizeFuncOptions().bits(4).is_signed(is_signed);
    const auto alpha = scalar(3.0, torch::kDouble).requires_grad_();
    (g * F::fake_quantize(x, alpha, opt)).sum().backward();
    constexpr double h = 1e-4;
    const double fd = (loss_at(x, g, 3.0 + h, opt) - loss_at(x, g, 3.0 - h, opt)) / (2 * h);
    EXPECT_NEAR(alpha.grad().item<double>(), fd, 1e-8) << "is_signed=" << is_signed;
  }
}

TEST_F(FakeQuantizeTest, AlphaGradientIsFiniteDifferenceMinusRoundingTerm) {
  // Away from rounding jumps y = a * q(x/a) with q locally constant, so dL/da (finite difference) is
  // sum g * q inside. The STE treats dq/dt as 1, adding -x/a per inside element: grad = fd - sum_inside g *
  // t.
  constexpr double a = 3.0;
  for (const bool is_signed : {false, true}) {
    const int64_t bits = 4;
    const auto opt = FakeQuantizeFuncOptions().bits(bits).is_signed(is_signed);
    const double n = static_cast<double>(grid_steps(bits, is_signed));
    const double lo = is_signed ? -1.0 : 0.0;
    const auto x = torch::randn({400}, torch::kDouble) * 3;
    const auto t = x / a;
    // Keep elements well away from rounding jumps (half-integers of t*n) and from the clip boundaries.
    const auto frac = (t * n - torch::floor(t * n) - 0.5).abs();
    const auto smooth = (frac > 0.01) & ((t - lo).abs() > 0.01) & ((t - 1.0).abs() > 0.01);
    const auto g = torch::randn({400}, torch::kDouble) * smooth;
    const auto alpha = scalar(a, torch::kDouble).requires_grad_();
    (g * F::fake_quantize(x, alpha, opt)).sum().backward();
    constexpr double h = 1e-6;
    const double fd = (loss_at(x, g, a + h, opt) - loss_at(x, g, a - h, opt)) / (2 * h);
    const auto inside = (t >= lo) & (t <= 1.0);
    const double rounding_term = (g * t * inside).sum().item<double>();
    EXPECT_NEAR(alpha.grad().item<double>(), fd - rounding_term, 1e-6) << "is_signed=" << is_signed;
    // The check is not vacuous: both parts matter.
    EXPECT_GT(std::abs(rounding_term), 1.0);
    EXPECT_GT(std::abs(fd), 1.0);
  }
}

TEST_F(FakeQuantizeTest, PerChannelAlphaEqualsPerRowScalarAlpha) {
  const auto x = torch::randn({3, 4, 5}) * 3;
  const auto g = torch::randn({3, 4, 5});
  const auto alpha = values({1.0, 2.0, 4.0}).requires_grad_();
  const auto xg = x.clone().requires_grad_();
  const auto y = F::fake_quantize(xg, alpha, signed_bits(3));
  y.backward(g);
  for (int64_t c = 0; c < 3; ++c) {
    const auto a_c = alpha.detach()[c].clone().requires_grad_();
    const auto x_c = x[c].clone().requires_grad_();
    const auto y_c = F::fake_quantize(x_c, a_c, signed_bits(3));
    y_c.backward(g[c]);
    EXPECT_TRUE(torch::allclose(y[c], y_c, /*rtol=*/0.0, /*atol=*/1e-6)) << "channel " << c;
    EXPECT_TRUE(torch::equal(xg.grad()[c], x_c.grad())) << "channel " << c;
    EXPECT_NEAR(alpha.grad()[c].item<double>(), a_c.grad().item<double>(), 1e-5) << "channel " << c;
  }
  EXPECT_EQ(alpha.grad().sizes(), alpha.sizes());
}

TEST_F(FakeQuantizeTest, FusedKernelMatchesTensorOpReference) {
  for (const auto dtype : {torch::kFloat, torch::kDouble}) {
    const double tol = dtype == torch::kFloat ? 1e-5 : 1e-12;
    for (const bool is_signed : {false, true}) {
      for (const int64_t channels : {0, 6}) {
        for (const int64_t bits : {2, 3, 4, 8}) {
          // Large enough for several reduction chunks and threads.
          const auto x = torch::randn({6, 16, 30, 30}, dtype) * 4;
          const auto g = torch::randn({6, 16, 30, 30}, dtype);
          const auto alpha0 = channels > 0 ? torch::rand({channels}, dtype) * 4 + 1 : scalar(3.0, dtype);
          const auto x1 = x.clone().requires_grad_();
          const auto a1 = alpha0.clone().requires_grad_();
          const auto y1 = F::fake_quantize(x1, a1, FakeQuantizeFuncOptions().bits(bits).is_signed(is_signed));
          y1.backward(g);
          const auto x2 = x.clone().requires_grad_();
          const auto a2 = alpha0.clone().requires_grad_();
          const auto y2 = reference(x2, a2, bits, is_signed, /*calibrated=*/is_signed && bits == 2);
          y2.backward(g);
          const std::string where =
              c10::str("dtype=", dtype, " is_signed=", is_signed, " channels=", channels, " bits=", bits);
          EXPECT_TRUE(torch::allclose(y1, y2, /*rtol=*/tol, /*atol=*/tol)) << where;
          EXPECT_TRUE(torch::allclose(x1.grad(), x2.grad(), /*rtol=*/tol, /*atol=*/tol)) << where;
          // The alpha gradient sums ~86k terms; float sums in different orders agree to ~1e-6 relative.
          EXPECT_TRUE(torch::allclose(a1.grad(), a2.grad(), /*rtol=*/dtype == torch::kFloat ? 1e-4 : 1e-10,
                                      /*atol=*/dtype == torch::kFloat ? 1e-2 : 1e-8))
              << where << "\n"
              << a1.grad() << "\n"
              << a2.grad();
        }
      }
    }
  }
}

TEST_F(FakeQuantizeTest, AlphaGradientDoesNotDependOnThreadCount) {
  // Partial sums over fixed-size chunks, added in chunk order: bitwise the same with 1 or 2 threads, which
  // keeps training deterministic whatever train.threads is.
  const auto x = torch::randn({8, 16, 32, 32}) * 4;
  const auto g = torch::randn({8, 16, 32, 32});
  const int saved_threads = torch::get_num_threads();
  std::vector<torch::Tensor> grads;
  for (const int threads : {1, 2}) {
    torch::set_num_threads(threads);
    for (const int64_t channels : {0, 8}) {
      const auto alpha = (channels > 0 ? torch::full({channels}, 3.0) : torch::tensor(3.0f)).requires_grad_();
      const auto xg = x.clone().requires_grad_();
      F::fake_quantize(xg, alpha, unsigned_bits(4)).backward(g);
      grads.push_back(alpha.grad().clone());
      grads.push_back(xg.grad().clone());
    }
  }
  torch::set_num_threads(saved_threads);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_TRUE(torch::equal(grads[i], grads[i + 4])) << "gradient " << i;
  }
}

TEST_F(FakeQuantizeTest, TensorOpPathForOtherDtypes) {
  // bfloat16 takes the tensor-op path; inputs sit on level midpoints' far side from the jumps, so both paths
  // must agree with the float kernel exactly on the level chosen.
  const auto k = torch::arange(-8, 9, torch::kFloat);  // level indices, some outside the range
  const auto x = (k + 0.25) * 0.5;                     // a = 3.5 signed 4 bits: step 0.5
  const auto y16 = F::fake_quantize(x.to(torch::kBFloat16), scalar(3.5, torch::kBFloat16), signed_bits(4));
  const auto y32 = F::fake_quantize(x, scalar(3.5), signed_bits(4));
  EXPECT_EQ(y16.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(y16.to(torch::kFloat), y32, /*rtol=*/0.0, /*atol=*/2e-2)) << y16 << y32;

  const auto xg = x.to(torch::kBFloat16).requires_grad_();
  const auto alpha = scalar(3.5).requires_grad_();  // float alpha with a bfloat16 input: cast inside
  F::fake_quantize(xg, alpha, signed_bits(4)).sum().backward();
  const auto x32 = x.clone().requires_grad_();
  const auto alpha32 = scalar(3.5).requires_grad_();
  F::fake_quantize(x32, alpha32, signed_bits(4)).sum().backward();
  EXPECT_TRUE(torch::equal(xg.grad().to(torch::kFloat), x32.grad()));
  EXPECT_EQ(alpha.grad().scalar_type(), torch::kFloat);
  EXPECT_NEAR(alpha.grad().item<double>(), alpha32.grad().item<double>(), 0.1);
}

TEST_F(FakeQuantizeTest, GradientOnlyForWhatRequiresIt) {
  const auto x = torch::randn({2, 3, 4}).requires_grad_();
  const auto alpha = scalar(2.0);  // frozen scale
  F::fake_quantize(x, alpha, unsigned_bits(4)).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), ((x >= 0) & (x <= 2)).to(torch::kFloat)));
  EXPECT_FALSE(alpha.grad().defined());

  const auto x2 = torch::randn({2, 3, 4});
  const auto alpha2 = scalar(2.0).requires_grad_();
  const auto x2g = x2.clone().requires_grad_();
  const auto alpha3 = scalar(2.0).requires_grad_();
  F::fake_quantize(x2, alpha2, unsigned_bits(4)).sum().backward();
  F::fake_quantize(x2g, alpha3, unsigned_bits(4)).sum().backward();
  EXPECT_EQ(alpha2.grad().item<float>(), alpha3.grad().item<float>());
}

TEST_F(FakeQuantizeTest, NonContiguousInput) {
  const auto x = torch::randn({5, 7}) * 4;
  const auto xt = x.t();
  ASSERT_FALSE(xt.is_contiguous());
  EXPECT_TRUE(torch::equal(F::fake_quantize(xt, scalar(3.0), signed_bits(4)),
                           F::fake_quantize(xt.contiguous(), scalar(3.0), signed_bits(4))));
}

TEST_F(FakeQuantizeTest, PassThroughAtFullPrecision) {
  const auto x = torch::randn({3, 4}).requires_grad_();
  const auto alpha = scalar(1.0).requires_grad_();
  for (const int64_t bits : {32, 40}) {
    const auto y = F::fake_quantize(x, alpha, unsigned_bits(bits));
    EXPECT_TRUE(y.is_same(x)) << "bits=" << bits;
  }
  FakeQuantize act{FakeQuantizeOptions(QuantTarget::kActivation)};
  FakeQuantize weight{FakeQuantizeOptions(QuantTarget::kWeight)};
  EXPECT_TRUE(act(x).is_same(x));
  EXPECT_TRUE(weight(x).is_same(x));  // no standardisation either
  (act(x) * 2).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), torch::full({3, 4}, 2.0)));
  EXPECT_FALSE(act->alpha.grad().defined());
}

TEST_F(FakeQuantizeTest, EmptyInput) {
  const auto x = torch::empty({0, 3}).requires_grad_();
  const auto alpha = scalar(1.0).requires_grad_();
  const auto y = F::fake_quantize(x, alpha, unsigned_bits(4));
  EXPECT_EQ(y.sizes(), x.sizes());
  y.sum().backward();
  EXPECT_EQ(alpha.grad().item<float>(), 0.0f);
}

// ---- module
// -------------------------------------------------------------------------------------------------

// ---- mid-rise grid (graph networks)
// -------------------------------------------------------------------------

FakeQuantizeFuncOptions midrise_bits(int64_t bits) {
  return FakeQuantizeFuncOptions().bits(bits).midrise(true);
}

/// Independent autograd formulation of the mid-rise grid: the nearest of the levels (2k - n)/n, k = 0..n,
/// n = 2^b - 1; STE by detaching the residual, clamp gives the clip mask.
torch::Tensor midrise_reference(const torch::Tensor& x, const torch::Tensor& alpha, int64_t bits) {
  const double n = static_cast<double>((int64_t{1} << bits) - 1);
  const torch::Tensor t = (x / alpha).clamp(-1.0, 1.0);
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

TEST_F(FakeQuantizeTest, OptionDefaultsByTarget) {
  const FakeQuantizeOptions w(QuantTarget::kWeight);
  EXPECT_TRUE(w.is_signed());
  EXPECT_EQ(w.init_alpha(), 3.0);
  EXPECT_TRUE(w.standardize());
  const FakeQuantizeOptions a(QuantTarget::kActivation);
  EXPECT_FALSE(a.is_signed());
  EXPECT_EQ(a.init_alpha(), 6.0);
  EXPECT_FALSE(a.standardize());
  EXPECT_EQ(a.bits(), kFullPrecisionBits);
  EXPECT_EQ(a.channels(), 0);

  FakeQuantize wq(FakeQuantizeOptions(QuantTarget::kWeight).channels(5));
  EXPECT_EQ(wq->alpha.sizes(), torch::IntArrayRef({5}));
  EXPECT_TRUE(torch::equal(wq->alpha, torch::full({5}, 3.0)));
  FakeQuantize aq;
  EXPECT_EQ(aq->alpha.dim(), 0);
  EXPECT_EQ(aq->alpha.item<float>(), 6.0f);
  EXPECT_EQ(aq->parameters().size(), 1u);
  EXPECT_EQ(aq->buffers().size(), 1u);
  EXPECT_EQ(aq->named_buffers()["bits"].scalar_type(), torch::kInt64);
}

TEST_F(FakeQuantizeTest, ModuleMatchesFunctional) {
  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).bits(4));
  const auto x = torch::randn({2, 3, 4, 4}) * 5;
  EXPECT_TRUE(torch::equal(act(x), F::fake_quantize(x, torch::tensor(6.0), unsigned_bits(4))));

  // Weights: standardised per tensor first, then signed quantization.
  FakeQuantize weight(FakeQuantizeOptions(QuantTarget::kWeight).bits(3));
  const auto w = torch::randn({4, 3, 3, 3}) * 0.1 + 0.05;
  const auto ws = (w - w.mean()) / w.std();
  EXPECT_TRUE(
      torch::allclose(weight(w), F::fake_quantize(ws, torch::tensor(3.0), signed_bits(3)), 0.0, 1e-6));
}

TEST_F(FakeQuantizeTest, StandardisationIsDifferentiableAndSafeOnConstants) {
  FakeQuantize weight(FakeQuantizeOptions(QuantTarget::kWeight).bits(4));
  const auto w = (torch::randn({4, 3, 3, 3}) * 0.1).requires_grad_();
  const auto g = torch::randn({4, 3, 3, 3});
  (weight(w) * g).sum().backward();
  // Reference: autograd through the standardisation and the independent STE formulation.
  const auto w2 = w.detach().clone().requires_grad_();
  const auto alpha2 = torch::tensor(3.0).requires_grad_();
  (reference((w2 - w2.mean()) / (w2.std() + 1e-8), alpha2, 4, true) * g).sum().backward();
  EXPECT_TRUE(torch::allclose(w.grad(), w2.grad(), /*rtol=*/1e-4, /*atol=*/1e-5));
  EXPECT_NEAR(weight->alpha.grad().item<double>(), alpha2.grad().item<double>(), 1e-4);

  const auto zeros = torch::zeros({4, 3, 3, 3});
  EXPECT_TRUE(torch::equal(weight(zeros), zeros));
}

TEST_F(FakeQuantizeTest, SignedActivationMode) {
  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).is_signed(true).bits(3));
  const auto x = torch::linspace(-10.0, 10.0, 2001);
  const auto levels = std::get<0>(torch::_unique(act(x)));
  EXPECT_EQ(levels.numel(), 7);
  EXPECT_FLOAT_EQ(levels.min().item<float>(), -6.0f);
  EXPECT_FLOAT_EQ(levels.max().item<float>(), 6.0f);
  // No standardisation on activations: a constant input keeps its value (2 is the level 1 * 6/3).
  EXPECT_TRUE(torch::allclose(act(torch::full({5}, 2.1)), torch::full({5}, 2.0), 0.0, 1e-6));
}

TEST_F(FakeQuantizeTest, SetBitsChangesTheBuffer) {
  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).bits(8));
  EXPECT_EQ(act->bits(), 8);
  act->set_bits(2);
  EXPECT_EQ(act->bits(), 2);
  EXPECT_EQ(act->named_buffers()["bits"].item<int64_t>(), 2);
  const auto levels = std::get<0>(torch::_unique(act(torch::linspace(-1.0, 8.0, 901))));
  EXPECT_EQ(levels.numel(), 4);
  // Built to quantize, then set to full precision: clipped at alpha (6) and at 0, not rounded.
  act->set_bits(kFullPrecisionBits);
  const auto x = values({-1.0, 0.3, 2.71, 7.5});
  EXPECT_TRUE(torch::allclose(act(x), values({0.0, 0.3, 2.71, 6.0})));
}

TEST_F(FakeQuantizeTest, FloatQuantizerPassesThrough) {
  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation));
  const auto x = torch::randn({3}) * 10;
  EXPECT_TRUE(act->passes_through());
  EXPECT_TRUE(act(x).is_same(x));
}

TEST_F(FakeQuantizeTest, AbsorbsReluOnlyWhenItClipsAtZeroAndNothingObserves) {
  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).bits(4).init_alpha(2.0));
  EXPECT_TRUE(act->absorbs_relu());
  // Q(relu(x)) = Q(x): values and both gradients, at 4 bits and at full precision after training (the clip).
  for (const int64_t bits : {int64_t{4}, kFullPrecisionBits}) {
    act->set_bits(bits);
    EXPECT_TRUE(act->absorbs_relu()) << bits;
    const auto x0 = values({-3.0, -0.7, -1e-3, 1e-3, 0.4, 1.3, 1.99, 2.5, 7.0});
    const auto dy = values({0.5, -1.0, 2.0, 1.5, -0.25, 3.0, -2.0, 1.0, 0.75});
    auto x1 = x0.clone().requires_grad_(true), x2 = x0.clone().requires_grad_(true);
    const auto y1 = act(torch::relu(x1));
    act->alpha.mutable_grad() = torch::Tensor();
    y1.backward(dy);
    const auto alpha_grad_1 = act->alpha.grad().clone();
    act->alpha.mutable_grad() = torch::Tensor();
    const auto y2 = act(x2);
    y2.backward(dy);
    EXPECT_TRUE(torch::equal(y1, y2)) << bits;
    EXPECT_TRUE(torch::equal(x1.grad(), x2.grad())) << bits;
    EXPECT_TRUE(torch::equal(alpha_grad_1, act->alpha.grad())) << bits;
    // The negative inputs really are cut: a gradient reaches only (0, a].
    EXPECT_EQ(x2.grad().slice(0, 0, 3).abs().sum().item<float>(), 0.0f) << bits;
  }
  act->observer = [](const torch::Tensor&, const torch::Tensor&) {};
  EXPECT_FALSE(act->absorbs_relu());  // an observer would see negative inputs
  EXPECT_FALSE(FakeQuantize(FakeQuantizeOptions(QuantTarget::kActivation))->absorbs_relu());  // float
  EXPECT_FALSE(
      FakeQuantize(FakeQuantizeOptions(QuantTarget::kActivation).bits(4).is_signed(true))->absorbs_relu());
  EXPECT_FALSE(
      FakeQuantize(FakeQuantizeOptions(QuantTarget::kActivation).bits(4).midrise(true))->absorbs_relu());
  EXPECT_FALSE(FakeQuantize(FakeQuantizeOptions(QuantTarget::kWeight).bits(4))->absorbs_relu());
}

TEST_F(FakeQuantizeTest, TrainedWeightQuantizerAtFullPrecisionStandardisesAndClips) {
  FakeQuantize quant(FakeQuantizeOptions(QuantTarget::kWeight).bits(4).init_alpha(1.0));
  quant->set_bits(kFullPrecisionBits);
  EXPECT_FALSE(quant->passes_through());
  const auto w = torch::randn({64}, torch::kFloat64) * 5 + 2;
  const auto standardised = (w - w.mean()) / w.std();
  const auto y = quant(w);
  EXPECT_TRUE(torch::allclose(y, standardised.clamp(-1.0, 1.0), 1e-6, 1e-6));
  // Not rounded: more distinct values than 4-bit levels.
  EXPECT_GT(std::get<0>(torch::_unique(y)).numel(), 15);
}

// Review defect: alpha is a free parameter; at 0 or below x/alpha divided by zero or flipped the grid.
TEST_F(FakeQuantizeTest, AlphaIsClampedAtAPositiveFloorInForwardAndBackward) {
  const auto x = values({-1.0, 0.0, 5.5e-5, 2e-4, 3.0});
  const auto at_floor = F::fake_quantize(x, scalar(kMinAlpha), unsigned_bits(4));
  for (const double bad : {0.0, -2.0, 1e-9}) {
    const auto xg = x.clone().set_requires_grad(true);
    const auto alpha = scalar(bad).set_requires_grad(true);
    const auto y = F::fake_quantize(xg, alpha, unsigned_bits(4));
    EXPECT_TRUE(torch::equal(y, at_floor)) << "alpha " << bad;
    EXPECT_GE(y.min().item<double>(), 0.0) << "alpha " << bad;  // no sign flip
    y.sum().backward();
    // Computed at alpha = kMinAlpha and passed straight through the clamp: x = 2e-4 and 3 are clipped
    // (dL/da 1 each), 5.5e-5 is inside (q(0.55) - 0.55 on 15 steps: 8/15 - 0.55), -1 clips at 0 (dL/da 0).
    EXPECT_NEAR(alpha.grad().item<double>(), 2.0 + (8.0 / 15.0 - 0.55), 1e-5) << "alpha " << bad;
    // dL/dx: only 5.5e-5 is strictly inside (0, a] (0 is the open lower end).
    EXPECT_TRUE(torch::equal(xg.grad(), values({0.0, 0.0, 1.0, 0.0, 0.0}))) << "alpha " << bad;
  }
  // The tensor-op path (bfloat16; float and double are fused) and the full-precision clip agree.
  EXPECT_TRUE(torch::equal(F::fake_quantize(x.to(torch::kBFloat16), scalar(-1.0), unsigned_bits(4)),
                           F::fake_quantize(x.to(torch::kBFloat16), scalar(kMinAlpha), unsigned_bits(4))));
  EXPECT_TRUE(torch::equal(F::clip_to_scale(x, scalar(-3.0), /*is_signed=*/true),
                           F::clip_to_scale(x, scalar(kMinAlpha), /*is_signed=*/true)));
}

TEST_F(FakeQuantizeTest, WeightDecayCannotDriveAlphaThroughZero) {
  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).bits(4).init_alpha(0.5));
  // A decay of 3 at lr 1 flips alpha's sign in one step: 0.5 - 1 * (3 * 0.5 + grad).
  torch::optim::SGD sgd(act->parameters(), torch::optim::SGDOptions(1.0).weight_decay(3.0));
  const auto x = torch::rand({64}) * 4;
  for (int step = 0; step < 3; ++step) {
    sgd.zero_grad();
    act(x).sum().backward();
    sgd.step();
  }
  ASSERT_LT(act->alpha.item<double>(), 0.0);
  const auto y = act(x);
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  EXPECT_GE(y.min().item<double>(), 0.0);
  EXPECT_LE(y.max().item<double>(), kMinAlpha * (1 + 1e-6));
}

TEST_F(FakeQuantizeTest, ClipToScaleGradients) {
  const auto x = values({-2.0, -0.5, 0.5, 3.0, 4.0}).set_requires_grad(true);
  const auto alpha = torch::tensor(1.0, torch::kFloat64).set_requires_grad(true);
  pdeq::quant::functional::clip_to_scale(x, alpha, /*is_signed=*/true).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), values({0.0, 1.0, 1.0, 0.0, 0.0})));
  EXPECT_DOUBLE_EQ(alpha.grad().item<double>(), -1.0 + 1.0 + 1.0);  // lo from -2, 1 from 3 and from 4
}

TEST_F(FakeQuantizeTest, CheckpointCarriesBitsAndAlpha) {
  FakeQuantize saved(FakeQuantizeOptions(QuantTarget::kWeight).bits(8).channels(3));
  saved->set_bits(5);
  {
    torch::NoGradGuard no_grad;
    saved->alpha.copy_(values({1.5, 2.5, 3.5}));
  }
  std::stringstream stream;
  torch::save(saved, stream);
  FakeQuantize loaded(FakeQuantizeOptions(QuantTarget::kWeight).channels(3));
  ASSERT_EQ(loaded->bits(), kFullPrecisionBits);
  torch::load(loaded, stream);
  EXPECT_EQ(loaded->bits(), 5);
  EXPECT_TRUE(torch::equal(loaded->alpha, values({1.5, 2.5, 3.5})));
  const auto w = torch::randn({3, 2, 3, 3});
  EXPECT_TRUE(torch::equal(loaded(w), saved(w)));
}

// bits() caches the buffer's value (no .item() per forward); every way the buffer can change must show.
TEST_F(FakeQuantizeTest, BitsFollowsEveryChangeOfTheBuffer) {
  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).bits(8));
  ASSERT_EQ(act->bits(), 8);
  act->named_buffers()["bits"].fill_(3);  // a direct in-place write, as Module::load or to() may do
  EXPECT_EQ(act->bits(), 3);
  {
    torch::NoGradGuard no_grad;
    act->named_buffers()["bits"].copy_(torch::tensor(5, torch::kInt64));
  }
  EXPECT_EQ(act->bits(), 5);
  act->named_buffers()["bits"].set_(torch::tensor(6, torch::kInt64));  // new storage
  EXPECT_EQ(act->bits(), 6);
  act->named_buffers()["bits"].set_data(torch::tensor(7, torch::kInt64));  // new storage, same version
  EXPECT_EQ(act->bits(), 7);
  act->set_bits(2);
  EXPECT_EQ(act->bits(), 2);
  EXPECT_EQ(std::get<0>(torch::_unique(act(torch::linspace(-1.0, 8.0, 901)))).numel(), 4);
}

TEST_F(FakeQuantizeTest, CloneIsIndependent) {
  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).bits(4));
  auto copy = std::dynamic_pointer_cast<FakeQuantizeImpl>(act->clone());
  ASSERT_TRUE(copy);
  copy->set_bits(2);
  EXPECT_EQ(act->bits(), 4);
  EXPECT_EQ(copy->bits(), 2);
}

TEST_F(FakeQuantizeTest, PrettyPrintShowsNonDefaultOptions) {
  EXPECT_EQ(c10::str(*FakeQuantize(FakeQuantizeOptions(QuantTarget::kActivation).bits(4))),
            "pdeq::quant::FakeQuantize(target=activation, bits=4)");
  EXPECT_EQ(c10::str(*FakeQuantize(FakeQuantizeOptions(QuantTarget::kWeight))),
            "pdeq::quant::FakeQuantize(target=weight)");
  EXPECT_EQ(
      c10::str(*FakeQuantize(
          FakeQuantizeOptions(QuantTarget::kWeight).bits(2).channels(16).standardize(false).init_alpha(1.5))),
      "pdeq::quant::FakeQuantize(target=weight, bits=2, init_alpha=1.5, channels=16, standardize=false)");
  EXPECT_EQ(c10::str(*FakeQuantize(FakeQuantizeOptions(QuantTarget::kActivation).is_signed(true))),
            "pdeq::quant::FakeQuantize(target=activation, is_signed=true)");
}

// ---- memory layouts and autocast
// ---------------------------------------------------------------------------

/// y, dL/dx and dL/da of Q(x) for the output gradient g.
struct QuantizeResult {
  torch::Tensor y, dx, dalpha;
};

QuantizeResult quantize_with_grads(const torch::Tensor& x, const torch::Tensor& alpha, const torch::Tensor& g,
                                   const FakeQuantizeFuncOptions& options) {
  const auto xg = x.detach().requires_grad_();
  const auto ag = alpha.detach().clone().requires_grad_();
  const auto y = F::fake_quantize(xg, ag, options);
  y.backward(g);
  return {y.detach(), xg.grad(), ag.grad()};
}

TEST_F(FakeQuantizeTest, ChannelsLastKeepsItsLayoutAndTheBitwiseValues) {
  // An activation (one scale) and a per-channel weight, each in NCHW and channels-last: y and dL/dx are
  // bitwise the same elementwise results, in the input's layout. dL/da sums in memory order, so across
  // layouts it agrees to rounding (here relative 1e-5), not bitwise.
  struct Case {
    torch::Tensor x, alpha;
    FakeQuantizeFuncOptions options;
  };
  const std::vector<Case> cases = {{torch::randn({8, 16, 9, 7}) * 3, scalar(2.5), unsigned_bits(4)},
                                   {torch::randn({16, 8, 3, 3}), torch::rand({16}) + 0.5, signed_bits(4)},
                                   {torch::randn({16, 8, 3, 3}), torch::rand({16}) + 0.5,
                                    FakeQuantizeFuncOptions().bits(2).midrise(true)}};
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const auto g = torch::randn(c.x.sizes());
    const auto nchw = quantize_with_grads(c.x, c.alpha, g, c.options);
    const auto cl = quantize_with_grads(c.x.contiguous(torch::MemoryFormat::ChannelsLast), c.alpha,
                                        g.contiguous(torch::MemoryFormat::ChannelsLast), c.options);
    EXPECT_TRUE(cl.y.is_contiguous(torch::MemoryFormat::ChannelsLast)) << "case " << i;
    EXPECT_TRUE(cl.dx.is_contiguous(torch::MemoryFormat::ChannelsLast)) << "case " << i;
    EXPECT_TRUE(nchw.y.is_contiguous()) << "case " << i;
    EXPECT_TRUE(torch::equal(nchw.y, cl.y)) << "case " << i;
    EXPECT_TRUE(torch::equal(nchw.dx, cl.dx)) << "case " << i;
    EXPECT_TRUE(torch::allclose(nchw.dalpha, cl.dalpha, /*rtol=*/1e-5, /*atol=*/1e-5)) << "case " << i;
    // An output gradient in the other layout than x is brought to x's.
    const auto mixed =
        quantize_with_grads(c.x.contiguous(torch::MemoryFormat::ChannelsLast), c.alpha, g, c.options);
    EXPECT_TRUE(torch::equal(nchw.dx, mixed.dx)) << "case " << i;
    EXPECT_TRUE(torch::equal(cl.dalpha, mixed.dalpha)) << "case " << i;
  }
  // A per-channel scale on a tensor whose dim 0 is not outermost in memory (a transposed view) is quantized
  // through a contiguous copy: the same values.
  const auto w = torch::randn({8, 16, 3, 3});
  const auto alpha = torch::rand({16}) + 0.5;
  const auto g = torch::randn({16, 8, 3, 3});
  const auto view = quantize_with_grads(w.transpose(0, 1), alpha, g, signed_bits(3));
  const auto copy = quantize_with_grads(w.transpose(0, 1).contiguous(), alpha, g, signed_bits(3));
  EXPECT_TRUE(torch::equal(view.y, copy.y));
  EXPECT_TRUE(torch::equal(view.dx, copy.dx));
  EXPECT_TRUE(torch::equal(view.dalpha, copy.dalpha));
}

/// CPU autocast to bfloat16 for the scope (as train::AutocastScope, which sits above this layer).
struct CpuAutocast {
  CpuAutocast() {
    at::autocast::set_cpu_enabled(true);
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  }
  ~CpuAutocast() {
    at::autocast::set_cpu_enabled(false);
    at::autocast::clear_cache();
  }
};

TEST_F(FakeQuantizeTest, AutocastQuantizesInFp32OnTheExactGrid) {
  // A bfloat16 activation (what a convolution gives under autocast) is quantized in fp32: the output is the
  // fp32 quantizer's of the same (exactly representable) values, bit for bit, and every value is a * k / n
  // as fp32 computes it. Gradients: dL/dx comes back in bfloat16 (x's dtype, bitwise the fp32 one rounded),
  // dL/da in fp32.
  const auto x16 = (torch::randn({4, 8, 6, 6}) * 3).to(torch::kBFloat16);
  const auto alpha = scalar(2.7);
  const auto g = torch::randn({4, 8, 6, 6});
  const auto expected = quantize_with_grads(x16.to(torch::kFloat), alpha, g, unsigned_bits(4));
  QuantizeResult got;
  {
    const CpuAutocast autocast;
    got = quantize_with_grads(x16, alpha, g, unsigned_bits(4));
  }
  EXPECT_EQ(got.y.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(got.y, expected.y));
  const float step = 2.7f / 15.0f;
  EXPECT_TRUE(torch::equal(got.y, torch::round(got.y / step) * step));
  EXPECT_EQ(got.dx.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(got.dx, expected.dx.to(torch::kBFloat16)));
  EXPECT_EQ(got.dalpha.scalar_type(), torch::kFloat);
  // The bfloat16-reading kernel vectorises its sum differently (its lane-wise partial sums): equal to
  // rounding.
  EXPECT_TRUE(torch::allclose(got.dalpha, expected.dalpha, /*rtol=*/1e-5, /*atol=*/1e-5));

  // The weight quantizer module (standardisation included) computes the same under autocast as without.
  FakeQuantize weight(FakeQuantizeOptions(QuantTarget::kWeight).bits(4));
  const auto w = torch::randn({16, 8, 3, 3});
  const auto plain = weight(w);
  torch::Tensor autocast_out;
  {
    const CpuAutocast autocast;
    autocast_out = weight(w);
    // Autocast itself still applies outside the quantizer.
    EXPECT_EQ(torch::conv2d(torch::randn({1, 8, 5, 5}), w).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(autocast_out.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(plain, autocast_out));
  // Outside autocast a bfloat16 input keeps its dtype (the tensor-op path, see TensorOpPathForOtherDtypes).
  EXPECT_EQ(F::fake_quantize(x16, alpha, unsigned_bits(4)).scalar_type(), torch::kBFloat16);
}

TEST_F(FakeQuantizeTest, ConvOperandUnderAutocastIsTheCastOfForwardBitForBit) {
  // forward_for_conv under bfloat16 autocast: `conv` is forward(x) cast to bfloat16 (what autocast would
  // hand the convolution), `exact` is forward(x), both in x's layout, and the gradients that come back
  // through both (bfloat16 from the convolution, fp32 from a residual sum) give the same dL/dx and dL/da as
  // the cast's would. Inputs fp32 (a batch-norm output) and bfloat16, NCHW and channels-last.
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    for (const auto format : {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
      for (const bool exact : {false, true}) {
        const std::string where = std::string(dtype == torch::kFloat ? "fp32" : "bf16") +
                                  (format == torch::MemoryFormat::ChannelsLast ? " channels-last" : " NCHW") +
                                  (exact ? " with exact" : "");
        FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).bits(4).init_alpha(2.7));
        const auto x0 = (torch::randn({4, 8, 6, 6}) * 2).to(dtype).contiguous(format);
        const auto g16 = torch::randn({4, 8, 6, 6}).to(torch::kBFloat16);
        const auto g = torch::randn({4, 8, 6, 6});
        const auto run = [&](bool fused) {
          act->zero_grad();
          const auto x = x0.clone().requires_grad_(true);
          torch::Tensor conv, exact_values;
          {
            const CpuAutocast autocast;
            if (fused) {
              const auto operand = act->forward_for_conv(x, exact);
              conv = operand.conv;
              exact_values = operand.exact;
            } else {
              exact_values = act(x);
              conv = exact_values.to(torch::kBFloat16);
            }
          }
          auto loss = (conv * g16).sum().to(torch::kFloat);
          if (exact) loss = loss + (exact_values * g).sum();
          loss.backward();
          return std::vector<torch::Tensor>{conv, exact ? exact_values : torch::Tensor(), x.grad(),
                                            act->alpha.grad().clone()};
        };
        const auto expected = run(false);
        const auto got = run(true);
        EXPECT_EQ(got[0].scalar_type(), torch::kBFloat16) << where;
        EXPECT_TRUE(got[0].is_contiguous(format)) << where;
        EXPECT_TRUE(torch::equal(got[0], expected[0])) << where;
        if (exact) {
          EXPECT_EQ(got[1].scalar_type(), torch::kFloat) << where;
          EXPECT_TRUE(torch::equal(got[1], expected[1])) << where;
        } else {
          EXPECT_FALSE(got[1].defined()) << where;
        }
        EXPECT_EQ(got[2].scalar_type(), dtype) << where;
        EXPECT_TRUE(torch::equal(got[2], expected[2])) << where;
        // dL/dalpha is a sum the two kernels vectorise in different orders: equal to rounding.
        EXPECT_TRUE(torch::allclose(got[3], expected[3], /*rtol=*/1e-5, /*atol=*/0)) << where;
      }
    }
  }
  // Outside autocast (and for weights) it is forward(x) itself.
  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).bits(4));
  const auto x = torch::randn({2, 3, 4, 4});
  const auto operand = act->forward_for_conv(x, /*exact=*/true);
  EXPECT_EQ(operand.conv.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(operand.conv, act(x)));
  EXPECT_TRUE(torch::equal(operand.exact, act(x)));
}

// ---- errors
// -------------------------------------------------------------------------------------------------

TEST_F(FakeQuantizeTest, RejectsInvalidOptions) {
  PDEQ_ASSERT_THROWS_WITH(FakeQuantize(FakeQuantizeOptions(QuantTarget::kActivation).bits(0)),
                          "bits must be at least 1, but got 0");
  PDEQ_ASSERT_THROWS_WITH(FakeQuantize(FakeQuantizeOptions(QuantTarget::kWeight).bits(1)),
                          "bits of a signed quantizer must be at least 2, but got 1");
  PDEQ_ASSERT_THROWS_WITH(FakeQuantize(FakeQuantizeOptions(QuantTarget::kWeight).init_alpha(-1.0)),
                          "init_alpha must be positive, but got -1");
  PDEQ_ASSERT_THROWS_WITH(FakeQuantize(FakeQuantizeOptions(QuantTarget::kWeight).channels(-2)),
                          "channels must be non-negative, but got -2");
  FakeQuantize weight(FakeQuantizeOptions(QuantTarget::kWeight).bits(4));
  PDEQ_ASSERT_THROWS_WITH(weight->set_bits(1), "bits of a signed quantizer must be at least 2, but got 1");
  EXPECT_EQ(weight->bits(), 4);
}

TEST_F(FakeQuantizeTest, RejectsMismatchedShapes) {
  const auto x = torch::randn({4, 3});
  PDEQ_ASSERT_THROWS_WITH(
      F::fake_quantize(x, torch::ones({3}), unsigned_bits(4)),
      "alpha must have one element or one per slice along dim 0 of x (4), but got shape [3]");
  PDEQ_ASSERT_THROWS_WITH(F::fake_quantize(x, torch::ones({1}), unsigned_bits(-1)),
                          "bits must be at least 1, but got -1");
  PDEQ_ASSERT_THROWS_WITH(F::fake_quantize(x.to(torch::kInt32), torch::ones({1}), unsigned_bits(4)),
                          "x must be a floating-point tensor, but got Int");
  FakeQuantize weight(FakeQuantizeOptions(QuantTarget::kWeight).bits(4).channels(8));
  PDEQ_ASSERT_THROWS_WITH(
      weight(x), "x.size(0) must equal channels (8) of a per-channel quantizer, but got shape [4, 3]");
}

}  // namespace
}  // namespace pdeq::quant
