#include <pdeq/nn/qconv.h>

#include "test_support.h"

#include <sstream>

namespace {

using pdeq::nn::QConv2d;
using pdeq::nn::QConv2dOptions;
using pdeq::quant::FakeQuantizeOptions;
using pdeq::quant::QuantTarget;

struct QConvTest : pdeq::test::SeedingFixture {};

using pdeq::test::one_line;

TEST_F(QConvTest, FullPrecisionIsExactlyTorchConv2d) {
  QConv2d conv(QConv2dOptions(4, 6, 3).stride(2).padding(1));
  const auto x = torch::randn({2, 4, 9, 9});
  const auto y = conv(x);
  const auto expected = torch::conv2d(x, conv->weight, {}, {2, 2}, {1, 1});
  EXPECT_EQ(y.sizes(), torch::IntArrayRef({2, 6, 5, 5}));
  EXPECT_TRUE(torch::equal(y, expected));
  // The quantizer is skipped: the convolution sees the parameter itself.
  EXPECT_TRUE(conv->quantized_weight().is_same(conv->weight));
}

TEST_F(QConvTest, FourBitsConvolvesTheQuantizedWeight) {
  QConv2d conv(
      QConv2dOptions(4, 6, 3).padding(1).weight_quant(FakeQuantizeOptions(QuantTarget::kWeight).bits(4)));
  const auto x = torch::randn({2, 4, 7, 7});
  const auto w_q = conv->weight_quant(conv->weight);
  EXPECT_TRUE(torch::equal(conv->quantized_weight(), w_q));
  EXPECT_TRUE(torch::equal(conv(x), torch::conv2d(x, w_q, {}, {1, 1}, {1, 1})));
  // Signed 4 bits: at most 2^4 - 1 = 15 levels, and really different from the float convolution.
  EXPECT_LE(std::get<0>(at::_unique(w_q)).numel(), 15);
  EXPECT_GT((conv(x) - torch::conv2d(x, conv->weight, {}, {1, 1}, {1, 1})).abs().max().item<float>(), 1e-3);
}

TEST_F(QConvTest, SetBitsSwitchesBetweenQuantizedAndFloat) {
  QConv2d conv(QConv2dOptions(3, 5, 3));
  const auto x = torch::randn({1, 3, 6, 6});
  const auto y_float = conv(x);
  conv->weight_quant->set_bits(3);
  EXPECT_FALSE(torch::allclose(conv(x), y_float, /*rtol=*/1e-3, /*atol=*/1e-3));
  conv->weight_quant->set_bits(32);
  EXPECT_TRUE(torch::equal(conv(x), y_float));
}

TEST_F(QConvTest, GradientReachesWeightAndAlpha) {
  QConv2d conv(QConv2dOptions(3, 5, 3).weight_quant(FakeQuantizeOptions(QuantTarget::kWeight).bits(4)));
  conv(torch::randn({2, 3, 6, 6})).pow(2).sum().backward();
  ASSERT_TRUE(conv->weight.grad().defined());
  ASSERT_TRUE(conv->weight_quant->alpha.grad().defined());
  EXPECT_GT(conv->weight.grad().abs().sum().item<float>(), 0.0f);
}

TEST_F(QConvTest, ShapesBiasAndGroups) {
  QConv2d conv(QConv2dOptions(4, 8, 1).groups(2).bias(true));
  EXPECT_EQ(conv->weight.sizes(), torch::IntArrayRef({8, 2, 1, 1}));
  ASSERT_TRUE(conv->bias.defined());
  const auto x = torch::randn({1, 4, 5, 5});
  const std::vector<int64_t> one{1, 1};
  const std::vector<int64_t> zero{0, 0};
  EXPECT_TRUE(
      torch::allclose(conv(x), torch::conv2d(x, conv->weight, conv->bias, one, zero, one, 2), 1e-6, 1e-6));
  QConv2d no_bias(4, 8, 3);
  EXPECT_FALSE(no_bias->bias.defined());
  EXPECT_EQ(no_bias->parameters().size(), 2u);  // weight and alpha, no undefined bias
}

TEST_F(QConvTest, PerChannelAlphaHasOneScalePerOutputChannel) {
  QConv2d conv(QConv2dOptions(3, 7, 3).weight_quant(FakeQuantizeOptions(QuantTarget::kWeight).channels(7)));
  EXPECT_EQ(conv->weight_quant->alpha.numel(), 7);
  PDEQ_ASSERT_THROWS_WITH(
      QConv2d(QConv2dOptions(3, 7, 3).weight_quant(FakeQuantizeOptions(QuantTarget::kWeight).channels(5))),
      "weight_quant channels must be 0 (per tensor), -1 or out_channels (7) (per channel), but got 5");
  QConv2d sized(QConv2dOptions(3, 6, 3).weight_quant(FakeQuantizeOptions(QuantTarget::kWeight).channels(-1)));
  EXPECT_EQ(sized->weight_quant->alpha.sizes(), torch::IntArrayRef({6}));
}

TEST_F(QConvTest, KaimingNormalFanOutInit) {
  QConv2d conv(QConv2dOptions(64, 128, 3));
  // std = sqrt(2 / fan_out), fan_out = 128 * 3 * 3.
  const double expected = std::sqrt(2.0 / (128 * 9));
  EXPECT_NEAR(conv->weight.std().item<double>(), expected, 0.02 * expected);
  EXPECT_NEAR(conv->weight.mean().item<double>(), 0.0, 0.02 * expected);
}

TEST_F(QConvTest, PrettyPrintShowsNonDefaultOptionsOnly) {
  QConv2d conv(
      QConv2dOptions(16, 32, 3).stride(2).weight_quant(FakeQuantizeOptions(QuantTarget::kWeight).bits(4)));
  EXPECT_EQ(one_line(*conv), "pdeq::nn::QConv2d(16, 32, kernel_size=3, stride=2, weight_bits=4)");
  EXPECT_EQ(one_line(*QConv2d(16, 32, 1)), "pdeq::nn::QConv2d(16, 32, kernel_size=1)");
  EXPECT_EQ(one_line(*QConv2d(QConv2dOptions(4, 4, 3).padding(1).groups(2).bias(true))),
            "pdeq::nn::QConv2d(4, 4, kernel_size=3, padding=1, groups=2, bias=true)");
  // The printed width follows set_bits, and the module tree shows the quantizer as a child.
  conv->weight_quant->set_bits(2);
  const std::string tree = c10::str(conv);
  EXPECT_EQ(tree.rfind("pdeq::nn::QConv2d(16, 32, kernel_size=3, stride=2, weight_bits=2)", 0), 0u) << tree;
  EXPECT_NE(tree.find("(weight_quant)"), std::string::npos) << tree;
}

TEST_F(QConvTest, InvalidOptionsAreRejected) {
  PDEQ_ASSERT_THROWS_WITH(QConv2d(0, 4, 3), "in_channels must be positive, but got 0");
  PDEQ_ASSERT_THROWS_WITH(QConv2d(QConv2dOptions(4, 4, 3).stride(0)), "stride must be positive, but got 0");
  PDEQ_ASSERT_THROWS_WITH(QConv2d(QConv2dOptions(3, 4, 3).groups(2)),
                          "in_channels must be divisible by groups (2), but got 3");
  PDEQ_ASSERT_THROWS_WITH(
      QConv2d(QConv2dOptions(4, 4, 3).weight_quant(FakeQuantizeOptions(QuantTarget::kActivation))),
      "weight_quant target must be kWeight");
}

}  // namespace
