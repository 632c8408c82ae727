#include <pdeq/deploy/onnx_export.h>

#include <fstream>
#include <stdexcept>

#ifdef PDEQ_WITH_ONNX
#include <onnx/checker.h>
#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <set>
#include <vector>
#endif

namespace pdeq::deploy {
namespace fs = std::filesystem;

#ifdef PDEQ_WITH_ONNX
namespace {

using nlohmann::json;

/// IR version 7 is the one released with opset 13: the newest runtimes read it, and so do older ones.
constexpr int64_t kIrVersion = 7;

onnx::TensorProto_DataType onnx_type(c10::ScalarType type) {
  switch (type) {
    case torch::kFloat:
      return onnx::TensorProto_DataType_FLOAT;
    case torch::kInt8:
      return onnx::TensorProto_DataType_INT8;
    case torch::kByte:
      return onnx::TensorProto_DataType_UINT8;
    default:
      throw std::runtime_error(std::string("onnx export: no ONNX type for ") + c10::toString(type));
  }
}

/// Emits the nodes and initializers of one graph; every name it makes is "<pdeq op name>/<role>".
class GraphWriter {
 public:
  explicit GraphWriter(onnx::GraphProto& graph) : graph_(graph) {}

  /// A constant (row-major, raw little-endian bytes: x86 already is).
  std::string initializer(const std::string& name, const torch::Tensor& value) {
    const torch::Tensor t = value.contiguous().cpu();
    auto* proto = graph_.add_initializer();
    proto->set_name(name);
    proto->set_data_type(onnx_type(t.scalar_type()));
    for (const int64_t d : t.sizes()) proto->add_dims(d);
    proto->set_raw_data(t.data_ptr(), static_cast<size_t>(t.numel()) * t.element_size());
    return name;
  }
  std::string scalar(const std::string& name, float value) {
    return initializer(name, torch::tensor(value, torch::kFloat).reshape({}));
  }
  std::string scalar_u8(const std::string& name, int64_t value) {
    return initializer(name, torch::tensor(value, torch::kLong).to(torch::kByte).reshape({}));
  }

  onnx::NodeProto& node(const std::string& op_type, const std::string& name,
                        const std::vector<std::string>& inputs, const std::string& output) {
    auto* node = graph_.add_node();
    node->set_op_type(op_type);
    node->set_name(name);
    for (const auto& input : inputs) node->add_input(input);
    node->add_output(output);
    return *node;
  }

