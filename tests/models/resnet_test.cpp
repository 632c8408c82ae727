#include <pdeq/analysis/params.h>
#include <pdeq/models/bottleneck.h>
#include <pdeq/models/resnet.h>
#include <pdeq/models/shortcut.h>
#include <pdeq/quant/quantizer_set.h>

#include "model_support.h"
#include "test_support.h"

#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

using pdeq::models::ActivationTrace;
using pdeq::models::BasicBlock;
using pdeq::models::BasicBlockImpl;
using pdeq::models::BlockOptions;
using pdeq::models::ModelOptions;
using pdeq::models::ResNetImpl;
using pdeq::models::ResNetOptions;
using pdeq::quant::FakeQuantizeOptions;
using pdeq::quant::QuantTarget;

using pdeq::test::w4a4;

struct ResNetTest : pdeq::test::SeedingFixture {};

BlockOptions w4a4_block(int64_t in, int64_t out, int64_t stride, double h) {
  return BlockOptions(in, out, stride)
      .step_size(h)
      .weight_quant(FakeQuantizeOptions(QuantTarget::kWeight).bits(4))
      .act_quant(FakeQuantizeOptions(QuantTarget::kActivation).bits(4));
}

using pdeq::test::one_line;

BasicBlockImpl& block_at(const ResNetImpl& net, size_t stage, size_t index) {
  return *net.layers.at(stage)->ptr<BasicBlockImpl>(index);
}

TEST_F(ResNetTest, OutputShapesForCifarAndFashionMnist) {
  auto cifar = pdeq::models::resnet20(w4a4(3, 10));
  EXPECT_EQ(cifar->forward(torch::randn({2, 3, 32, 32})).sizes(), torch::IntArrayRef({2, 10}));
  auto fashion = pdeq::models::resnet20(w4a4(1, 10));
  EXPECT_EQ(fashion->forward(torch::randn({2, 1, 28, 28})).sizes(), torch::IntArrayRef({2, 10}));
  auto hundred = pdeq::models::resnet32(w4a4(3, 100));
  EXPECT_EQ(hundred->forward(torch::randn({1, 3, 32, 32})).sizes(), torch::IntArrayRef({1, 100}));
  auto wide = pdeq::models::resnet18(ModelOptions{});
  EXPECT_EQ(wide->forward(torch::randn({1, 3, 32, 32})).sizes(), torch::IntArrayRef({1, 10}));
}

TEST_F(ResNetTest, ImageNetStemMatchesTorchvision) {
  // torchvision.models.resnet18/34(num_classes=1000): sum(p.numel() for p in m.parameters()).
  ModelOptions imagenet = pdeq::test::classes(1000);
  imagenet.stem = pdeq::models::Stem::kImageNet;
  EXPECT_EQ(pdeq::analysis::count_params(*pdeq::models::resnet18(imagenet)).model(), 11689512);
  EXPECT_EQ(pdeq::analysis::count_params(*pdeq::models::resnet34(imagenet)).model(), 21797672);
  // The CIFAR stem: a 3x3 conv instead of the 7x7 one, 64 * 3 * (49 - 9) fewer weights.
  EXPECT_EQ(pdeq::analysis::count_params(*pdeq::models::resnet18(pdeq::test::classes(1000))).model(),
            11689512 - 64 * 3 * 40);

  ModelOptions small = w4a4(3, 5);
  small.stem = pdeq::models::Stem::kImageNet;
  auto net = pdeq::models::resnet18(small);
  pdeq::models::ActivationTrace trace;
  EXPECT_EQ(net->forward_traced(torch::randn({2, 3, 64, 64}), &trace).sizes(), torch::IntArrayRef({2, 5}));
  // 64 -> 32 (7x7 stride 2) -> 16 (max-pool), then stages at 16, 8, 4, 2.
  EXPECT_EQ(trace.activations[0].sizes(), torch::IntArrayRef({2, 64, 16, 16}));
  EXPECT_EQ(trace.activations.back().sizes(), torch::IntArrayRef({2, 512, 2, 2}));
  EXPECT_EQ(pdeq::test::one_line(*net),
            "pdeq::models::ResNet(stages=[64x2, 128x2/2, 256x2/2, 512x2/2], num_classes=5, stem=imagenet)");
}

