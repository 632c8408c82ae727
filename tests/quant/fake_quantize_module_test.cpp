// The FakeQuantize module: options, bits, standardisation, scales, checkpoints, printing, errors.
#include "fake_quantize_support.h"

#include <sstream>

namespace pdeq::quant {
namespace {

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

TEST_F(FakeQuantizeTest, AbsorbsReluOnlyWhenAskedToAndItClipsAtZeroAndNothingObserves) {
  // By default an activation quantizer is the reference's: its input gradient at exactly 0 passes ([0, a]).
  FakeQuantize plain(FakeQuantizeOptions(QuantTarget::kActivation).bits(4).init_alpha(2.0));
  EXPECT_FALSE(plain->absorbs_relu());
  const auto at_zero = torch::zeros({1}, torch::requires_grad());
  plain(at_zero).backward(torch::ones({1}));
  EXPECT_EQ(at_zero.grad().item<float>(), 1.0f);

  FakeQuantize act(FakeQuantizeOptions(QuantTarget::kActivation).bits(4).init_alpha(2.0).absorb_relu(true));
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
    // dL/dx: 0 and 5.5e-5 are inside [0, a].
    EXPECT_TRUE(torch::equal(xg.grad(), values({0.0, 1.0, 1.0, 0.0, 0.0}))) << "alpha " << bad;
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