 private:
  onnx::GraphProto& graph_;
};

void set_int(onnx::NodeProto& node, const char* name, int64_t value) {
  auto* attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto_AttributeType_INT);
  attr->set_i(value);
}

void set_ints(onnx::NodeProto& node, const char* name, const std::vector<int64_t>& values) {
  auto* attr = node.add_attribute();
  attr->set_name(name);
  attr->set_type(onnx::AttributeProto_AttributeType_INTS);
  for (const int64_t v : values) attr->add_ints(v);
}

/// kernel_shape, strides and symmetric pads of a square convolution or pooling window.
void set_window(onnx::NodeProto& node, int64_t kernel, int64_t stride, int64_t padding) {
  set_ints(node, "kernel_shape", {kernel, kernel});
  set_ints(node, "strides", {stride, stride});
  set_ints(node, "pads", {padding, padding, padding, padding});
}

void set_dims(onnx::ValueInfoProto& info, const std::vector<json>& dims) {
  auto* tensor = info.mutable_type()->mutable_tensor_type();
  tensor->set_elem_type(onnx::TensorProto_DataType_FLOAT);
  auto* shape = tensor->mutable_shape();
  for (const auto& d : dims) {
    if (d.is_string()) {
      shape->add_dim()->set_dim_param(d.get<std::string>());
    } else {
      shape->add_dim()->set_dim_value(d.get<int64_t>());
    }
  }
}

/// [C, H, W] of the image: meta "input_shape" when the export recorded it, else C from the stem's weight and
/// symbolic H and W (graphs built in memory).
std::vector<json> image_dims(const IntGraph& graph) {
  const auto& meta = graph.meta;
  if (meta.is_object() && meta.contains("input_shape") && meta["input_shape"].is_array() &&
      meta["input_shape"].size() == 3) {
    std::vector<json> dims{"batch"};
    for (const auto& d : meta["input_shape"]) dims.push_back(d.get<int64_t>());
    return dims;
  }
  json channels = "channels";
  for (const auto& op : graph.ops) {
    if (op.kind == OpKind::kFloatStem && op.inputs.at(0) == 0) channels = op.weight.size(1);
  }
  return {"batch", channels, "height", "width"};
}

/// Clip to the codes' range, then QuantizeLinear -> DequantizeLinear: the output is the float value of the
/// codes, named `op.name`. uint8 saturates at [0, 255]; a narrower grid (4-bit: qmax 15) is the Clip's
/// upper bound s (qmax - zp), which rounds to exactly qmax - zp. QuantizeLinear rounds half to even, as
/// IntegerModel's round() does.
void requantise(GraphWriter& out, const IntOp& op, const std::string& input) {
  const std::string p = op.name + "/";
  const auto scale = static_cast<float>(op.out_scale);
  std::string x = input;
  if (op.qmax < 255) {
    const std::string lo = out.scalar(p + "clip_min", static_cast<float>(-op.out_scale * op.out_zero_point));
    const std::string hi =
        out.scalar(p + "clip_max", static_cast<float>(op.out_scale * (op.qmax - op.out_zero_point)));
    x = out.node("Clip", p + "clip", {x, lo, hi}, p + "clip").output(0);
  }
  const std::string s = out.scalar(p + "scale", scale);
  const std::string zp = out.scalar_u8(p + "zero_point", op.out_zero_point);
  const std::string codes = out.node("QuantizeLinear", p + "quantize", {x, s, zp}, p + "codes").output(0);
  out.node("DequantizeLinear", p + "dequantize", {codes, s, zp}, op.name);
}

/// The node's last float step: named `op.name` when nothing follows it, else "<op>/<role>".
std::string step_name(const IntOp& op, const char* role, bool last) {
  return last ? op.name : op.name + "/" + role;
}

void check_names(const IntGraph& graph) {
  std::set<std::string> names{"image", "logits"};
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    const auto& op = graph.ops[i];
    const std::string what =
        "onnx export: op " + std::to_string(i) + " (" + op_kind_name(op.kind) + " '" + op.name + "'): ";
    if (op.name.empty())
      throw std::runtime_error(what + "ONNX tensors are named after ops; the name is empty");
    if (!names.insert(op.name).second) {
      throw std::runtime_error(what +
                               "ONNX tensors are named after ops; the name is used twice (or is "
                               "'image' or 'logits')");
    }
  }
}

