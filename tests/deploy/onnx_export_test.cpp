// ONNX export: the model passes onnx's checker, holds the int8 weight codes unchanged and computes what the
// integer model computes in exact mode. Debian has no ONNX runtime, so the last is checked with a small
// reference interpreter of exactly the node types the export emits, written from the ONNX operator specs.
#include <pdeq/deploy/export.h>
#include <pdeq/deploy/int_format.h>
#include <pdeq/deploy/int_model.h>
#include <pdeq/deploy/onnx_export.h>

#include "deploy_support.h"
#include "test_support.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace pdeq;
namespace fs = std::filesystem;

onnx::ModelProto parse(const std::string& bytes) {
  onnx::ModelProto model;
  EXPECT_TRUE(model.ParseFromString(bytes));
  return model;
}

torch::Tensor from_proto(const onnx::TensorProto& proto) {
  c10::ScalarType type = torch::kFloat;
  switch (proto.data_type()) {
    case onnx::TensorProto_DataType_FLOAT:
      type = torch::kFloat;
      break;
    case onnx::TensorProto_DataType_INT8:
      type = torch::kChar;
      break;
    case onnx::TensorProto_DataType_UINT8:
      type = torch::kByte;
      break;
    default:
      throw std::runtime_error("unexpected initializer type of " + proto.name());
  }
  const std::vector<int64_t> dims(proto.dims().begin(), proto.dims().end());
  auto t = torch::empty(dims, type);
  if (static_cast<size_t>(t.numel()) * t.element_size() != proto.raw_data().size()) {
    throw std::runtime_error(proto.name() + ": raw_data does not match its dims");
  }
  std::memcpy(t.data_ptr(), proto.raw_data().data(), proto.raw_data().size());
  return t;
}

