#include <pdeq/deploy/fold.h>

#include "test_support.h"

#include <torch/torch.h>

namespace {

using namespace pdeq;

struct FoldTest : test::SeedingFixture {};

nn::QConv2d quantized_conv(int64_t bits, int64_t channels = 0) {
  return nn::QConv2d(nn::QConv2dOptions(4, 6, 3).padding(1).weight_quant(
      quant::FakeQuantizeOptions(quant::QuantTarget::kWeight).bits(bits).channels(channels)));
}

TEST_F(FoldTest, WeightCodesReproduceTheQuantizedWeight) {
  for (const int64_t channels : {0, 6}) {
    auto conv = quantized_conv(4, channels);
    {
      torch::NoGradGuard no_grad;
      conv->weight_quant->alpha.uniform_(1.0, 2.5);
    }
    const auto w = deploy::weight_codes(*conv, "conv");
    EXPECT_EQ(w.bits, 4);
    EXPECT_EQ(w.per_channel, channels > 0);
    EXPECT_EQ(w.codes.scalar_type(), torch::kInt8);
    EXPECT_LE(w.codes.abs().max().item<int>(), 7);  // 4 bits signed: codes in [-7, 7]
    const auto rebuilt = w.codes.to(torch::kDouble) * w.scale.view({6, 1, 1, 1});
    EXPECT_TRUE(torch::allclose(rebuilt.to(torch::kFloat), conv->quantized_weight().detach(), 0, 1e-6));
  }
}

TEST_F(FoldTest, BatchNormFoldedEqualsUnfolded) {
  auto conv = quantized_conv(4);
  torch::nn::BatchNorm2d bn(6);
  {
    torch::NoGradGuard no_grad;
    bn->running_mean.uniform_(-1, 1);
    bn->running_var.uniform_(0.5, 2);
    bn->weight.copy_(torch::tensor({1.5, -0.7, 0.0, 0.3, -2.0, 1.0}));  // negative and zero gammas too
    bn->bias.uniform_(-1, 1);
  }
  bn->eval();
  const auto x = torch::rand({2, 4, 5, 5});
  for (const double factor : {1.0, -0.5}) {
    const auto w = deploy::weight_codes(*conv, "conv");
    const auto folded = deploy::fold_conv(w, deploy::batch_norm_affine(*bn), factor);
    EXPECT_TRUE((folded.weight_scale > 0).all().item<bool>());
    const auto expected = bn(conv(x)).detach() * factor;
    const auto weight =
        (folded.codes.to(torch::kDouble) * folded.weight_scale.view({6, 1, 1, 1})).to(torch::kFloat);
    const auto actual = torch::conv2d(x, weight, folded.bias, 1, 1);
    EXPECT_TRUE(torch::allclose(actual, expected, 1e-5, 1e-5)) << (actual - expected).abs().max();
  }
}

TEST_F(FoldTest, RefusesWhatEightBitKernelsCannotRun) {
  auto wide = quantized_conv(16);
  PDEQ_ASSERT_THROWS_WITH(deploy::weight_codes(*wide, "layer1.0.conv1"),
                          "layer1.0.conv1: 16-bit weights cannot run on the 8-bit integer kernels");
  auto full = quantized_conv(32);
  PDEQ_ASSERT_THROWS_WITH(deploy::weight_codes(*full, "stem"),
                          "stem: full-precision weights cannot be exported");
  quant::FakeQuantize act(quant::FakeQuantizeOptions().bits(12));
  PDEQ_ASSERT_THROWS_WITH(deploy::activation_grid(*act, "layer2.act_in"),
                          "layer2.act_in: 12-bit activations");
  quant::FakeQuantize midrise(quant::FakeQuantizeOptions().bits(4).is_signed(true).midrise(true));
  PDEQ_ASSERT_THROWS_WITH(deploy::activation_grid(*midrise, "a"), "a: mid-rise activation quantizers");
}

TEST_F(FoldTest, ActivationGridIsAlphaOverLevels) {
  quant::FakeQuantize act(quant::FakeQuantizeOptions().bits(4).init_alpha(3.0));
  const auto grid = deploy::activation_grid(*act, "a");
  EXPECT_EQ(grid.qmax, 15);
  EXPECT_DOUBLE_EQ(grid.scale, 0.2);
  quant::FakeQuantize eight(quant::FakeQuantizeOptions().bits(8).init_alpha(2.55));
  EXPECT_EQ(deploy::activation_grid(*eight, "a").qmax, 255);
  EXPECT_NEAR(deploy::activation_grid(*eight, "a").scale, 0.01, 1e-8);  // alpha is float32
}

TEST_F(FoldTest, SignedActivationGridHasItsZeroAtCodeN) {
  // 4 bits signed: levels m alpha/7, m in [-7, 7], as codes 0..14 with zero point 7.
  quant::FakeQuantize act(quant::FakeQuantizeOptions().bits(4).is_signed(true).init_alpha(1.4));
  const auto grid = deploy::activation_grid(*act, "a");
  EXPECT_EQ(grid.zero_point, 7);
  EXPECT_EQ(grid.qmax, 14);
  EXPECT_NEAR(grid.scale, 0.2, 1e-7);
  EXPECT_NEAR(grid.lowest(), -1.4, 1e-6);
  EXPECT_NEAR(grid.highest(), 1.4, 1e-6);
}

}  // namespace