onnx::ModelProto build_model(const IntGraph& graph) {
  graph.validate("onnx export");
  check_names(graph);
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    if (graph.ops[i].kind == OpKind::kTvSmooth) {
      throw std::runtime_error("onnx export: op " + std::to_string(i) + " (tv_smooth '" + graph.ops[i].name +
                               "'): TV smoothing (an edge-aware, nonlinear stencil) has no ONNX operator; "
                               "export this model with --format pdeq");
    }
  }
  // Exact residual mode: a convolution that only a residual add reads keeps its float output (IntegerModel's
  // rule).
  std::vector<int> uses(graph.ops.size() + 1, 0);
  for (const auto& op : graph.ops) {
    for (const int64_t v : op.inputs) ++uses[static_cast<size_t>(v)];
  }
  std::vector<bool> feeds_add(graph.ops.size(), false);
  for (const auto& op : graph.ops) {
    if (op.kind != OpKind::kAdd && op.kind != OpKind::kAddToFloat) continue;
    for (const int64_t v : op.inputs) {
      if (v >= 1 && graph.ops[static_cast<size_t>(v - 1)].kind == OpKind::kQConv &&
          uses[static_cast<size_t>(v)] == 1) {
        feeds_add[static_cast<size_t>(v - 1)] = true;
      }
    }
  }

  onnx::ModelProto model;
  model.set_ir_version(kIrVersion);
  model.set_producer_name("pdeq");
  model.set_producer_version("0.1.0");
  model.set_doc_string(
      "pdeq integer export (QDQ): activations on the fake quantizers' uint8 grids, int8 weight codes with "
      "per-output-channel scales; residual-feeding convolutions summed in float (exact mode)");
  auto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  if (graph.meta.is_object()) {
    for (const auto& [key, value] : graph.meta.items()) {
      auto* prop = model.add_metadata_props();
      prop->set_key(key);
      prop->set_value(value.dump());
    }
  }
  if (!graph.meta.is_object() || !graph.meta.contains("residuals")) {
    auto* residuals = model.add_metadata_props();
    residuals->set_key("residuals");
    residuals->set_value("\"exact\"");
  }

  onnx::GraphProto& g = *model.mutable_graph();
  g.set_name(graph.meta.is_object() && graph.meta.contains("model") && graph.meta["model"].is_string()
                 ? graph.meta["model"].get<std::string>()
                 : std::string("pdeq"));
  auto* image = g.add_input();
  image->set_name("image");
  set_dims(*image, image_dims(graph));

  GraphWriter out(g);
  const auto value = [&](int64_t v) -> std::string {
    return v == 0 ? std::string("image") : graph.ops[static_cast<size_t>(v - 1)].name;
  };
  for (size_t i = 0; i < graph.ops.size(); ++i) {
    const IntOp& op = graph.ops[i];
    const std::string p = op.name + "/";
    switch (op.kind) {
      case OpKind::kFloatStem: {
        const std::string w = out.initializer(p + "weight", op.weight);
        const std::string b = out.initializer(p + "bias", op.bias);
        auto& conv = out.node("Conv", p + "conv", {value(op.inputs[0]), w, b},
                              step_name(op, "conv", !op.relu && !op.max_pool));
        set_window(conv, op.weight.size(2), op.stride, op.padding);
        set_int(conv, "group", op.groups);
        std::string x = conv.output(0);
        if (op.relu) x = out.node("Relu", p + "relu", {x}, step_name(op, "relu", !op.max_pool)).output(0);
        if (op.max_pool) set_window(out.node("MaxPool", p + "max_pool", {x}, op.name), 3, 2, 1);
        break;
      }
      case OpKind::kQuantize:
        requantise(out, op, value(op.inputs[0]));
        break;
      case OpKind::kFloatConv: {
        const std::string w = out.initializer(p + "weight", op.weight);
        const std::string b = out.initializer(p + "bias", op.bias);
        auto& conv =
            out.node("Conv", p + "conv", {value(op.inputs[0]), w, b}, step_name(op, "conv", !op.relu));
        set_window(conv, op.weight.size(2), op.stride, op.padding);
        set_int(conv, "group", op.groups);
        if (op.relu) out.node("Relu", p + "relu", {conv.output(0)}, op.name);
        break;
      }
      case OpKind::kQConv:
      case OpKind::kQConvToFloat: {
        const bool codes = op.kind == OpKind::kQConv && !feeds_add[i];
        const std::string codes_w = out.initializer(p + "weight_codes", op.weight);
        const std::string scale_w = out.initializer(p + "weight_scale", op.weight_scale.to(torch::kFloat));
        const std::string zero_w =
            out.initializer(p + "weight_zero_point", torch::zeros_like(op.weight_scale, torch::kChar));
        auto& dq =
            out.node("DequantizeLinear", p + "weight_dequantize", {codes_w, scale_w, zero_w}, p + "weight");
        set_int(dq, "axis", 0);
        // The bias is a float Add after the Conv, not the Conv's third input: ONNX Runtime (1.32, any
        // optimisation level above none) rounds a Conv bias between DequantizeLinear inputs to int32 on the
        // accumulator's grid s_x s_w[c], which moves sums across rounding boundaries (measured: 80% of
        // predictions of a ResNet-20 W4A4 kept); fake quantization adds it in float.
        const std::string b = out.initializer(p + "bias", op.bias.view({-1, 1, 1}));
        auto& conv = out.node("Conv", p + "conv", {value(op.inputs[0]), p + "weight"}, p + "conv");
        set_window(conv, op.weight.size(2), op.stride, op.padding);
        set_int(conv, "group", op.groups);
        std::string x = out.node("Add", p + "bias_add", {conv.output(0), b},
                                 step_name(op, "bias_add", !op.relu && !codes))
                            .output(0);
        if (op.relu) x = out.node("Relu", p + "relu", {x}, step_name(op, "relu", !codes)).output(0);
        if (codes) requantise(out, op, x);
        break;
      }
      case OpKind::kAdd:
      case OpKind::kAddToFloat: {
        const bool codes = op.kind == OpKind::kAdd;
        std::string x = out.node("Add", p + "add", {value(op.inputs[0]), value(op.inputs[1])},
                                 step_name(op, "add", !op.relu && !codes))
                            .output(0);
        if (op.relu) x = out.node("Relu", p + "relu", {x}, step_name(op, "relu", !codes)).output(0);
        if (codes) requantise(out, op, x);
        break;
      }
      case OpKind::kConcat:
        set_int(out.node("Concat", p + "concat", {value(op.inputs[0]), value(op.inputs[1])}, op.name), "axis",
                1);
        break;
      case OpKind::kAvgPool:
        set_window(out.node("AveragePool", p + "pool", {value(op.inputs[0])}, op.name), op.stride, op.stride,
                   0);
        break;
      case OpKind::kTvSmooth:  // refused above
        break;
      case OpKind::kFloatHead: {
        const std::string pooled =
            out.node("GlobalAveragePool", p + "pool", {value(op.inputs[0])}, p + "pool").output(0);
        set_int(out.node("Flatten", p + "flatten", {pooled}, p + "flatten"), "axis", 1);
        const std::string w = out.initializer(p + "weight", op.weight);
        const std::string b = out.initializer(p + "bias", op.bias);
        set_int(out.node("Gemm", p + "gemm", {p + "flatten", w, b}, "logits"), "transB", 1);
        auto* logits = g.add_output();
        logits->set_name("logits");
        set_dims(*logits, {"batch", op.weight.size(0)});
        break;
      }
    }
  }
  return model;
}

}  // namespace

