#include <pdeq/models/registry.h>
#include <pdeq/models/resnet.h>
#include <pdeq/quant/quantizer_set.h>
#include <pdeq/train/compute_mode.h>

#include "model_support.h"
#include "test_support.h"

#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct RegistryTest : pdeq::test::SeedingFixture {};

TEST_F(RegistryTest, NamesInNaturalOrder) {
  const std::vector<std::string> expected = {"resnet18",    "resnet20",    "resnet32",      "resnet34",
                                             "resnet44",    "resnet50",    "resnet56",      "resnet101",
                                             "resnet110",   "resnet152",   "stablenet20",   "stablenet20x2",
                                             "stablenet34", "stablenet56", "stablenet56x2", "mobilenetv2"};
  EXPECT_EQ(pdeq::models::model_names(), expected);
}

TEST_F(RegistryTest, UnknownNameListsTheKnownOnes) {
  PDEQ_ASSERT_THROWS_WITH(
      pdeq::models::make_model("resnet21", {}),
      "unknown model 'resnet21'; known models: resnet18, resnet20, resnet32, resnet34, "
      "resnet44, resnet50, resnet56, resnet101, resnet110, resnet152, stablenet20, stablenet20x2, "
      "stablenet34, stablenet56, stablenet56x2, mobilenetv2");
  EXPECT_THROW(pdeq::models::make_model("", {}), std::invalid_argument);
}

TEST_F(RegistryTest, OneRegistryKnowsWhatEveryModelTakes) {
  using pdeq::models::ModelInput;
  const std::vector<std::string> graph = {"pde_gcn", "pde_gcn_nonsym", "gcn"};
  EXPECT_EQ(pdeq::models::model_names(ModelInput::kGraph), graph);
  EXPECT_EQ(pdeq::models::model_names(ModelInput::kImage), pdeq::models::model_names());
  for (const auto& name : pdeq::models::model_names()) {
    EXPECT_EQ(pdeq::models::model_input(name), ModelInput::kImage) << name;
  }
  for (const auto& name : graph) EXPECT_EQ(pdeq::models::model_input(name), ModelInput::kGraph) << name;
  PDEQ_ASSERT_THROWS_WITH(pdeq::models::model_input("gat"),
                          "unknown model 'gat'; known models: resnet18, resnet20, resnet32, resnet34, "
                          "resnet44, resnet50, resnet56, resnet101, resnet110, resnet152, stablenet20, "
                          "stablenet20x2, stablenet34, stablenet56, stablenet56x2, mobilenetv2, "
                          "deeplabv3_resnet18, deeplabv3_resnet50, pde_gcn, pde_gcn_nonsym, gcn");
  const std::vector<std::string> segmentation = {"deeplabv3_resnet18", "deeplabv3_resnet50"};
  EXPECT_EQ(pdeq::models::model_names(ModelInput::kSegmentation), segmentation);
  PDEQ_ASSERT_THROWS_WITH(
      pdeq::models::make_model("deeplabv3_resnet18", {}),
      "model 'deeplabv3_resnet18' is a segmentation model (per-pixel logits); known models:");
  // Each factory builds only its own input's models, and says which input a model of the other takes.
  PDEQ_ASSERT_THROWS_WITH(pdeq::models::make_model("gcn", {}),
                          "model 'gcn' takes graph input; known models: resnet18, resnet20");
  PDEQ_ASSERT_THROWS_WITH(
      pdeq::models::make_graph_model("resnet20", {}),
      "model 'resnet20' takes image input; known graph models: pde_gcn, pde_gcn_nonsym, gcn");
}

TEST_F(RegistryTest, EveryNameBuildsItsDepth) {
  // Blocks per name: thin ResNets (depth-2)/2, ResNet-18 8, ResNet-34 16.
  const std::vector<std::pair<std::string, int64_t>> blocks = {
      {"resnet18", 8},  {"resnet20", 9},  {"resnet32", 15}, {"resnet34", 16},
      {"resnet44", 21}, {"resnet56", 27}, {"resnet110", 54}};
  for (const auto& [name, expected] : blocks) {
    auto net = pdeq::models::make_model(name, {});
    int64_t count = 0;
    for (const auto& module : net->modules(/*include_self=*/false)) {
      if (module->as<pdeq::models::BasicBlockImpl>() != nullptr) ++count;
    }
    EXPECT_EQ(count, expected) << name;
  }
}

