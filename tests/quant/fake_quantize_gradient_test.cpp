// Fake quantizer gradients (straight-through, clipping scale) and the fused kernel against tensor ops.
#include "fake_quantize_support.h"

namespace pdeq::quant {
namespace {

TEST_F(FakeQuantizeTest, StraightThroughGradientWithClipMask) {
  const auto x = values({-1.0, 0.0, 0.5, 2.9, 3.0, 3.5}).requires_grad_();
  const auto alpha = scalar(3.0).requires_grad_();
  const auto g = values({1.0, 2.0, 3.0, 4.0, 5.0, 6.0});
  F::fake_quantize(x, alpha, unsigned_bits(4)).backward(g);
  // Inside [0, a] dx = g, as the reference's clip mask; outside 0.
  EXPECT_TRUE(torch::equal(x.grad(), values({0.0, 2.0, 3.0, 4.0, 5.0, 0.0}))) << x.grad();
  // With the open lower end (0, a], as relu'(0) = 0, for quantizers that stand in for a ReLU.
  const auto x_open = x.detach().clone().requires_grad_();
  F::fake_quantize(x_open, alpha, unsigned_bits(4).open_lower_end(true)).backward(g);
  EXPECT_TRUE(torch::equal(x_open.grad(), values({0.0, 0.0, 3.0, 4.0, 5.0, 0.0}))) << x_open.grad();
  // The tensor-op path (bfloat16) and the full-precision clip keep the same ends.
  for (const bool open : {false, true}) {
    const auto xb = x.detach().to(torch::kBFloat16).requires_grad_();
    F::fake_quantize(xb, alpha.detach(), unsigned_bits(4).open_lower_end(open))
        .backward(g.to(torch::kBFloat16));
    EXPECT_EQ(xb.grad()[1].item<float>(), open ? 0.0f : 2.0f) << "bf16, open " << open;
    const auto xc = x.detach().clone().requires_grad_();
    F::clip_to_scale(xc, alpha.detach(), /*is_signed=*/false, open).backward(g);
    EXPECT_EQ(xc.grad()[1].item<float>(), open ? 0.0f : 2.0f) << "clip, open " << open;
  }

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

}  // namespace
}  // namespace pdeq::quant