const onnx::AttributeProto* find_attribute(const onnx::NodeProto& node, const std::string& name) {
  for (const auto& a : node.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

int64_t int_attribute(const onnx::NodeProto& node, const std::string& name, int64_t fallback) {
  const auto* a = find_attribute(node, name);
  return a ? a->i() : fallback;
}

std::vector<int64_t> ints_attribute(const onnx::NodeProto& node, const std::string& name,
                                    std::vector<int64_t> fallback) {
  const auto* a = find_attribute(node, name);
  return a ? std::vector<int64_t>(a->ints().begin(), a->ints().end()) : fallback;
}

/// A per-tensor scale (rank 0) as is, a per-axis one ([C]) shaped to broadcast along `axis` of x.
torch::Tensor along_axis(const torch::Tensor& scale, const torch::Tensor& x, int64_t axis) {
  if (scale.dim() == 0) return scale;
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[static_cast<size_t>(axis < 0 ? axis + x.dim() : axis)] = scale.size(0);
  return scale.reshape(shape);
}

/// Runs a model node by node (opset 13 semantics, float32 like a runtime's CPU kernels); fails on any other
/// node type, attribute value or layout than the export emits, rather than guessing.
std::map<std::string, torch::Tensor> interpret(const onnx::ModelProto& model, const torch::Tensor& image) {
  std::map<std::string, torch::Tensor> values;
  for (const auto& init : model.graph().initializer()) values[init.name()] = from_proto(init);
  values["image"] = image;
  for (const auto& node : model.graph().node()) {
    const auto in = [&](int i) -> torch::Tensor {
      if (i >= node.input_size() || node.input(i).empty()) return {};
      return values.at(node.input(i));
    };
    const std::string& op = node.op_type();
    torch::Tensor y;
    if (op == "Conv" || op == "MaxPool") {
      const auto kernel = ints_attribute(node, "kernel_shape", {});
      const auto strides = ints_attribute(node, "strides", {1, 1});
      const auto pads = ints_attribute(node, "pads", {0, 0, 0, 0});
      if (kernel.size() != 2 || pads.size() != 4 || pads[0] != pads[2] || pads[1] != pads[3]) {
        throw std::runtime_error(node.name() + ": unsupported window");
      }
      if (op == "Conv") {
        if (ints_attribute(node, "dilations", {1, 1}) != std::vector<int64_t>{1, 1}) {
          throw std::runtime_error(node.name() + ": dilations are not emitted");
        }
        const auto w = in(1);
        if (w.size(2) != kernel[0] || w.size(3) != kernel[1])
          throw std::runtime_error(node.name() + ": kernel_shape");
        y = torch::conv2d(in(0), w, in(2), strides, {pads[0], pads[1]}, {1, 1},
                          int_attribute(node, "group", 1));
      } else {
        if (int_attribute(node, "ceil_mode", 0) != 0) throw std::runtime_error(node.name() + ": ceil_mode");
        y = torch::max_pool2d(in(0), kernel, strides, {pads[0], pads[1]});
      }
    } else if (op == "Relu") {
      y = torch::relu(in(0));
    } else if (op == "Clip") {
      const auto lo = in(1), hi = in(2);
      y = torch::clamp(in(0), lo.defined() ? c10::optional<c10::Scalar>(lo.item<float>()) : c10::nullopt,
                       hi.defined() ? c10::optional<c10::Scalar>(hi.item<float>()) : c10::nullopt);
    } else if (op == "QuantizeLinear") {
      // y = saturate(round_half_to_even(x / y_scale) + y_zero_point)
      const auto zp = in(2);
      if (!zp.defined() || zp.scalar_type() != torch::kByte)
        throw std::runtime_error(node.name() + ": uint8 only");
      const int64_t axis = int_attribute(node, "axis", 1);
      const auto x = in(0);
      y = (x / along_axis(in(1), x, axis)).round() + along_axis(zp.to(torch::kFloat), x, axis);
      y = y.clamp(0, 255).to(torch::kByte);
    } else if (op == "DequantizeLinear") {
      // y = (x - x_zero_point) * x_scale
      const int64_t axis = int_attribute(node, "axis", 1);
      const auto x = in(0);
      const auto zp = in(2).defined() ? in(2) : torch::zeros({}, x.scalar_type());
      y = (x.to(torch::kFloat) - along_axis(zp.to(torch::kFloat), x, axis)) * along_axis(in(1), x, axis);
    } else if (op == "Add") {
      y = in(0) + in(1);
    } else if (op == "Concat") {
      y = torch::cat({in(0), in(1)}, int_attribute(node, "axis", -1));
    } else if (op == "AveragePool") {
      const auto kernel = ints_attribute(node, "kernel_shape", {});
      if (kernel.size() != 2 || ints_attribute(node, "strides", {1, 1}) != kernel ||
          ints_attribute(node, "pads", {0, 0, 0, 0}) != std::vector<int64_t>{0, 0, 0, 0} ||
          int_attribute(node, "ceil_mode", 0) != 0) {
        throw std::runtime_error(node.name() + ": only unpadded windows at their own stride are emitted");
      }
      y = torch::avg_pool2d(in(0), kernel);
    } else if (op == "GlobalAveragePool") {
      y = in(0).mean({2, 3}, /*keepdim=*/true);
    } else if (op == "Flatten") {
      const int64_t axis = int_attribute(node, "axis", 1);
      const auto x = in(0);
      const int64_t outer = axis == 0 ? 1 : x.flatten(0, axis - 1).size(0);
      y = x.reshape({outer, -1});
    } else if (op == "Gemm") {
      if (int_attribute(node, "transA", 0) != 0) throw std::runtime_error(node.name() + ": transA");
      const auto b = int_attribute(node, "transB", 0) ? in(1).t() : in(1);
      const float alpha = find_attribute(node, "alpha") ? find_attribute(node, "alpha")->f() : 1.0f;
      const float beta = find_attribute(node, "beta") ? find_attribute(node, "beta")->f() : 1.0f;
      y = alpha * torch::matmul(in(0), b) + beta * in(2);
    } else {
      throw std::runtime_error("the reference interpreter does not know " + op + " (node " + node.name() +
                               ")");
    }
    if (node.output_size() != 1) throw std::runtime_error(node.name() + ": one output expected");
    values[node.output(0)] = y;
  }
  return values;
}

struct OnnxExportTest : test::SeedingFixture {};

/// The small ResNet of the export tests, trained briefly (so that BatchNorm statistics and alphas are not at
/// their initial values), and its integer graph.
deploy::IntGraph trained_graph(bool symmetric, int64_t bits, bool stablenet = false) {
  auto net = stablenet ? test::small_stablenet(symmetric, bits) : test::small_resnet(symmetric, bits);
  test::train_briefly(*net, 40);
  std::vector<torch::Tensor> calibration;
  for (int i = 0; i < 2; ++i) calibration.push_back(test::quadrant_batch(64).first);
  return deploy::export_classifier(*net, calibration);
}

/// Whether a residual add is the only reader of `value` (a branch or projection convolution, which exact mode
/// keeps in float).
bool feeds_add(const deploy::IntGraph& graph, int64_t value) {
  int readers = 0;
  bool add = false;
  for (const auto& op : graph.ops) {
    const bool reads = std::find(op.inputs.begin(), op.inputs.end(), value) != op.inputs.end();
    readers += reads;
    add = add || (reads && (op.kind == deploy::OpKind::kAdd || op.kind == deploy::OpKind::kAddToFloat));
  }
  return add && readers == 1;
}

/// The ONNX model through the reference interpreter against IntegerModel (exact residuals) on the same
/// normalised images: per layer the same codes up to float ties, and the same logits and predictions.
void expect_same_as_integer_model(const deploy::IntGraph& graph, int64_t code_layers = 8) {
  const auto model = parse(deploy::to_onnx(graph));
  const deploy::IntegerModel reference(graph, deploy::ResidualMode::kExact);
  torch::manual_seed(3);
  const auto images = test::quadrant_batch(64).first;
  std::map<std::string, torch::Tensor> expected_codes;
  const auto expected = reference.forward(images, [&](const deploy::IntOp& op, const torch::Tensor& y) {
    if (y.is_quantized()) expected_codes[op.name] = y.int_repr().contiguous();
  });
  torch::NoGradGuard no_grad;
  const auto values = interpret(model, images);
  const auto& logits = values.at("logits");

  int64_t layers = 0;
  double worst_mismatch = 0.0;
  for (const auto& op : graph.ops) {
    const bool codes = op.kind == deploy::OpKind::kQuantize || op.kind == deploy::OpKind::kAdd ||
                       (op.kind == deploy::OpKind::kQConv && !feeds_add(graph, op.output));
    if (!codes) continue;
    ++layers;
    SCOPED_TRACE(op.name);
    ASSERT_EQ(expected_codes.count(op.name), 1u);
    const auto got = values.at(op.name + "/codes").to(torch::kLong);
    const auto want = expected_codes[op.name].to(torch::kLong);
    ASSERT_EQ(got.sizes(), want.sizes());
    EXPECT_LE(got.max().item<int64_t>(), op.qmax);  // the Clip keeps 4-bit codes on their grid
    // Codes differ only where a float sum lands on a rounding boundary: the ONNX convolution sums scaled
    // float products, IntegerModel exact integers (or oneDNN's int8 requantisation).
    const double mismatched = got.ne(want).to(torch::kDouble).mean().item<double>();
    worst_mismatch = std::max(worst_mismatch, mismatched);
    EXPECT_LT(mismatched, 1e-3);
    EXPECT_LE((got - want).abs().max().item<int64_t>(), 2);
  }
  // ResNet: the first quantizer, four act_mid convolutions, three adds; StableNet: one add less, one
  // quantizer more (after the transition's pooling); bottlenecks: four act_mid convolutions more.
  EXPECT_EQ(layers, code_layers);
  ASSERT_EQ(logits.sizes(), expected.sizes());
  EXPECT_TRUE(torch::equal(logits.argmax(1), expected.argmax(1)));
  const double scale = expected.abs().max().item<double>();
  EXPECT_LT((logits - expected).abs().max().item<double>(), 1e-2 * scale) << "largest logit " << scale;
  EXPECT_LT((logits - expected).abs().mean().item<double>(), 1e-3 * scale);
  std::cout << "codes differing, worst layer: " << worst_mismatch << "; largest logit difference "
            << (logits - expected).abs().max().item<double>() << " of largest logit " << scale << "\n";
}

TEST_F(OnnxExportTest, ModelPassesTheCheckerAndDeclaresItsInterface) {
  auto net = test::small_resnet(false);
  net->eval();
  auto graph = deploy::export_classifier(*net, {test::quadrant_batch(8).first});
  graph.meta = {{"dataset", "quadrants"},
                {"input_shape", {3, 16, 16}},
                {"weight_bits", 4},
                {"act_bits", 4},
                {"normalization", {{"mean", {0.5, 0.5, 0.5}}, {"std", {0.25, 0.25, 0.25}}}}};
  const auto model = parse(deploy::to_onnx(graph));
  EXPECT_NO_THROW(onnx::checker::check_model(model));
  EXPECT_EQ(model.ir_version(), 7);
  ASSERT_EQ(model.opset_import_size(), 1);
  EXPECT_EQ(model.opset_import(0).domain(), "");
  EXPECT_EQ(model.opset_import(0).version(), 13);
  EXPECT_EQ(model.producer_name(), "pdeq");

  ASSERT_EQ(model.graph().input_size(), 1);
  const auto& image = model.graph().input(0);
  EXPECT_EQ(image.name(), "image");
  const auto& dims = image.type().tensor_type().shape().dim();
  ASSERT_EQ(dims.size(), 4);
  EXPECT_EQ(dims[0].dim_param(), "batch");
  EXPECT_EQ(dims[1].dim_value(), 3);
  EXPECT_EQ(dims[2].dim_value(), 16);
  EXPECT_EQ(dims[3].dim_value(), 16);
  ASSERT_EQ(model.graph().output_size(), 1);
  EXPECT_EQ(model.graph().output(0).name(), "logits");
  EXPECT_EQ(model.graph().output(0).type().tensor_type().shape().dim(1).dim_value(), 4);

  std::map<std::string, nlohmann::json> props;
  for (const auto& p : model.metadata_props()) props[p.key()] = nlohmann::json::parse(p.value());
  EXPECT_EQ(props["dataset"], "quadrants");
  EXPECT_EQ(props["weight_bits"], 4);
  EXPECT_EQ(props["normalization"]["std"][0], 0.25);
  EXPECT_EQ(props["residuals"], "exact");

  // Only the node types of the QDQ encoding; 4-bit activations are clipped before QuantizeLinear.
  std::set<std::string> types;
  for (const auto& node : model.graph().node()) types.insert(node.op_type());
  EXPECT_EQ(types, (std::set<std::string>{"Add", "Clip", "Conv", "DequantizeLinear", "Flatten", "Gemm",
                                          "GlobalAveragePool", "QuantizeLinear", "Relu"}));

  // Without meta (a graph built in memory) C comes from the stem and H, W are symbolic.
  graph.meta = nlohmann::json::object();
  const auto bare = parse(deploy::to_onnx(graph));
  const auto& bare_dims = bare.graph().input(0).type().tensor_type().shape().dim();
  EXPECT_EQ(bare_dims[1].dim_value(), 3);
  EXPECT_EQ(bare_dims[2].dim_param(), "height");
}

TEST_F(OnnxExportTest, InitializersHoldTheInt8CodesUnchanged) {
  auto net = test::small_resnet(false);
  net->eval();
  const auto graph = deploy::export_classifier(*net, {test::quadrant_batch(8).first});
  const auto model = parse(deploy::to_onnx(graph));
  std::map<std::string, const onnx::TensorProto*> inits;
  for (const auto& init : model.graph().initializer()) inits[init.name()] = &init;
  int64_t convs = 0;
  for (const auto& op : graph.ops) {
    if (op.kind != deploy::OpKind::kQConv) continue;
    ++convs;
    SCOPED_TRACE(op.name);
    const auto* codes = inits[op.name + "/weight_codes"];
    ASSERT_NE(codes, nullptr);
    EXPECT_EQ(codes->data_type(), onnx::TensorProto_DataType_INT8);
    EXPECT_TRUE(torch::equal(from_proto(*codes), op.weight));
    EXPECT_TRUE(
        torch::equal(from_proto(*inits[op.name + "/weight_scale"]), op.weight_scale.to(torch::kFloat)));
    EXPECT_EQ(from_proto(*inits[op.name + "/weight_zero_point"]).abs().sum().item<int64_t>(), 0);
  }
  EXPECT_EQ(convs, 9);
  for (const auto& node : model.graph().node()) {
    if (node.op_type() == "DequantizeLinear" && node.name().find("/weight_dequantize") != std::string::npos) {
      EXPECT_EQ(int_attribute(node, "axis", 1), 0) << node.name();  // per output channel
    }
  }
}

TEST_F(OnnxExportTest, ReferenceInterpreterAgreesWithTheIntegerModel4Bit) {
  expect_same_as_integer_model(trained_graph(false, 4));
}

TEST_F(OnnxExportTest, ReferenceInterpreterAgreesWithTheIntegerModelSymmetricBlocks) {
  expect_same_as_integer_model(trained_graph(true, 4));
}

TEST_F(OnnxExportTest, ReferenceInterpreterAgreesWithTheIntegerModelStableNets) {
  for (const bool symmetric : {false, true}) {
    SCOPED_TRACE(symmetric ? "symmetric" : "ordinary");
    const auto graph = trained_graph(symmetric, 4, /*stablenet=*/true);
    const auto model = parse(deploy::to_onnx(graph));
    std::set<std::string> types;
    for (const auto& node : model.graph().node()) types.insert(node.op_type());
    EXPECT_EQ(types.count("Concat"), 1u);
    EXPECT_EQ(types.count("AveragePool"), 1u);
    expect_same_as_integer_model(graph);
  }
}

TEST_F(OnnxExportTest, ReferenceInterpreterAgreesWithTheIntegerModelBottlenecks) {
  auto net = test::small_bottleneck_resnet();
  test::train_briefly(*net, 40);
  expect_same_as_integer_model(deploy::export_classifier(*net, {test::quadrant_batch(64).first}), 12);
}

TEST_F(OnnxExportTest, ReferenceInterpreterAgreesWithTheIntegerModelMobileNetV2) {
  for (const bool symmetric : {false, true}) {
    SCOPED_TRACE(symmetric ? "symmetric" : "ordinary");
    auto net = test::small_mobilenetv2(symmetric);
    test::train_briefly(*net, 40);
    const auto graph = deploy::export_classifier(*net, {test::quadrant_batch(64).first});
    const auto model = parse(deploy::to_onnx(graph));
    int64_t depthwise = 0;
    for (const auto& node : model.graph().node()) depthwise += int_attribute(node, "group", 1) > 1;
    EXPECT_EQ(depthwise, symmetric ? 3 + 2 * 2 : 5);  // K2 of every block; K2 and K2^T of symmetric ones
    // Codes: each act_in, act_mid and act_out (symmetric blocks: act_in and act_mid).
    expect_same_as_integer_model(graph, symmetric ? 13 : 15);
  }
}

TEST_F(OnnxExportTest, ReferenceInterpreterAgreesWithTheIntegerModelSignedActivations) {
  auto model = test::w4a4(3, 4);
  model.act_quant.is_signed(true);  // codes 0..14, zero point 7
  auto net = std::make_shared<models::ResNetImpl>(models::ResNetOptions({{8, 2, 1}, {16, 2, 2}}, model));
  test::train_briefly(*net, 40);
  expect_same_as_integer_model(deploy::export_classifier(*net, {test::quadrant_batch(64).first}));
}

TEST_F(OnnxExportTest, ReferenceInterpreterAgreesWithTheIntegerModel8BitWithoutClip) {
#if defined(__x86_64__) && defined(__GNUC__)
  // Without VNNI, fbgemm's int8 convolution adds pairs of uint8 x int8 products in 16 bits with saturation
  // (vpmaddubsw): 8-bit codes (255 x 127 twice) overflow it, so the integer model is not exact on such a CPU
  // (docs/deploy.md). Below 8 bits the pairs fit, and the 4-bit tests above hold everywhere.
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512vnni")) {
    GTEST_SKIP() << "this CPU has no AVX512-VNNI: LibTorch's int8 convolution saturates 16-bit pair sums of "
                    "8-bit codes here, so 8-bit integer models are not exact (a known limitation)";
  }
#endif
  const auto graph = trained_graph(false, 8);
  const auto model = parse(deploy::to_onnx(graph));
  for (const auto& node : model.graph().node()) EXPECT_NE(node.op_type(), "Clip") << node.name();
  expect_same_as_integer_model(graph);
}

TEST_F(OnnxExportTest, SaveWritesTheCheckedBytesAtomically) {
  auto net = test::small_resnet(false);
  net->eval();
  const auto graph = deploy::export_classifier(*net, {test::quadrant_batch(8).first});
  test::TempDir dir("onnx");
  const fs::path path = dir.path() / "net.onnx";
  deploy::save_onnx(graph, path);
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(bytes, deploy::to_onnx(graph));
  EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
  EXPECT_NO_THROW(onnx::checker::check_model(path.string()));
  // Size next to the .pdeqint of the same graph (both hold the int8 codes once; reported in the README).
  auto with_meta = graph;  // a .pdeqint file carries its meta
  with_meta.meta = test::small_resnet_meta();
  deploy::save_int_graph(with_meta, dir.path() / "net.pdeqint");
  const auto onnx_bytes = fs::file_size(path), pdeq_bytes = fs::file_size(dir.path() / "net.pdeqint");
  RecordProperty("onnx_bytes", std::to_string(onnx_bytes));
  RecordProperty("pdeqint_bytes", std::to_string(pdeq_bytes));
  std::cout << "onnx " << onnx_bytes << " bytes, pdeqint " << pdeq_bytes << " bytes\n";
  EXPECT_LT(onnx_bytes, 2 * pdeq_bytes);
}

TEST_F(OnnxExportTest, CheckFailuresNameTheNodeAndOp) {
  auto net = test::small_resnet(false);
  net->eval();
  const auto graph = deploy::export_classifier(*net, {test::quadrant_batch(8).first});
  auto model = parse(deploy::to_onnx(graph));
  for (auto& node : *model.mutable_graph()->mutable_node()) {
    if (node.name() == "layer1.0.act_mid/conv") node.set_input(0, "nowhere");
  }
  std::string broken;
  ASSERT_TRUE(model.SerializeToString(&broken));
  PDEQ_ASSERT_THROWS_WITH(
      deploy::check_onnx(broken, "broken.onnx"),
      "broken.onnx: ONNX check failed at node 'layer1.0.act_mid/conv' (pdeq op 'layer1.0.act_mid')");
  PDEQ_ASSERT_THROWS_WITH(deploy::check_onnx("\xff\xff\xff\xff", "junk.onnx"), "junk.onnx: ");

  // Duplicate op names would make two ONNX tensors of one name.
  auto twice = graph;
  twice.ops[2].name = twice.ops[1].name;
  PDEQ_ASSERT_THROWS_WITH(deploy::to_onnx(twice), "op 2 (qconv 'layer1.0.act_in'): ONNX tensors are named");
}

}  // namespace