TEST_F(RegistryTest, OptionsReachTheModel) {
  pdeq::models::ModelOptions options;
  options.in_channels = 1;
  options.num_classes = 7;
  options.weight_quant.bits(3);
  options.act_quant.bits(5);
  auto net = pdeq::models::make_model("resnet20", options);
  EXPECT_EQ(net->forward(torch::randn({2, 1, 12, 12})).sizes(), torch::IntArrayRef({2, 7}));
  auto resnet = std::dynamic_pointer_cast<pdeq::models::ResNetImpl>(net);
  ASSERT_TRUE(resnet);
  const auto& block = *resnet->layers[0]->ptr<pdeq::models::BasicBlockImpl>(0);
  EXPECT_EQ(block.conv1->weight_quant->bits(), 3);
  EXPECT_EQ(block.act_in->bits(), 5);
  EXPECT_EQ(block.act_mid->bits(), 5);
}

// Blocks leave out the ReLU in front of an activation quantizer that absorbs it
// (FakeQuantizeImpl::absorbs_relu, models::relu_unless_absorbed, the ReLU at the end of a block before the
// next one in forward_stages), and under bfloat16 autocast their quantizers hand the convolutions bfloat16
// operands themselves (FakeQuantizeImpl::forward_for_conv); a no-op observer on every quantizer keeps every
// ReLU and every autocast cast, so the two passes compare the fused and the unfused network of every family,
// ordinary and symmetric, in fp32 (NCHW) and in bfloat16 (channels-last and NCHW).
TEST_F(RegistryTest, LeavingOutAbsorbedRelusAndCastsChangesNoOutputOrGradient) {
  struct Mode {
    bool bf16;
    torch::MemoryFormat format;
  };
  const Mode modes[] = {{false, torch::MemoryFormat::Contiguous},
                        {true, torch::MemoryFormat::ChannelsLast},
                        {true, torch::MemoryFormat::Contiguous}};
  for (const Mode& mode : modes) {
    for (const std::string name : {"resnet20", "stablenet20", "mobilenetv2", "resnet50"}) {
      for (const bool stable : {false, true}) {
        const std::string where =
            name + " stable " + std::to_string(stable) + (mode.bf16 ? " bf16" : " fp32") +
            (mode.format == torch::MemoryFormat::ChannelsLast ? " channels-last" : " NCHW");
        auto options = pdeq::test::w4a4();
        options.stable = stable;
        auto net = pdeq::models::make_model(name, options);
        net->train();
        pdeq::train::to_memory_format(*net, mode.format);
        const int64_t size =
            name == "resnet50" || name == "mobilenetv2" ? 32 : 16;  // >= 3x3 in the last stage
        const auto images = torch::randn({4, 3, size, size}).contiguous(mode.format);
        const auto labels = torch::tensor({0, 1, 2, 3}, torch::kLong);
        const auto pass = [&] {
          net->zero_grad();
          // Traced: the block outputs whose ReLU the next block's quantizer absorbs are recorded as ReLU(y).
          pdeq::models::ActivationTrace trace;
          torch::Tensor logits;
          {
            pdeq::train::AutocastScope autocast(pdeq::train::ComputeMode{mode.format, mode.bf16});
            logits = net->forward_traced(images, &trace);
          }
          torch::nn::functional::cross_entropy(logits, labels).backward();
          std::vector<torch::Tensor> out{logits.detach()};
          for (const auto& activation : trace.activations) out.push_back(activation.detach().clone());
          for (const auto& p : net->parameters()) out.push_back(p.grad().clone());
          return out;
        };
        // Batch norm's running statistics move with each training pass: both passes start from one state.
        std::stringstream state;
        torch::save(net, state);
        const auto fused = pass();
        pdeq::quant::QuantizerSet quantizers(*net);
        size_t absorbing = 0;
        for (auto& [quantizer_name, quantizer] : quantizers.activations()) {
          absorbing += quantizer->absorbs_relu() ? 1 : 0;
          quantizer->observer = [](const torch::Tensor&, const torch::Tensor&) {};
        }
        EXPECT_GT(absorbing, 0u) << where;
        torch::load(net, state);
        const auto unfused = pass();
        ASSERT_EQ(fused.size(), unfused.size());
        // dL/dalpha is summed by a kernel variant that reads the bfloat16 gradient (fused) or its float copy
        // (unfused): other vector widths, but summed in double, so the same float.
        for (size_t i = 0; i < fused.size(); ++i) {
          EXPECT_TRUE(torch::equal(fused[i], unfused[i])) << where << ", tensor " << i;
        }
      }
    }
  }
}

}  // namespace
