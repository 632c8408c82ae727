// DeepLabV3: parameter counts against torchvision, output shapes, the dilated backbone, quantizer and TV
// sites.
#include <pdeq/analysis/params.h>
#include <pdeq/models/basic_block.h>
#include <pdeq/models/bottleneck.h>
#include <pdeq/models/deeplab.h>
#include <pdeq/models/registry.h>

#include "model_support.h"
#include "test_support.h"

namespace pdeq::test {
namespace {

using analysis::count_params;
using models::make_segmentation_model;

struct DeepLabTest : SeedingFixture {};

// torchvision 0.14: sum(p.numel() for p in deeplabv3_resnet50(weights=None, weights_backbone=None,
// num_classes=21, aux_loss=False).parameters()) = 39,638,869; each class adds the 256 weights and the bias
// of the final 1x1 convolution.
TEST_F(DeepLabTest, ResNet50ParametersMatchTorchvision) {
  EXPECT_EQ(count_params(*make_segmentation_model("deeplabv3_resnet50", classes(21))).model(), 39638869);
  EXPECT_EQ(count_params(*make_segmentation_model("deeplabv3_resnet50", classes(22))).model(),
            39638869 + 257);
  EXPECT_EQ(count_params(*make_segmentation_model("deeplabv3_resnet50", classes(11))).model(),
            39638869 - 10 * 257);
}

// By hand: ResNet-18 without fc 11,689,512 - 513,000 = 11,176,512; ASPP (A = 128, input 512): 1x1 and
// pooling 2 * (512*128 + 256), atrous 3 * (512*128*9 + 256); projection 640*128 + 256; head 128*128*9 + 256;
// classifier 128*C + C.
TEST_F(DeepLabTest, ResNet18ParametersByHand) {
  const int64_t c = 11;
  const int64_t expected = 11176512 + 2 * (512 * 128 + 256) + 3 * (512 * 128 * 9 + 256) + (640 * 128 + 256) +
                           (128 * 128 * 9 + 256) + (128 * c + c);
  EXPECT_EQ(count_params(*make_segmentation_model("deeplabv3_resnet18", classes(c))).model(), expected);
}

TEST_F(DeepLabTest, LogitsPerPixelAtTheInputSize) {
  auto net = make_segmentation_model("deeplabv3_resnet18", w4a4(3, 5));
  net->train();
  const auto x = torch::randn({2, 3, 40, 56});
  const auto y = net->forward(x);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 5, 40, 56}));
  y.sum().backward();
  // Every quantized convolution and the float classifier get gradients.
  for (const auto& p : net->named_parameters()) {
    if (p.key().find("alpha") != std::string::npos) continue;
    ASSERT_TRUE(p.value().grad().defined()) << p.key();
  }
  models::ActivationTrace trace;
  net->eval();
  torch::NoGradGuard no_grad;
  net->forward_traced(x, &trace);
  ASSERT_GE(trace.names.size(), 3u);
  EXPECT_EQ(trace.names.front(), "stem");
  EXPECT_EQ(trace.names[trace.names.size() - 2], "aspp");
  EXPECT_EQ(trace.names.back(), "head");
}

// Output stride 16 (ResNet-18 twin): stage 4 keeps stage 3's resolution with dilation 2 after its first block
// (torchvision's replace_stride_with_dilation); at 8 (ResNet-50) stages 3 and 4 use 2 and 4.
TEST_F(DeepLabTest, BackboneTradesStridesForDilation) {
  auto net18 = std::dynamic_pointer_cast<models::DeepLabV3Impl>(
      make_segmentation_model("deeplabv3_resnet18", classes(3)));
  ASSERT_TRUE(net18);
  const auto block = [](const std::shared_ptr<models::ResNetImpl>& b, size_t stage, size_t i) {
    return (*b->layers[stage])[i];
  };
  EXPECT_EQ(block(net18->backbone, 2, 0)->as<models::BasicBlockImpl>()->options.stride(), 2);
  EXPECT_EQ(block(net18->backbone, 3, 0)->as<models::BasicBlockImpl>()->options.stride(), 1);
  EXPECT_EQ(block(net18->backbone, 3, 0)->as<models::BasicBlockImpl>()->options.dilation(), 1);
  EXPECT_EQ(block(net18->backbone, 3, 1)->as<models::BasicBlockImpl>()->options.dilation(), 2);
  torch::NoGradGuard no_grad;
  net18->eval();
  EXPECT_EQ(net18->backbone->forward_features(torch::zeros({1, 3, 64, 64})).sizes(),
            (std::vector<int64_t>{1, 512, 4, 4}));

  auto net50 = std::dynamic_pointer_cast<models::DeepLabV3Impl>(
      make_segmentation_model("deeplabv3_resnet50", classes(3)));
  ASSERT_TRUE(net50);
  const auto bottleneck = [&](size_t stage, size_t i) {
    return block(net50->backbone, stage, i)->as<models::BottleneckImpl>();
  };
  EXPECT_EQ(bottleneck(2, 0)->conv2->options.dilation(), 1);
  EXPECT_EQ(bottleneck(2, 1)->conv2->options.dilation(), 2);
  EXPECT_EQ(bottleneck(3, 0)->conv2->options.dilation(), 2);
  EXPECT_EQ(bottleneck(3, 2)->conv2->options.dilation(), 4);
  EXPECT_EQ(bottleneck(3, 2)->conv2->options.padding(), 4);
  EXPECT_EQ(net50->aspp_convs[1]->options.dilation(), 12);
  EXPECT_EQ(net50->aspp_convs[3]->options.dilation(), 36);
  EXPECT_EQ(net50->backbone->forward_features(torch::zeros({1, 3, 64, 64})).sizes(),
            (std::vector<int64_t>{1, 2048, 8, 8}));
}

// W4A4: the ASPP and head convolutions quantize their weights and read quantized activations; the stem and
// the final classifier stay float. With model.tv, TV layers sit on the backbone output, the concatenated ASPP
// branches and the head's input.
TEST_F(DeepLabTest, QuantizerAndTVSites) {
  auto options = w4a4(3, 4);
  options.tv = models::TVOptions{};
  auto net = std::dynamic_pointer_cast<models::DeepLabV3Impl>(
      make_segmentation_model("deeplabv3_resnet18", options));
  ASSERT_TRUE(net);
  EXPECT_EQ(net->project->weight_quant->bits(), 4);
  EXPECT_EQ(net->act_head->bits(), 4);
  EXPECT_EQ(net->act_in->bits(), 4);
  ASSERT_TRUE(net->tv_in);
  ASSERT_TRUE(net->tv_project);
  ASSERT_TRUE(net->tv_head);
  EXPECT_EQ(net->tv_project->options.channels(), 5 * 128);
  int64_t tv_layers = 0;
  for (const auto& m : net->modules(false)) tv_layers += m->as<nn::TVSmoothImpl>() != nullptr ? 1 : 0;
  // ResNet-18: 8 blocks x (input + inner) = 16, and the head's 3.
  EXPECT_EQ(tv_layers, 16 + 3);
  EXPECT_EQ(one_line(*net),
            "pdeq::models::DeepLabV3(backbone=resnet18, num_classes=4, output_stride=16, rates=[6, 12, 18], "
            "aspp_channels=128, tv=true)");
  EXPECT_THROW(models::make_model("deeplabv3_resnet18", options), std::invalid_argument);
  EXPECT_THROW(make_segmentation_model("resnet20", options), std::invalid_argument);
}

}  // namespace
}  // namespace pdeq::test
