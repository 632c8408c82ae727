#include <pdeq/analysis/params.h>
#include <pdeq/models/mobilenetv2.h>
#include <pdeq/models/registry.h>
#include <pdeq/models/resnet.h>

#include "model_support.h"
#include "test_support.h"

#include <sstream>
#include <string>
#include <vector>

namespace {

using pdeq::analysis::count_params;
using pdeq::models::make_model;
using pdeq::models::ModelOptions;

struct BottleneckResNetTest : pdeq::test::SeedingFixture {};

using pdeq::test::classes;

TEST_F(BottleneckResNetTest, ParameterCountsMatchTorchvision) {
  // torchvision.models.resnet50/101/152(num_classes=1000): sum(p.numel() for p in m.parameters()).
  EXPECT_EQ(count_params(*make_model("resnet50", classes(1000))).model(), 25557032);
  EXPECT_EQ(count_params(*make_model("resnet101", classes(1000))).model(), 44549160);
  EXPECT_EQ(count_params(*make_model("resnet152", classes(1000))).model(), 60192808);
}

TEST_F(BottleneckResNetTest, ForwardShapesAndQuantizers) {
  ModelOptions options = classes(7);
  options.weight_quant.bits(4);
  options.act_quant.bits(4);
  auto net = make_model("resnet50", options);
  pdeq::models::ActivationTrace trace;
  const auto logits = net->forward_traced(torch::randn({2, 3, 64, 64}), &trace);
  EXPECT_EQ(logits.sizes(), torch::IntArrayRef({2, 7}));
  ASSERT_EQ(trace.names.size(), 17u);  // stem + 16 blocks
  EXPECT_EQ(trace.activations[0].sizes(), torch::IntArrayRef({2, 64, 16, 16}));
  EXPECT_EQ(trace.activations.back().sizes(), torch::IntArrayRef({2, 2048, 2, 2}));
  // Three activation quantizers per block, four quantized convolutions in a projecting block.
  const auto& block =
      *std::dynamic_pointer_cast<pdeq::models::ResNetImpl>(net)->layers[1]->ptr<pdeq::models::BottleneckImpl>(
          0);
  EXPECT_TRUE(block.has_projection());
  EXPECT_EQ(block.conv2->options.stride(), 2);
  EXPECT_EQ(block.conv2->weight_quant->bits(), 4);
  EXPECT_EQ(block.act_mid2->bits(), 4);
  std::ostringstream line;
  block.pretty_print(line);
  EXPECT_EQ(line.str(), "pdeq::models::Bottleneck(256, 512, stride=2)");
}

/// The keys under `prefix` of a model's parameters and buffers, in registration order.
std::vector<std::string> keys_under(const torch::nn::Module& net, const std::string& prefix) {
  std::vector<std::string> keys;
  for (const auto& p : net.named_parameters()) {
    if (p.key().rfind(prefix, 0) == 0) keys.push_back(p.key());
  }
  for (const auto& b : net.named_buffers()) {
    if (b.key().rfind(prefix, 0) == 0) keys.push_back(b.key());
  }
  return keys;
}

TEST_F(BottleneckResNetTest, CheckpointKeysOfBothBlockKindsAreFixed) {
  // Saved runs load by these names: the shared shortcut registers its layers on the block itself.
  auto resnet50 = make_model("resnet50", classes(10));
  const std::vector<std::string> bottleneck = {"layer2.0.act_in.alpha",
                                               "layer2.0.conv1.weight",
                                               "layer2.0.conv1.weight_quant.alpha",
                                               "layer2.0.bn1.weight",
                                               "layer2.0.bn1.bias",
                                               "layer2.0.act_mid1.alpha",
                                               "layer2.0.conv2.weight",
                                               "layer2.0.conv2.weight_quant.alpha",
                                               "layer2.0.bn2.weight",
                                               "layer2.0.bn2.bias",
                                               "layer2.0.act_mid2.alpha",
                                               "layer2.0.conv3.weight",
                                               "layer2.0.conv3.weight_quant.alpha",
                                               "layer2.0.bn3.weight",
                                               "layer2.0.bn3.bias",
                                               "layer2.0.shortcut_conv.weight",
                                               "layer2.0.shortcut_conv.weight_quant.alpha",
                                               "layer2.0.shortcut_bn.weight",
                                               "layer2.0.shortcut_bn.bias",
                                               "layer2.0.act_in.bits",
                                               "layer2.0.conv1.weight_quant.bits",
                                               "layer2.0.bn1.running_mean",
                                               "layer2.0.bn1.running_var",
                                               "layer2.0.bn1.num_batches_tracked",
                                               "layer2.0.act_mid1.bits",
                                               "layer2.0.conv2.weight_quant.bits",
                                               "layer2.0.bn2.running_mean",
                                               "layer2.0.bn2.running_var",
                                               "layer2.0.bn2.num_batches_tracked",
                                               "layer2.0.act_mid2.bits",
                                               "layer2.0.conv3.weight_quant.bits",
                                               "layer2.0.bn3.running_mean",
                                               "layer2.0.bn3.running_var",
                                               "layer2.0.bn3.num_batches_tracked",
                                               "layer2.0.shortcut_conv.weight_quant.bits",
                                               "layer2.0.shortcut_bn.running_mean",
                                               "layer2.0.shortcut_bn.running_var",
                                               "layer2.0.shortcut_bn.num_batches_tracked"};
  EXPECT_EQ(keys_under(*resnet50, "layer2.0."), bottleneck);
  EXPECT_EQ(keys_under(*resnet50, "conv1."), std::vector<std::string>{"conv1.weight"});
  EXPECT_EQ(keys_under(*resnet50, "fc."), std::vector<std::string>({"fc.weight", "fc.bias"}));

  auto resnet20 = make_model("resnet20", classes(10));
  const std::vector<std::string> basic = {"layer2.0.act_in.alpha",
                                          "layer2.0.conv1.weight",
                                          "layer2.0.conv1.weight_quant.alpha",
                                          "layer2.0.bn1.weight",
                                          "layer2.0.bn1.bias",
                                          "layer2.0.act_mid.alpha",
                                          "layer2.0.conv2.weight",
                                          "layer2.0.conv2.weight_quant.alpha",
                                          "layer2.0.bn2.weight",
                                          "layer2.0.bn2.bias",
                                          "layer2.0.shortcut_conv.weight",
                                          "layer2.0.shortcut_conv.weight_quant.alpha",
                                          "layer2.0.shortcut_bn.weight",
                                          "layer2.0.shortcut_bn.bias",
                                          "layer2.0.act_in.bits",
                                          "layer2.0.conv1.weight_quant.bits",
                                          "layer2.0.bn1.running_mean",
                                          "layer2.0.bn1.running_var",
                                          "layer2.0.bn1.num_batches_tracked",
                                          "layer2.0.act_mid.bits",
                                          "layer2.0.conv2.weight_quant.bits",
                                          "layer2.0.bn2.running_mean",
                                          "layer2.0.bn2.running_var",
                                          "layer2.0.bn2.num_batches_tracked",
                                          "layer2.0.shortcut_conv.weight_quant.bits",
                                          "layer2.0.shortcut_bn.running_mean",
                                          "layer2.0.shortcut_bn.running_var",
                                          "layer2.0.shortcut_bn.num_batches_tracked"};
  EXPECT_EQ(keys_under(*resnet20, "layer2.0."), basic);
}

int64_t count_tv(const torch::nn::Module& net) {
  int64_t count = 0;
  for (const auto& module : net.modules(/*include_self=*/false)) {
    if (module->as<pdeq::nn::TVSmoothImpl>() != nullptr) ++count;
  }
  return count;
}

TEST_F(BottleneckResNetTest, TVIsPlacedBeforeTheActivationQuantizers) {
  ModelOptions options = classes(10);
  options.tv = pdeq::models::TVOptions{};
  EXPECT_EQ(count_tv(*make_model("resnet20", options)), 9 * 2);
  EXPECT_EQ(count_tv(*make_model("resnet50", options)), 16 * 3);
  options.tv->block_inner = false;
  EXPECT_EQ(count_tv(*make_model("resnet20", options)), 9);
  options.tv->block_inner = true;
  options.tv->block_input = false;
  EXPECT_EQ(count_tv(*make_model("resnet50", options)), 16 * 2);
  EXPECT_EQ(count_tv(*make_model("resnet20", classes(10))), 0);
  // MobileNetV2: after both inner ReLUs of its 17 inverted residuals (inner), on their inputs (input).
  EXPECT_EQ(count_tv(*make_model("mobilenetv2", options)), 17 * 2);
  options.tv->block_inner = false;
  options.tv->block_input = true;
  EXPECT_EQ(count_tv(*make_model("mobilenetv2", options)), 17);
  {
    // The input placement acts: smoothing the block inputs changes the logits of the same weights.
    torch::manual_seed(3);
    auto smoothed = make_model("mobilenetv2", options);
    torch::manual_seed(3);
    auto plain = make_model("mobilenetv2", classes(10));
    smoothed->eval();
    plain->eval();
    const auto x = torch::randn({2, 3, 32, 32});
    pdeq::models::ActivationTrace with_tv, without_tv;
    EXPECT_EQ(smoothed->forward_traced(x, &with_tv).sizes(), (std::vector<int64_t>{2, 10}));
    plain->forward_traced(x, &without_tv);
    ASSERT_EQ(with_tv.activations.size(), without_tv.activations.size());
    EXPECT_FALSE(torch::allclose(with_tv.activations.back(), without_tv.activations.back()));
  }
  options.tv->block_inner = true;
  EXPECT_EQ(count_tv(*make_model("mobilenetv2", options)), 17 * 3);
  // Stable MobileNetV2: 7 ordinary first blocks with three, 10 symmetric blocks with two.
  options.stable = true;
  EXPECT_EQ(count_tv(*make_model("mobilenetv2", options)), 7 * 3 + 10 * 2);
  // StableNet: every symmetric block smooths its input and its inner activation.
  auto stablenet = make_model("stablenet20", options);
  int64_t symmetric = 0;
  for (const auto& module : stablenet->modules(/*include_self=*/false)) {
    if (auto* block = module->as<pdeq::models::SymmetricBlockImpl>()) {
      ++symmetric;
      EXPECT_FALSE(block->tv_in.is_empty());
      EXPECT_FALSE(block->tv_mid.is_empty());
    }
  }
  EXPECT_GT(symmetric, 0);
  options.stable = false;

  // Each TV layer sees a ReLU output (non-negative) and its result is what the quantizer reads.
  options.act_quant.bits(4);
  auto net = make_model("resnet20", options);
  auto& block =
      *std::dynamic_pointer_cast<pdeq::models::ResNetImpl>(net)->layers[1]->ptr<pdeq::models::BasicBlockImpl>(
          0);
  EXPECT_EQ(block.tv_in->options.channels(), 16);
  EXPECT_EQ(block.tv_mid->options.channels(), 32);
  torch::Tensor tv_in, tv_out, q_in;
  block.tv_mid->observer = [&](const torch::Tensor& x, const torch::Tensor& y) {
    tv_in = x.clone();
    tv_out = y.clone();
  };
  block.act_mid->observer = [&](const torch::Tensor& x, const torch::Tensor&) { q_in = x.clone(); };
  net->eval();
  torch::NoGradGuard no_grad;
  net->forward(torch::randn({2, 3, 16, 16}));
  ASSERT_TRUE(tv_in.defined() && q_in.defined());
  EXPECT_GE(tv_in.min().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(q_in, tv_out));
  EXPECT_FALSE(torch::equal(tv_out, tv_in));
}

TEST_F(BottleneckResNetTest, ZeroGammaTVLeavesTheModelUnchanged) {
  ModelOptions plain = classes(10);
  plain.act_quant.bits(4);
  plain.weight_quant.bits(4);
  ModelOptions with_tv = plain;
  with_tv.tv = pdeq::models::TVOptions{};
  with_tv.tv->smooth.gamma_init(0.0);
  torch::manual_seed(1);
  auto a = make_model("resnet20", plain);
  torch::manual_seed(1);
  auto b = make_model("resnet20", with_tv);
  a->eval();
  b->eval();
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({2, 3, 16, 16});
  EXPECT_TRUE(torch::equal(a->forward(x), b->forward(x)));
}

}  // namespace
