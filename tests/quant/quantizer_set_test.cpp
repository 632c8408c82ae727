// Tests of QuantizerSet on a small module tree.
#include <pdeq/quant/quantizer_set.h>

#include <torch/torch.h>

#include "test_support.h"

namespace pdeq::quant {
namespace {

struct QuantizerSetTest : pdeq::test::SeedingFixture {};

/// conv weight quantizer (per channel) + activation quantizer, like a quantized block.
struct BlockImpl : torch::nn::Module {
  BlockImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 4, 3)));
    weight_quant = register_module(
        "weight_quant", FakeQuantize(FakeQuantizeOptions(QuantTarget::kWeight).bits(8).channels(4)));
    act_quant =
        register_module("act_quant", FakeQuantize(FakeQuantizeOptions(QuantTarget::kActivation).bits(8)));
  }
  torch::nn::Conv2d conv{nullptr};
  FakeQuantize weight_quant{nullptr};
  FakeQuantize act_quant{nullptr};
};
TORCH_MODULE(Block);

struct NetImpl : torch::nn::Module {
  NetImpl() {
    input_quant = register_module("input_quant", FakeQuantize(FakeQuantizeOptions(QuantTarget::kActivation)));
    blocks = register_module("blocks", torch::nn::ModuleList(Block(), Block()));
    head = register_module("head", torch::nn::Linear(4, 2));
  }
  FakeQuantize input_quant{nullptr};
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Net);

std::vector<std::string> names(const std::vector<std::pair<std::string, FakeQuantize>>& entries) {
  std::vector<std::string> out;
  for (const auto& entry : entries) {
    out.push_back(entry.first);
  }
  return out;
}

TEST_F(QuantizerSetTest, CollectsEveryQuantizerByQualifiedName) {
  Net net;
  QuantizerSet set(*net);
  EXPECT_EQ(set.size(), 5u);
  EXPECT_EQ(names(set.all()),
            (std::vector<std::string>{"input_quant", "blocks.0.weight_quant", "blocks.0.act_quant",
                                      "blocks.1.weight_quant", "blocks.1.act_quant"}));
  EXPECT_EQ(names(set.weights()),
            (std::vector<std::string>{"blocks.0.weight_quant", "blocks.1.weight_quant"}));
  EXPECT_EQ(names(set.activations()),
            (std::vector<std::string>{"input_quant", "blocks.0.act_quant", "blocks.1.act_quant"}));
  // The holders share the model's own modules.
  EXPECT_EQ(set.all()[1].second.get(), net->blocks[0]->as<BlockImpl>()->weight_quant.get());
}

TEST_F(QuantizerSetTest, SetsBitsPerKind) {
  Net net;
  QuantizerSet set(*net);
  set.set_weight_bits(3);
  set.set_activation_bits(5);
  for (const auto& [name, quantizer] : set.weights()) {
    EXPECT_EQ(quantizer->bits(), 3) << name;
  }
  for (const auto& [name, quantizer] : set.activations()) {
    EXPECT_EQ(quantizer->bits(), 5) << name;
  }
  EXPECT_EQ(net->blocks[1]->as<BlockImpl>()->weight_quant->bits(), 3);
  EXPECT_EQ(net->input_quant->bits(), 5);
  // The bit widths travel in the model's state.
  EXPECT_EQ(net->named_buffers()["blocks.1.act_quant.bits"].item<int64_t>(), 5);
  PDEQ_ASSERT_THROWS_WITH(set.set_weight_bits(1), "bits of a signed quantizer must be at least 2, but got 1");
}

TEST_F(QuantizerSetTest, ScalesAndScaleParameters) {
  Net net;
  {
    torch::NoGradGuard no_grad;
    net->blocks[0]->as<BlockImpl>()->weight_quant->alpha.copy_(torch::tensor({1.0, 2.0, 3.0, 6.0}));
  }
  QuantizerSet set(*net);
  const auto scales = set.scales();
  ASSERT_EQ(scales.size(), 5u);
  EXPECT_EQ(scales[0].first, "input_quant");
  EXPECT_DOUBLE_EQ(scales[0].second, 6.0);
  EXPECT_DOUBLE_EQ(scales[1].second, 3.0);  // mean over channels
  EXPECT_DOUBLE_EQ(scales[3].second, 3.0);
  const auto params = set.scale_parameters();
  ASSERT_EQ(params.size(), 5u);
  EXPECT_TRUE(params[0].is_same(net->input_quant->alpha));
  EXPECT_TRUE(params[3].is_same(net->blocks[1]->as<BlockImpl>()->weight_quant->alpha));
}

TEST_F(QuantizerSetTest, EmptyForAModelWithoutQuantizers) {
  torch::nn::Linear linear(3, 2);
  QuantizerSet set(*linear);
  EXPECT_EQ(set.size(), 0u);
  set.set_weight_bits(4);  // a no-op, not an error
  EXPECT_TRUE(set.scales().empty());
}

}  // namespace
}  // namespace pdeq::quant
