#include <pdeq/deploy/compare.h>
#include <pdeq/deploy/export.h>
#include <pdeq/deploy/int_format.h>
#include <pdeq/deploy/int_model.h>
#include <pdeq/deploy/onednn_conv.h>
#include <pdeq/deploy/onnx_export.h>
#include <pdeq/models/registry.h>

#include "deploy_support.h"
#include "test_support.h"

#include <algorithm>
#include <map>

namespace {

using namespace pdeq;

struct ExportTest : test::SeedingFixture {};

/// Trains a small network (test::small_resnet, test::small_stablenet, test::small_mobilenetv2) briefly,
/// exports it and compares both on 512 held-out images, in each residual mode. Exact mode runs every residual
/// add fused on oneDNN's int8 kernels where the build has oneDNN; `int8_residuals` = false: no add of the net
/// is fed by an int8 convolution (symmetric MobileNetV2s: their branches end in a float convolution), so
/// exact mode reports "fp32".
std::map<deploy::ResidualMode, nlohmann::json> trained_agreement(
    const std::shared_ptr<models::ClassifierImpl>& net, bool int8_residuals = true) {
  test::train_briefly(*net, 100);
  std::vector<torch::Tensor> calibration;
  for (int i = 0; i < 4; ++i) calibration.push_back(test::quadrant_batch(64).first);
  const auto graph = deploy::export_classifier(*net, calibration);
  std::map<deploy::ResidualMode, nlohmann::json> reports;
  for (const auto mode :
       {deploy::ResidualMode::kExact, deploy::ResidualMode::kExactFloat, deploy::ResidualMode::kInt8}) {
    const deploy::IntegerModel model(graph, mode);
    const std::string expected_kernel =
        mode == deploy::ResidualMode::kInt8 ? "int8"
        : mode == deploy::ResidualMode::kExact && deploy::onednn_int8_available() && int8_residuals
            ? "onednn-int32"
            : "fp32";
    EXPECT_EQ(model.residual_kernel(), expected_kernel) << deploy::to_string(mode);
    deploy::ModelComparison comparison(*net);
    torch::manual_seed(7);  // the same held-out images for both modes
    for (int i = 0; i < 4; ++i) {
      const auto [images, labels] = test::quadrant_batch(128);
      comparison.add_batch(model, images, labels);
    }
    reports[mode] = comparison.report(model.graph());
  }
  return reports;
}

void expect_agreement(const nlohmann::json& report) {
  SCOPED_TRACE(report.dump());
  EXPECT_EQ(report["samples"], 512);
  EXPECT_GT(report["fake_quant_accuracy"].get<double>(), 0.6);  // it learned (chance: 0.25)
  EXPECT_GE(report["agreement"].get<double>(), 0.97);
  EXPECT_LE(std::abs(report["accuracy_difference"].get<double>()), 0.02);
  // The first quantizer and the first convolution are exact up to float ties: same codes.
  const auto& layers = report["layers"];
  ASSERT_GE(layers.size(), 2u);
  EXPECT_EQ(layers[0]["name"], "layer1.0.act_in");
  EXPECT_LE(layers[0]["max_step_difference"].get<double>(), 1.0 + 1e-5);
  EXPECT_LT(layers[0]["mismatched_fraction"].get<double>(), 1e-3);
  EXPECT_EQ(layers[1]["name"].get<std::string>().rfind("layer1.0.act_mid", 0), 0u);  // bottlenecks: act_mid1
  EXPECT_LT(layers[1]["mismatched_fraction"].get<double>(), 1e-3);
}

/// Exact residuals: every layer, the adds included, has the fake-quant codes up to float ties (a code flipped
/// at a tie can move later codes by more than one step, but only a few of them).
void expect_exact_agreement(const nlohmann::json& report, size_t quantizers = 8) {
  SCOPED_TRACE(report.dump());
  expect_agreement(report);
  EXPECT_GE(report["agreement"].get<double>(), 0.995);
  const auto& layers = report["layers"];
  EXPECT_EQ(layers.size(), quantizers);  // act_in and act_mid of the four blocks (bottlenecks: two act_mid)
  for (const auto& layer : layers) {
    EXPECT_LT(layer["mismatched_fraction"].get<double>(), 1e-3) << layer["name"];
  }
}

TEST_F(ExportTest, IntegerModelAgreesWithTheTrainedFakeQuantModel) {
  auto reports = trained_agreement(test::small_resnet(false));
  expect_exact_agreement(reports[deploy::ResidualMode::kExact]);
  expect_exact_agreement(reports[deploy::ResidualMode::kExactFloat]);
  expect_agreement(reports[deploy::ResidualMode::kInt8]);
}

TEST_F(ExportTest, SymmetricBlocksExportWithTheirTransposedConvolution) {
  auto reports = trained_agreement(test::small_resnet(true));
  expect_exact_agreement(reports[deploy::ResidualMode::kExact]);
  expect_exact_agreement(reports[deploy::ResidualMode::kExactFloat]);
  expect_agreement(reports[deploy::ResidualMode::kInt8]);
}

/// StableNets: the transition block's sum, concatenation and pooling run in float and the next act_in
/// quantizes once, so its codes are the fake-quant ones like every other layer's.
TEST_F(ExportTest, StableNetTransitionsExportAsFloatConcatenationAndPooling) {
  for (const bool symmetric : {false, true}) {
    SCOPED_TRACE(symmetric ? "symmetric" : "ordinary");
    auto net = test::small_stablenet(symmetric);
    auto reports = trained_agreement(net);
    expect_exact_agreement(reports[deploy::ResidualMode::kExact]);
    expect_exact_agreement(reports[deploy::ResidualMode::kExactFloat]);
    expect_agreement(reports[deploy::ResidualMode::kInt8]);
    const auto graph = deploy::export_classifier(*net, {test::quadrant_batch(8).first});
    std::vector<std::pair<std::string, deploy::OpKind>> transition;
    for (const auto& op : graph.ops) {
      if (op.name.rfind("layer2.0.", 0) == 0 || op.name == "layer2.1.act_in") {
        if (op.kind != deploy::OpKind::kQConv) transition.emplace_back(op.name, op.kind);
      }
    }
    // The block's input codes (the previous add), its residual sum, the concatenation and the pooling in
    // float, then the next block's quantizer.
    using K = deploy::OpKind;
    EXPECT_EQ(transition, (std::vector<std::pair<std::string, K>>{{"layer2.0.act_in", K::kAdd},
                                                                  {"layer2.0.residual", K::kAddToFloat},
                                                                  {"layer2.0.concat", K::kConcat},
                                                                  {"layer2.0.pool", K::kAvgPool},
                                                                  {"layer2.1.act_in", K::kQuantize}}));
  }
}

TEST_F(ExportTest, BottleneckBlocksExportWithTheirThreeConvolutions) {
  auto net = test::small_bottleneck_resnet();
  auto reports = trained_agreement(net);
  for (const auto mode : {deploy::ResidualMode::kExact, deploy::ResidualMode::kExactFloat}) {
    expect_exact_agreement(reports[mode], 12);  // act_in, act_mid1, act_mid2 of 4 blocks
  }
  expect_agreement(reports[deploy::ResidualMode::kInt8]);
  const auto graph = deploy::export_classifier(*net, {test::quadrant_batch(8).first});
  int64_t convs = 0;
  for (const auto& op : graph.ops) convs += op.kind == deploy::OpKind::kQConv;
  EXPECT_EQ(convs, 14);  // 4 blocks x 3 + two projections
}

/// MobileNetV2: expansion and depthwise convolutions to their quantizers' codes (int8, groups = channels),
/// the projection either into the residual add or, in blocks without one, straight to the next block's
/// codes; symmetric blocks compute K2 K1 and K1^T K2^T with exact integer sums and the second factor in
/// float.
TEST_F(ExportTest, MobileNetV2ExportsWithDepthwiseConvolutionsAndSymmetricBlocks) {
  for (const bool symmetric : {false, true}) {
    SCOPED_TRACE(symmetric ? "symmetric" : "ordinary");
    auto net = test::small_mobilenetv2(symmetric);
    auto reports = trained_agreement(net, /*int8_residuals=*/!symmetric);
    // act_in, act_mid, act_out of the ordinary blocks; act_in, act_mid of the symmetric ones.
    const size_t quantizers = symmetric ? 3 * 3 + 2 * 2 : 5 * 3;
    for (const auto mode : {deploy::ResidualMode::kExact, deploy::ResidualMode::kExactFloat}) {
      expect_exact_agreement(reports[mode], quantizers);
    }
    expect_agreement(reports[deploy::ResidualMode::kInt8]);

    const auto graph = deploy::export_classifier(*net, {test::quadrant_batch(8).first});
    std::map<std::string, const deploy::IntOp*> by_name;
    for (const auto& op : graph.ops) by_name[op.name] = &op;
    // The depthwise convolution: one group per hidden channel (8 x 2 = 16), stride 2.
    ASSERT_TRUE(by_name.count("layer2.0.act_out"));
    EXPECT_EQ(by_name["layer2.0.act_out"]->kind, deploy::OpKind::kQConv);
    EXPECT_EQ(by_name["layer2.0.act_out"]->groups, 16);
    EXPECT_EQ(by_name["layer2.0.act_out"]->stride, 2);
    // No residual in layer3.0: its projection writes layer3.1's input codes directly.
    ASSERT_TRUE(by_name.count("layer3.1.act_in"));
    EXPECT_EQ(by_name["layer3.1.act_in"]->kind, deploy::OpKind::kQConv);
    EXPECT_EQ(by_name["head"]->kind, deploy::OpKind::kFloatConv);
    if (symmetric) {
      EXPECT_EQ(by_name["layer3.1.conv1"]->kind, deploy::OpKind::kQConvToFloat);
      EXPECT_EQ(by_name["layer3.1.conv2"]->kind, deploy::OpKind::kFloatConv);
      EXPECT_EQ(by_name["layer3.1.conv2_transposed"]->padding, 2);
      EXPECT_EQ(by_name["layer3.1.branch"]->kind, deploy::OpKind::kFloatConv);
    }
    // A grouped weight that does not fit its input is refused naming the op.
    auto wrong_groups = graph;
    for (auto& op : wrong_groups.ops) {
      if (op.name == "layer2.0.act_out") op.groups = 8;
    }
    PDEQ_ASSERT_THROWS_WITH(
        wrong_groups.validate("m"),
        "(qconv 'layer2.0.act_out'): weight has 1 input channels per group (8 groups), but its input "
        "value 6 has 16");
    // A file written and read back computes the same logits.
    test::TempDir dir("export_mobilenetv2");
    auto with_meta = graph;
    with_meta.meta = test::small_resnet_meta();
    deploy::save_int_graph(with_meta, dir.path() / "m.pdeqint");
    const auto images = test::quadrant_batch(16).first;
    EXPECT_TRUE(
        torch::equal(deploy::IntegerModel(deploy::load_int_graph(dir.path() / "m.pdeqint")).forward(images),
                     deploy::IntegerModel(graph).forward(images)));
  }
}

/// Signed activation grids (quant.signed_activations: levels m alpha/n, m in [-n, n]) run as uint8 codes with
/// zero point n: the same codes as fake quantization, on LibTorch's int8 kernels and the float-kernel exact
/// sums (oneDNN's fused kernels take zero point 0 only, so exact mode reports "fp32").
TEST_F(ExportTest, SignedActivationGridsExportWithAZeroPoint) {
  auto model = test::w4a4(3, 4);
  model.act_quant.is_signed(true);
  const std::vector<std::pair<const char*, std::shared_ptr<models::ClassifierImpl>>> nets{
      {"resnet", std::make_shared<models::ResNetImpl>(models::ResNetOptions({{8, 2, 1}, {16, 2, 2}}, model))},
      {"mobilenetv2",
       std::make_shared<models::MobileNetV2Impl>(
           model, std::vector<models::InvertedResidualStage>{{1, 8, 1, 1}, {2, 8, 2, 2}, {2, 16, 2, 2}},
           32)}};
  for (const auto& [name, net] : nets) {
    SCOPED_TRACE(name);
    auto reports = trained_agreement(net, /*int8_residuals=*/false);
    const size_t quantizers = std::string(name) == "resnet" ? 8 : 15;
    for (const auto mode : {deploy::ResidualMode::kExact, deploy::ResidualMode::kExactFloat}) {
      expect_exact_agreement(reports[mode], quantizers);
    }
    const auto graph = deploy::export_classifier(*net, {test::quadrant_batch(8).first});
    // 4-bit signed: n = 7, codes 0..14 with zero point 7.
    EXPECT_EQ(graph.ops[1].kind, deploy::OpKind::kQuantize);
    EXPECT_EQ(graph.ops[1].out_zero_point, 7);
    EXPECT_EQ(graph.ops[1].qmax, 14);
  }
}

/// TV smoothing: each layer runs as a float stencil between integer sections (the convolution before it
/// keeps its exact sums in float, the quantizer after it rounds once), so the codes stay fake quantization's.
TEST_F(ExportTest, TvSmoothingExportsAsAFloatStencilBetweenIntegerSections) {
  models::TVOptions tv;
  tv.smooth.iters(2).gamma_init(0.25);
  struct Variant {
    const char* name;
    std::shared_ptr<models::ClassifierImpl> net;
    size_t quantizers, tv_layers, float_convs;
  };
  const std::vector<Variant> variants{
      {"ordinary", test::small_resnet(false, 4, tv), 8, 8, 4},
      {"symmetric", test::small_resnet(true, 4, tv), 8, 8, 4},
      {"stablenet", test::small_stablenet(false, 4, tv), 8, 8, 4},
      {"bottleneck", test::small_bottleneck_resnet(4, tv), 12, 12, 8},
      // tv_in, tv_mid, tv_out of 5 blocks; float sums before tv_mid and tv_out,
      // and the three projections without a residual before the next tv_in
      {"mobilenetv2", test::small_mobilenetv2(false, 4, tv), 15, 15, 13}};
  for (const auto& v : variants) {
    SCOPED_TRACE(v.name);
    auto reports = trained_agreement(v.net);
    for (const auto mode : {deploy::ResidualMode::kExact, deploy::ResidualMode::kExactFloat}) {
      expect_exact_agreement(reports[mode], v.quantizers);
    }
    const auto graph = deploy::export_classifier(*v.net, {test::quadrant_batch(8).first});
    size_t tv_layers = 0, float_convs = 0;
    for (const auto& op : graph.ops) {
      tv_layers += op.kind == deploy::OpKind::kTvSmooth;
      float_convs += op.kind == deploy::OpKind::kQConvToFloat;
    }
    EXPECT_EQ(tv_layers, v.tv_layers);  // every block's tv_in (the first on the stem) and inner layers
    EXPECT_EQ(float_convs, v.float_convs);
    // The file carries the steps and options; a model read back computes the same logits.
    test::TempDir dir("export_tv");
    auto with_meta = graph;
    with_meta.meta = test::small_resnet_meta();
    deploy::save_int_graph(with_meta, dir.path() / "tv.pdeqint");
    const auto loaded = deploy::load_int_graph(dir.path() / "tv.pdeqint");
    const auto images = test::quadrant_batch(16).first;
    EXPECT_TRUE(torch::equal(deploy::IntegerModel(loaded).forward(images),
                             deploy::IntegerModel(graph).forward(images)));
    const auto& tv_op = *std::find_if(loaded.ops.begin(), loaded.ops.end(), [](const deploy::IntOp& op) {
      return op.kind == deploy::OpKind::kTvSmooth;
    });
    EXPECT_EQ(tv_op.tv_iters, 2);
    EXPECT_GT(tv_op.tau.min().item<double>(), 0.0);
    if (deploy::onnx_export_built()) {
      PDEQ_ASSERT_THROWS_WITH(deploy::to_onnx(graph),
                              "TV smoothing (an edge-aware, nonlinear stencil) has no "
                              "ONNX operator");
    }
  }
}

/// The fused int8 kernels against the float-kernel path on the same images, layer by layer, on one and two
/// threads: the same codes up to float ties.
TEST_F(ExportTest, ExactModeKernelsAgreeWithTheFloatKernelsOnAnyThreadCount) {
  if (!deploy::onednn_int8_available()) GTEST_SKIP() << "built without oneDNN (PDEQ_WITH_ONEDNN)";
  for (const bool symmetric : {false, true}) {
    auto net = test::small_resnet(symmetric);
    test::train_briefly(*net, 30);
    const auto graph = deploy::export_classifier(*net, {test::quadrant_batch(64).first});
    const deploy::IntegerModel fused(graph, deploy::ResidualMode::kExact);
    const deploy::IntegerModel reference(graph, deploy::ResidualMode::kExactFloat);
    const auto images = test::quadrant_batch(64).first;
    const auto codes_of = [&](const deploy::IntegerModel& model) {
      std::map<std::string, torch::Tensor> codes;
      model.forward(images, [&](const deploy::IntOp& op, const torch::Tensor& y) {
        if (y.is_quantized()) codes[op.name] = y.int_repr().contiguous();
      });
      return codes;
    };
    const auto expected = codes_of(reference);
    for (const int threads : {1, 2}) {
      torch::set_num_threads(threads);
      const auto got = codes_of(fused);
      ASSERT_EQ(got.size(), expected.size());
      for (const auto& [name, codes] : expected) {
        const auto differ = got.at(name).ne(codes).to(torch::kDouble).mean().item<double>();
        EXPECT_LT(differ, 1e-3) << name << (symmetric ? " symmetric, " : " ordinary, ") << threads
                                << " threads";
      }
    }
    torch::set_num_threads(1);
  }
}

TEST(ResidualMode, ParsesItsThreeNames) {
  EXPECT_EQ(deploy::parse_residual_mode("exact"), deploy::ResidualMode::kExact);
  EXPECT_EQ(deploy::parse_residual_mode("exact-float"), deploy::ResidualMode::kExactFloat);
  EXPECT_EQ(deploy::to_string(deploy::parse_residual_mode("exact-float")), "exact-float");
  EXPECT_EQ(deploy::to_string(deploy::parse_residual_mode("int8")), "int8");
  PDEQ_ASSERT_THROWS_WITH(deploy::parse_residual_mode("fp16"), "exact, exact-float or int8");
}

TEST_F(ExportTest, GraphHasIntegerConvolutionsAndFloatEnds) {
  auto net = test::small_resnet(false);
  net->eval();
  const auto graph = deploy::export_classifier(*net, {test::quadrant_batch(8).first});
  EXPECT_EQ(graph.ops.front().kind, deploy::OpKind::kFloatStem);
  EXPECT_EQ(graph.ops[1].kind, deploy::OpKind::kQuantize);
  EXPECT_EQ(graph.ops.back().kind, deploy::OpKind::kFloatHead);
  int64_t convs = 0;
  for (const auto& op : graph.ops) convs += op.kind == deploy::OpKind::kQConv;
  EXPECT_EQ(convs, 9);  // 4 blocks x 2 + one projection
  const auto logits = deploy::IntegerModel(graph).forward(test::quadrant_batch(3).first);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{3, 4}));
}