TEST_F(ResNetTest, WrongInputChannelsAreRejected) {
  auto net = pdeq::models::resnet20(w4a4(1, 10));
  PDEQ_ASSERT_THROWS_WITH(net->forward(torch::randn({1, 3, 28, 28})),
                          "input must be [N, 1, H, W], but got [1, 3, 28, 28]");
}

TEST_F(ResNetTest, TraceRecordsStemAndEveryBlock) {
  auto net = std::dynamic_pointer_cast<ResNetImpl>(pdeq::models::resnet20(w4a4()));
  ASSERT_TRUE(net);
  net->eval();
  ActivationTrace trace;
  const auto x = torch::randn({2, 3, 32, 32});
  const auto logits = net->forward_traced(x, &trace);
  const std::vector<std::string> names = {"stem",     "layer1.0", "layer1.1", "layer1.2", "layer2.0",
                                          "layer2.1", "layer2.2", "layer3.0", "layer3.1", "layer3.2"};
  EXPECT_EQ(trace.names, names);
  ASSERT_EQ(trace.activations.size(), names.size());
  const std::vector<std::vector<int64_t>> shapes = {
      {2, 16, 32, 32}, {2, 16, 32, 32}, {2, 16, 32, 32}, {2, 16, 32, 32}, {2, 32, 16, 16},
      {2, 32, 16, 16}, {2, 32, 16, 16}, {2, 64, 8, 8},   {2, 64, 8, 8},   {2, 64, 8, 8}};
  for (size_t i = 0; i < names.size(); ++i) {
    EXPECT_EQ(trace.activations[i].sizes(), torch::IntArrayRef(shapes[i])) << names[i];
    EXPECT_GE(trace.activations[i].min().item<float>(), 0.0f) << names[i] << " ends in a ReLU";
  }
  // The last recorded activation is what the pool and the classifier see; tracing changes nothing.
  EXPECT_TRUE(torch::allclose(net->fc(trace.activations.back().mean({2, 3})), logits, 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(net->forward(x), logits));
}

TEST_F(ResNetTest, TraceShapesFor28x28Inputs) {
  auto net = pdeq::models::resnet20(w4a4(1, 10));
  ActivationTrace trace;
  net->forward_traced(torch::randn({1, 1, 28, 28}), &trace);
  ASSERT_EQ(trace.activations.size(), 10u);
  EXPECT_EQ(trace.activations[0].sizes(), torch::IntArrayRef({1, 16, 28, 28}));
  EXPECT_EQ(trace.activations[4].sizes(), torch::IntArrayRef({1, 32, 14, 14}));
  EXPECT_EQ(trace.activations[9].sizes(), torch::IntArrayRef({1, 64, 7, 7}));
}

TEST_F(ResNetTest, ZeroStepSizeLeavesTheQuantizedInput) {
  // h = 0: y = ReLU(x_q - 0*branch) = ReLU(Q_a(x)) = Q_a(x), since the unsigned quantizer is already >= 0.
  BasicBlock block(w4a4_block(16, 16, 1, 0.0));
  const auto x = torch::randn({2, 16, 8, 8});
  const auto x_q = block->act_in(x);
  EXPECT_TRUE(torch::equal(block(x), torch::relu(x_q)));
  EXPECT_LE(std::get<0>(at::_unique(x_q)).numel(), 16);  // 2^4 levels
  EXPECT_FALSE(torch::equal(block(x), torch::relu(x)));  // it really was quantized
}

TEST_F(ResNetTest, BlocksHandOverTheirOutputBeforeTheFinalRelu) {
  for (const bool symmetric : {false, true}) {
    auto options = w4a4_block(8, 8, 1, 0.5);
    std::shared_ptr<pdeq::models::ReluOutputBlock> block;
    torch::nn::AnyModule module;
    if (symmetric) {
      pdeq::models::SymmetricBlock b(options);
      block = b.ptr();
      module = torch::nn::AnyModule(b);
    } else {
      BasicBlock b(options);
      block = b.ptr();
      module = torch::nn::AnyModule(b);
    }
    module.ptr()->eval();
    ASSERT_TRUE(block->defers_output_relu());
    ASSERT_NE(block->input_quantizer(), nullptr);
    EXPECT_TRUE(block->input_quantizer()->absorbs_relu());
    const auto x = torch::randn({2, 8, 8, 8});
    const auto y = block->forward_before_relu(x);
    EXPECT_TRUE(torch::equal(torch::relu(y), module.forward(x))) << "symmetric=" << symmetric;
    EXPECT_TRUE((y < 0).any().item<bool>()) << "y is taken before the ReLU";
  }
  // A concat-pool block's output is not the ReLU of one tensor; TV in front of the quantizer takes its place.
  BasicBlock concat(w4a4_block(8, 16, 2, 1.0).transition(pdeq::models::Transition::kConcatPool));
  EXPECT_FALSE(concat->defers_output_relu());
  EXPECT_THROW(concat->forward_before_relu(torch::randn({1, 8, 8, 8})), c10::Error);
  BasicBlock tv(w4a4_block(8, 8, 1, 1.0).tv(pdeq::models::TVOptions{}));
  EXPECT_EQ(tv->input_quantizer(), nullptr);
}

TEST_F(ResNetTest, StepSizeScalesTheBranch) {
  for (const bool projection : {false, true}) {
    BasicBlock block(projection ? w4a4_block(8, 16, 2, 0.5) : w4a4_block(8, 8, 1, 0.5));
    ASSERT_EQ(block->has_projection(), projection);
    block->eval();
    const auto x = torch::randn({2, 8, 8, 8});
    // Written out from the layers: y = ReLU(S(x_q) - h*BN2(K2 Q_a(ReLU(BN1(K1 x_q))))).
    const auto x_q = block->act_in(x);
    const auto branch = block->bn2(block->conv2(block->act_mid(torch::relu(block->bn1(block->conv1(x_q))))));
    const auto shortcut = projection ? block->shortcut.bn(block->shortcut.conv(x_q)) : x_q;
    const auto expected = torch::relu(shortcut - 0.5 * branch);
    EXPECT_TRUE(torch::allclose(block(x), expected, 1e-5, 1e-6)) << "projection=" << projection;
    EXPECT_FALSE(torch::allclose(block(x), torch::relu(shortcut - branch), 1e-3, 1e-3));
  }
}

TEST_F(ResNetTest, ModelStepSizeReachesEveryBlock) {
  auto options = w4a4();
  options.step_size = 0.25;
  auto net = std::dynamic_pointer_cast<ResNetImpl>(pdeq::models::resnet20(options));
  ASSERT_TRUE(net);
  int64_t blocks = 0;
  for (const auto& module : net->modules(/*include_self=*/false)) {
    if (const auto* block = module->as<BasicBlockImpl>()) {
      EXPECT_EQ(block->options.step_size(), 0.25);
      ++blocks;
    }
  }
  EXPECT_EQ(blocks, 9);
}

TEST_F(ResNetTest, ProjectionOnlyWhereTheShapeChanges) {
  auto net = std::dynamic_pointer_cast<ResNetImpl>(pdeq::models::resnet20(w4a4()));
  ASSERT_TRUE(net);
  ASSERT_EQ(net->layers.size(), 3u);
  for (size_t stage = 0; stage < 3; ++stage) {
    ASSERT_EQ(net->layers[stage]->size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
      const auto& block = block_at(*net, stage, i);
      EXPECT_EQ(block.has_projection(), stage > 0 && i == 0) << "layer" << stage + 1 << "." << i;
      EXPECT_EQ(block.conv1->options.stride(), stage > 0 && i == 0 ? 2 : 1);
    }
  }
  const auto& down = block_at(*net, 1, 0);
  EXPECT_EQ(down.shortcut.conv->options.kernel_size(), 1);
  EXPECT_EQ(down.shortcut.conv->weight_quant->bits(), 4);  // the projection is quantized too
}

TEST_F(ResNetTest, StagesAreBuiltByTheInjectedBlockFactory) {
  std::vector<std::tuple<int64_t, int64_t, int64_t>> built;
  ResNetOptions options({{16, 2, 1}, {32, 2, 2}}, w4a4());
  const pdeq::models::BlockFactory factory = [&built](const BlockOptions& block) {
    built.emplace_back(block.in_channels(), block.out_channels(), block.stride());
    return pdeq::models::basic_block(block);
  };
  options.first_block(factory).block(factory);
  ResNetImpl net(options);
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> expected = {
      {16, 16, 1}, {16, 16, 1}, {16, 32, 2}, {32, 32, 1}};
  EXPECT_EQ(built, expected);
  EXPECT_EQ(net.forward(torch::randn({1, 3, 16, 16})).sizes(), torch::IntArrayRef({1, 10}));
}

TEST_F(ResNetTest, ExpansionWidensTheStagesOfInjectedBottlenecks) {
  ResNetOptions options({{8, 2, 1}, {16, 1, 2}}, w4a4());
  options.first_block(pdeq::models::bottleneck_block)
      .block(pdeq::models::bottleneck_block)
      .expansion(pdeq::models::kBottleneckExpansion);
  ResNetImpl net(options);
  // Stem 8 channels; stage 1 widens to 8 * 4 = 32, stage 2 to 64 at stride 2; the classifier reads 64.
  const auto& first = *net.layers[0]->ptr<pdeq::models::BottleneckImpl>(0);
  EXPECT_EQ(first.options.in_channels(), 8);
  EXPECT_EQ(first.options.out_channels(), 32);
  EXPECT_TRUE(first.has_projection());
  EXPECT_FALSE(net.layers[0]->ptr<pdeq::models::BottleneckImpl>(1)->has_projection());
  EXPECT_EQ(net.layers[1]->ptr<pdeq::models::BottleneckImpl>(0)->shortcut.conv->options.stride(), 2);
  EXPECT_EQ(net.fc->options.in_features(), 64);
  EXPECT_EQ(net.forward(torch::randn({2, 3, 16, 16})).sizes(), torch::IntArrayRef({2, 10}));
  EXPECT_EQ(one_line(net), "pdeq::models::ResNet(stages=[8x2, 16x1/2], num_classes=10, expansion=4)");
}

TEST_F(ResNetTest, ProjectionShortcutRegistersOnItsBlockOnlyWhereTheShapeChanges) {
  torch::nn::Module block;
  const auto per_channel = FakeQuantizeOptions(QuantTarget::kWeight).bits(4).channels(-1);
  pdeq::models::ProjectionShortcut identity(block, 8, 8, 1, per_channel);
  EXPECT_FALSE(identity.is_projection());
  EXPECT_TRUE(block.named_children().is_empty());
  const auto x = torch::randn({1, 8, 4, 4});
  EXPECT_TRUE(identity(x).is_same(x));

  pdeq::models::ProjectionShortcut projection(block, 8, 16, 2, per_channel);
  ASSERT_TRUE(projection.is_projection());
  // The names checkpoints hold, directly on the block.
  EXPECT_EQ(block.named_children().keys(), std::vector<std::string>({"shortcut_conv", "shortcut_bn"}));
  EXPECT_EQ(projection.conv->options.kernel_size(), 1);
  EXPECT_EQ(projection.conv->weight_quant->options.channels(), 16);  // per channel: its own count
  block.eval();
  const auto y = projection(x);
  EXPECT_EQ(y.sizes(), torch::IntArrayRef({1, 16, 2, 2}));
  EXPECT_TRUE(torch::equal(y, projection.bn(projection.conv(x))));
}

TEST_F(ResNetTest, InitialisationFollowsTheReference) {
  auto net = std::dynamic_pointer_cast<ResNetImpl>(pdeq::models::resnet20(ModelOptions{}));
  ASSERT_TRUE(net);
  EXPECT_FALSE(net->conv1->options.bias());
  for (const auto& module : net->modules(/*include_self=*/false)) {
    if (const auto* bn = module->as<torch::nn::BatchNorm2d>()) {
      EXPECT_TRUE(torch::equal(bn->weight, torch::ones_like(bn->weight)));
      EXPECT_TRUE(torch::equal(bn->bias, torch::zeros_like(bn->bias)));
    }
  }
  // Kaiming normal, fan_out: std sqrt(2 / (64 * 9)) for the last stage's 3x3 convs.
  const auto& w = block_at(*net, 2, 1).conv2->weight;
  const double expected = std::sqrt(2.0 / (64 * 9));
  EXPECT_NEAR(w.std().item<double>(), expected, 0.05 * expected);
}

TEST_F(ResNetTest, AllQuantizersTakePartInTraining) {
  auto net = pdeq::models::resnet20(w4a4());
  net->train();
  auto loss = torch::nn::functional::cross_entropy(net->forward(torch::randn({4, 3, 16, 16})),
                                                   torch::tensor({0, 1, 2, 3}, torch::kLong));
  loss.backward();
  for (const auto& parameter : net->named_parameters()) {
    ASSERT_TRUE(parameter.value().grad().defined()) << parameter.key();
  }
  pdeq::quant::QuantizerSet quantizers(*net);
  EXPECT_EQ(quantizers.size(), 38u);
  for (const auto& [name, quantizer] : quantizers.all()) {
    EXPECT_NE(quantizer->alpha.grad().abs().sum().item<float>(), 0.0f) << name;
  }
}

TEST_F(ResNetTest, SaveLoadRoundTripGivesIdenticalOutputs) {
  auto source = pdeq::models::resnet20(w4a4());
  source->train();
  for (int i = 0; i < 2; ++i) source->forward(torch::randn({4, 3, 16, 16}));  // move the BN statistics
  std::stringstream buffer;
  {
    torch::serialize::OutputArchive archive;
    source->save(archive);
    archive.save_to(buffer);
  }
  torch::manual_seed(1);
  auto target = pdeq::models::resnet20(ModelOptions{});  // other weights, 32 bits
  {
    torch::serialize::InputArchive archive;
    archive.load_from(buffer);
    target->load(archive);
  }
  pdeq::quant::QuantizerSet quantizers(*target);
  for (const auto& [name, quantizer] : quantizers.all()) EXPECT_EQ(quantizer->bits(), 4) << name;
  source->eval();
  target->eval();
  const auto x = torch::randn({3, 3, 16, 16});
  EXPECT_TRUE(torch::equal(source->forward(x), target->forward(x)));
}

TEST_F(ResNetTest, BatchedOutputEqualsPerSampleOutputInEval) {
  // Double precision: in float, batched and single convolutions may differ by rounding noise, which a 4-bit
  // activation quantizer can turn into a whole level.
  auto net = pdeq::models::resnet20(w4a4());
  net->to(torch::kFloat64);
  net->eval();
  const auto x = torch::randn({3, 3, 16, 16}, torch::kFloat64);
  const auto batched = net->forward(x);
  for (int64_t i = 0; i < 3; ++i) {
    const auto single = net->forward(x.slice(0, i, i + 1));
    EXPECT_TRUE(torch::allclose(single, batched.slice(0, i, i + 1), 1e-9, 1e-10)) << "sample " << i;
  }
}

TEST_F(ResNetTest, PrettyPrint) {
  auto net = std::dynamic_pointer_cast<ResNetImpl>(pdeq::models::resnet20(w4a4(1, 10)));
  ASSERT_TRUE(net);
  EXPECT_EQ(one_line(*net),
            "pdeq::models::ResNet(stages=[16x3, 32x3/2, 64x3/2], num_classes=10, in_channels=1)");
  EXPECT_EQ(one_line(block_at(*net, 1, 0)), "pdeq::models::BasicBlock(16, 32, stride=2)");
  EXPECT_EQ(one_line(*BasicBlock(w4a4_block(8, 8, 1, 0.5))), "pdeq::models::BasicBlock(8, 8, step_size=0.5)");
}

TEST_F(ResNetTest, InvalidOptionsAreRejected) {
  auto options = w4a4();
  options.num_classes = 0;
  PDEQ_ASSERT_THROWS_WITH(pdeq::models::resnet20(options), "num_classes must be positive, but got 0");
  PDEQ_ASSERT_THROWS_WITH(ResNetImpl(ResNetOptions({})), "stages must not be empty");
  PDEQ_ASSERT_THROWS_WITH(ResNetImpl(ResNetOptions({{16, 0, 1}})),
                          "stage channels, blocks and stride must be positive, but got {16, 0, 1}");
  PDEQ_ASSERT_THROWS_WITH(BasicBlock(BlockOptions(8, 8).act_quant(FakeQuantizeOptions().channels(8))),
                          "act_quant channels must be 0");
}

}  // namespace
