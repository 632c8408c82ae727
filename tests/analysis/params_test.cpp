#include <pdeq/analysis/params.h>
#include <pdeq/models/registry.h>
#include <pdeq/models/resnet.h>
#include <pdeq/nn/qconv.h>
#include <pdeq/quant/quantizer_set.h>

#include "model_support.h"
#include "test_support.h"

namespace {

using pdeq::analysis::count_params;
using pdeq::models::make_model;
using pdeq::models::ModelOptions;

struct ParamsTest : pdeq::test::SeedingFixture {};

using pdeq::test::classes;

// The reference implementation's counts (float model, no quantizers), as its own model code gives them.
TEST_F(ParamsTest, ThinResNetsMatchTheReference) {
  EXPECT_EQ(count_params(*make_model("resnet20", classes(10))).model(), 272474);
  EXPECT_EQ(count_params(*make_model("resnet56", classes(10))).model(), 855770);
  EXPECT_EQ(count_params(*make_model("resnet20", classes(100))).model(), 278324);
  EXPECT_EQ(count_params(*make_model("resnet56", classes(100))).model(), 861620);
}

TEST_F(ParamsTest, WideResNetsMatchTheReference) {
  EXPECT_EQ(count_params(*make_model("resnet18", classes(10))).model(), 11173962);
  EXPECT_EQ(count_params(*make_model("resnet34", classes(10))).model(), 21282122);
}

// Thin ResNet-(6n+2) by hand: stem 3*16*9 + BN 32; per stage c with n blocks, 2n convs c*c*9 (the first one
// c/2*c*9 after the first stage) and 2n BNs of 2c; projections 16*32 + 64 and 32*64 + 128; fc 64*10 + 10.
int64_t thin_resnet_params(int64_t n) {
  int64_t total = 3 * 16 * 9 + 2 * 16;
  const int64_t widths[] = {16, 32, 64};
  for (int64_t s = 0; s < 3; ++s) {
    const int64_t c = widths[s];
    const int64_t in = s == 0 ? c : c / 2;
    total += in * c * 9 + (2 * n - 1) * c * c * 9 + 2 * n * 2 * c;
  }
  total += (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64);
  return total + 64 * 10 + 10;
}

TEST_F(ParamsTest, EveryThinDepthMatchesTheFormula) {
  ASSERT_EQ(thin_resnet_params(3), 272474);  // the formula agrees with the reference where it is known
  ASSERT_EQ(thin_resnet_params(9), 855770);
  EXPECT_EQ(count_params(*make_model("resnet32", classes(10))).model(), thin_resnet_params(5));
  EXPECT_EQ(count_params(*make_model("resnet44", classes(10))).model(), thin_resnet_params(7));
  EXPECT_EQ(count_params(*make_model("resnet110", classes(10))).model(), thin_resnet_params(18));
}

ModelOptions with(int64_t num_classes, bool stable) {
  ModelOptions options = classes(num_classes);
  options.stable = stable;
  return options;
}

// The reference implementation's counts for every family, plain and symmetric, 10 and 100 classes (issue 5).
TEST_F(ParamsTest, EveryFamilyPlainAndStableMatchesTheReference) {
  struct Row {
    const char* model;
    int64_t plain10, stable10, plain100, stable100;
  };
  const Row table[] = {
      {"resnet20", 272474, 175706, 278324, 181556},
      {"resnet56", 855770, 468698, 861620, 474548},
      {"stablenet20", 223450, 112858, 229300, 118708},
      {"stablenet20x2", 515098, 259354, 520948, 265204},
      {"stablenet56", 806746, 405850, 812596, 411700},
      {"stablenet56x2", 1681690, 845338, 1687540, 851188},
      {"resnet34", 21282122, 13098314, 21328292, 13144484},
      {"stablenet34", 18009930, 9015114, 18056100, 9061284},
      {"mobilenetv2", 2236074, 1719306, 2351364, 1834596},
  };
  for (const auto& row : table) {
    SCOPED_TRACE(row.model);
    EXPECT_EQ(count_params(*make_model(row.model, with(10, false))).model(), row.plain10);
    EXPECT_EQ(count_params(*make_model(row.model, with(10, true))).model(), row.stable10);
    EXPECT_EQ(count_params(*make_model(row.model, with(100, false))).model(), row.plain100);
    EXPECT_EQ(count_params(*make_model(row.model, with(100, true))).model(), row.stable100);
  }
}

TEST_F(ParamsTest, PerTensorQuantizersAddOneAlphaEach) {
  // Per block: 2 activation + 2 weight quantizers; plus one weight quantizer per projection.
  auto r20 = make_model("resnet20", classes(10));
  const auto c20 = count_params(*r20);
  EXPECT_EQ(c20.quantizer, 9 * 4 + 2);
  EXPECT_EQ(c20.total, 272474 + 38);
  EXPECT_EQ(static_cast<int64_t>(pdeq::quant::QuantizerSet(*r20).size()), c20.quantizer);
  EXPECT_EQ(count_params(*make_model("resnet56", classes(10))).quantizer, 27 * 4 + 2);
  EXPECT_EQ(count_params(*make_model("resnet18", classes(10))).quantizer, 8 * 4 + 3);
}

TEST_F(ParamsTest, PerChannelWeightQuantizersAddOneAlphaPerOutputChannel) {
  auto options = classes(10);
  options.weight_quant.channels(-1);  // per channel, sized by each conv
  const auto count = count_params(*make_model("resnet20", options));
  // Weight alphas: 2 convs per block times its width (3 blocks each of 16, 32, 64) + projections 32 and 64;
  // activation alphas stay one per quantizer (18).
  const int64_t weights = 2 * 3 * (16 + 32 + 64) + 32 + 64;
  EXPECT_EQ(count.quantizer, weights + 18);
  EXPECT_EQ(count.model(), 272474);
}

TEST_F(ParamsTest, CountsAModuleThatIsItselfAQuantizer) {
  pdeq::quant::FakeQuantize quantizer(
      pdeq::quant::FakeQuantizeOptions(pdeq::quant::QuantTarget::kWeight).channels(5));
  const auto count = count_params(*quantizer);
  EXPECT_EQ(count.total, 5);
  EXPECT_EQ(count.quantizer, 5);
  EXPECT_EQ(count.model(), 0);
  const auto conv = count_params(*pdeq::nn::QConv2d(3, 4, 3));
  EXPECT_EQ(conv.total, 4 * 3 * 9 + 1);
  EXPECT_EQ(conv.quantizer, 1);
}

}  // namespace