TEST_F(ExportTest, RefusesLayersItCannotReproduceNamingThem) {
  const auto batch = std::vector<torch::Tensor>{test::quadrant_batch(4).first};
  auto wide = test::small_resnet(false, 16);
  PDEQ_ASSERT_THROWS_WITH(deploy::export_classifier(*wide, batch), "16-bit");

  // A concatenation transition that widens by part of its input (8 -> 12 channels) is not written.
  auto part =
      std::make_shared<models::ResNetImpl>(models::ResNetOptions({{8, 1, 1}, {12, 1, 2}}, test::w4a4(3, 4))
                                               .transition(models::Transition::kConcatPool));
  PDEQ_ASSERT_THROWS_WITH(deploy::export_classifier(*part, batch),
                          "layer2.0: a concatenation transition from 8 to 12 channels");

  auto midrise = test::w4a4(3, 4);
  midrise.act_quant.is_signed(true).midrise(true);
  auto midrise_net = std::make_shared<models::ResNetImpl>(models::ResNetOptions({{8, 1, 1}}, midrise));
  PDEQ_ASSERT_THROWS_WITH(deploy::export_classifier(*midrise_net, batch),
                          "layer1.0.act_in: mid-rise activation quantizers cannot be exported");

  auto mobile = test::small_mobilenetv2(false);
  mobile->layers[1]->ptr<models::InvertedResidualImpl>(0)->act_out->set_bits(16);
  PDEQ_ASSERT_THROWS_WITH(deploy::export_classifier(*mobile, batch), "layer2.0.act_out");

  PDEQ_ASSERT_THROWS_WITH(
      deploy::export_run("no_such_run", "x.tflite", deploy::ExportOptions().format("tflite")),
      "format must be pdeq or onnx, but got 'tflite'");
  if (!deploy::onnx_export_built()) {  // onnx_export_test.cpp covers the format where it is built
    PDEQ_ASSERT_THROWS_WITH(
        deploy::export_run("no_such_run", "x.onnx", deploy::ExportOptions().format("onnx")),
        "this pdeq was built without ONNX support");
  }
}

}  // namespace