bool onnx_export_built() { return true; }

std::string to_onnx(const IntGraph& graph) {
  std::string bytes;
  if (!build_model(graph).SerializeToString(&bytes)) {
    throw std::runtime_error("onnx export: the model could not be serialised (over 2 GB?)");
  }
  check_onnx(bytes, "onnx export");
  return bytes;
}

void check_onnx(const std::string& bytes, const std::string& name) {
  onnx::ModelProto model;
  if (!model.ParseFromString(bytes))
    throw std::runtime_error(name + ": not an ONNX model (protobuf parse failed)");
  try {
    onnx::checker::check_model(model);
    // The checker looks at nodes one by one; inference also checks that types and shapes fit between them.
    onnx::shape_inference::InferShapes(model, onnx::OpSchemaRegistry::Instance(),
                                       onnx::ShapeInferenceOptions(/*check_type=*/true, /*strict_mode=*/1));
  } catch (const std::exception& e) {
    // onnx names the node ("Name: <node>", "node name: <node>"); the longest node name in the message is the
    // one meant, and its part before '/' the pdeq op.
    std::string node;
    const std::string what = e.what();
    for (const auto& n : model.graph().node()) {
      if (n.name().size() > node.size() && what.find(n.name()) != std::string::npos) node = n.name();
    }
    std::string where;
    if (!node.empty()) where = " at node '" + node + "' (pdeq op '" + node.substr(0, node.rfind('/')) + "')";
    throw std::runtime_error(name + ": ONNX check failed" + where + ": " + what);
  }
}

#else  // !PDEQ_WITH_ONNX

namespace {
[[noreturn]] void not_built() {
  throw std::runtime_error(
      "ONNX export is not built: libonnx-dev was not found when pdeq was configured (install it, e.g. with "
      "scripts/setup.sh, and reconfigure)");
}
}  // namespace

bool onnx_export_built() { return false; }
std::string to_onnx(const IntGraph&) { not_built(); }
void check_onnx(const std::string&, const std::string&) { not_built(); }

#endif  // PDEQ_WITH_ONNX

void save_onnx(const IntGraph& graph, const fs::path& path) {
  const std::string bytes = to_onnx(graph);
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream file(tmp, std::ios::binary | std::ios::trunc);
    if (!file) throw std::runtime_error("cannot open " + tmp.string() + " for writing");
    file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    file.close();
    if (!file) throw std::runtime_error("cannot write " + tmp.string());
  }
  fs::rename(tmp, path);
}

}  // namespace pdeq::deploy
