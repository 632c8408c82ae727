#include <pdeq/deploy/int_graph.h>

#include <pdeq/config/config.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace pdeq::deploy {
namespace {

constexpr std::array<std::pair<OpKind, const char*>, 11> kKindNames{
    {{OpKind::kFloatStem, "float_stem"},
     {OpKind::kQuantize, "quantize"},
     {OpKind::kQConv, "qconv"},
     {OpKind::kAdd, "add"},
     {OpKind::kAddToFloat, "add_to_float"},
     {OpKind::kFloatHead, "float_head"},
     {OpKind::kConcat, "concat"},
     {OpKind::kAvgPool, "avg_pool"},
     {OpKind::kQConvToFloat, "qconv_to_float"},
     {OpKind::kTvSmooth, "tv_smooth"},
     {OpKind::kFloatConv, "float_conv"}}};

/// Which kinds of value an op reads and writes, to check the wiring of a loaded file.
enum class ValueType { kFloat, kCodes, kAny };

ValueType output_type(OpKind kind) {
  switch (kind) {
    case OpKind::kFloatStem:
    case OpKind::kAddToFloat:
    case OpKind::kFloatHead:
    case OpKind::kConcat:
    case OpKind::kAvgPool:
    case OpKind::kQConvToFloat:
    case OpKind::kTvSmooth:
    case OpKind::kFloatConv:
      return ValueType::kFloat;
    default:
      return ValueType::kCodes;
  }
}

std::vector<ValueType> input_types(OpKind kind) {
  switch (kind) {
    case OpKind::kFloatStem:
    case OpKind::kQuantize:
    case OpKind::kAvgPool:
    case OpKind::kTvSmooth:
    case OpKind::kFloatConv:
      return {ValueType::kFloat};
    case OpKind::kQConv:
    case OpKind::kQConvToFloat:
      return {ValueType::kCodes};
    case OpKind::kAdd:
    case OpKind::kAddToFloat:
      return {ValueType::kCodes, ValueType::kAny};
    case OpKind::kFloatHead:
      return {ValueType::kAny};
    case OpKind::kConcat:
      return {ValueType::kAny, ValueType::kAny};
  }
  return {};
}

class OpChecker {
 public:
  OpChecker(const std::string& where, size_t index, const IntOp& op) : op_(op) {
    std::ostringstream prefix;
    prefix << where << ": op " << index << " (" << op_kind_name(op.kind) << " '" << op.name << "'): ";
    prefix_ = prefix.str();
  }
  void require(bool ok, const std::string& what) const {
    if (!ok) throw std::runtime_error(prefix_ + what);
  }
  void tensor(const torch::Tensor& t, const char* field, c10::ScalarType dtype, int64_t dim) const {
    require(t.defined(), std::string(field) + " is missing");
    require(t.scalar_type() == dtype, std::string(field) + " must be " + c10::toString(dtype) + ", got " +
                                          c10::toString(t.scalar_type()));
    require(t.dim() == dim, std::string(field) + " must have " + std::to_string(dim) + " dimensions, got " +
                                std::to_string(t.dim()));
  }
  void finite(const torch::Tensor& t, const char* field) const {
    require(t.isfinite().all().item<bool>(), std::string(field) + " must be finite (it holds NaN or inf)");
  }
  void codes_out() const {
    require(std::isfinite(op_.out_scale) && op_.out_scale > 0, "out_scale must be positive and finite");
    require(op_.qmax >= 1 && op_.qmax <= 255, "qmax must be in [1, 255], got " + std::to_string(op_.qmax));
    require(op_.out_zero_point >= 0 && op_.out_zero_point <= op_.qmax,
            "out_zero_point must be in [0, qmax], got " + std::to_string(op_.out_zero_point));
  }

 private:
  const IntOp& op_;
  std::string prefix_;
};

/// [C, H, W] of one value; -1 where unknown (validate() without meta knows the channels after the stem only).
using Shape = std::array<int64_t, 3>;
constexpr int64_t kUnknown = -1;
/// Largest C, H or W of meta.input_shape: larger images are corrupt files, not inputs.
constexpr int64_t kMaxInputDim = 65536;
/// Largest `groups` of a convolution (a depthwise one has as many as channels, which meta bounds the same
/// way).
constexpr int64_t kMaxGroups = 65536;

std::string shape_text(const Shape& s) {
  std::string text = "[";
  for (size_t d = 0; d < s.size(); ++d) {
    text += (d ? ", " : "") + (s[d] == kUnknown ? std::string("?") : std::to_string(s[d]));
  }
  return text + "]";
}

/// The value's name in messages: "value 3", and for the images "value 0 (meta.input_shape)".
std::string value_text(int64_t v, bool with_meta) {
  return "value " + std::to_string(v) + (v == 0 && with_meta ? " (meta.input_shape)" : "");
}

/// Output [O, H', W'] of a convolution with an [O, I, kh, kw] weight; H', W' >= 1 required.
Shape conv_shape(const OpChecker& check, const Shape& in, const torch::Tensor& weight, int64_t stride,
                 int64_t padding) {
  Shape out{weight.size(0), kUnknown, kUnknown};
  for (size_t d = 1; d < 3; ++d) {
    if (in[d] == kUnknown) continue;
    const int64_t k = weight.size(static_cast<int64_t>(d) + 1);
    check.require(in[d] + 2 * padding >= k, "a " + std::to_string(weight.size(2)) + "x" +
                                                std::to_string(weight.size(3)) + " kernel with padding " +
                                                std::to_string(padding) + " does not fit its " +
                                                shape_text(in) + " input");
    out[d] = (in[d] + 2 * padding - k) / stride + 1;
  }
  return out;
}

/// The checks of validate(); with `input` (from meta) also the spatial sizes and the classes.
void check_graph(const IntGraph& graph, const std::string& where, const Shape& input, int64_t classes) {
  const auto& ops = graph.ops;
  const bool with_meta = input[0] != kUnknown;
  if (ops.empty()) throw std::runtime_error(where + ": the graph has no operations");
  std::vector<ValueType> values{ValueType::kFloat};  // value 0: the image
  std::vector<Shape> shapes{input};
  for (size_t i = 0; i < ops.size(); ++i) {
    const IntOp& op = ops[i];
    const OpChecker check(where, i, op);
    const auto expected = input_types(op.kind);
    check.require(
        op.inputs.size() == expected.size(),
        "expected " + std::to_string(expected.size()) + " inputs, got " + std::to_string(op.inputs.size()));
    for (size_t j = 0; j < op.inputs.size(); ++j) {
      const int64_t v = op.inputs[j];
      check.require(v >= 0 && v < static_cast<int64_t>(values.size()),
                    "input " + std::to_string(v) + " is not defined before this operation");
      check.require(expected[j] == ValueType::kAny || values[static_cast<size_t>(v)] == expected[j],
                    "input " + std::to_string(v) + " has the wrong kind (float vs codes)");
    }
    check.require(
        op.output == static_cast<int64_t>(values.size()),
        "output must be value " + std::to_string(values.size()) + ", got " + std::to_string(op.output));
    values.push_back(output_type(op.kind));
    check.require(op.stride >= 1 && op.stride <= 16, "stride must be in [1, 16]");
    check.require(op.padding >= 0 && op.padding <= 16, "padding must be in [0, 16]");
    check.require(
        op.groups >= 1 && op.groups <= kMaxGroups,
        "groups must be in [1, " + std::to_string(kMaxGroups) + "], got " + std::to_string(op.groups));
    const bool conv = op.kind == OpKind::kFloatStem || op.kind == OpKind::kFloatConv ||
                      op.kind == OpKind::kQConv || op.kind == OpKind::kQConvToFloat;
    check.require(conv || op.groups == 1, "groups must be 1 for an operation that is not a convolution");
    check.require(op.kind == OpKind::kFloatStem || !op.max_pool, "max_pool is an option of float_stem only");
    const Shape& in = shapes[static_cast<size_t>(op.inputs[0])];
    // The weight's input channels (per group) against its input's.
    const auto channels_in = [&](int64_t weight_channels) {
      check.require(in[0] == kUnknown || weight_channels * op.groups == in[0],
                    "weight has " + std::to_string(weight_channels) + " input channels" +
                        (op.groups > 1 ? " per group (" + std::to_string(op.groups) + " groups)" : "") +
                        ", but its input " + value_text(op.inputs[0], with_meta) + " has " +
                        std::to_string(in[0]));
    };
    // Grouped convolutions: each group's output channels read their group's inputs.
    const auto grouped_out = [&](int64_t out_channels) {
      check.require(out_channels % op.groups == 0, "output channels (" + std::to_string(out_channels) +
                                                       ") must be a multiple of groups (" +
                                                       std::to_string(op.groups) + ")");
    };
    Shape out = in;
    switch (op.kind) {
      case OpKind::kFloatStem:
      case OpKind::kFloatConv:
        check.tensor(op.weight, "weight", torch::kFloat, 4);
        check.tensor(op.bias, "bias", torch::kFloat, 1);
        check.require(
            op.weight.size(0) > 0 && op.weight.size(1) > 0 && op.weight.size(2) > 0 && op.weight.size(3) > 0,
            "weight must be [O, I, kh, kw] with every size > 0");
        check.require(op.bias.size(0) == op.weight.size(0), "bias must have one entry per output channel");
        check.finite(op.weight, "weight");
        check.finite(op.bias, "bias");
        channels_in(op.weight.size(1));
        grouped_out(op.weight.size(0));
        out = conv_shape(check, in, op.weight, op.stride, op.padding);
        if (op.max_pool) {  // 3x3, stride 2, padding 1: H >= 1 stays >= 1
          for (size_t d = 1; d < 3; ++d) out[d] = out[d] == kUnknown ? kUnknown : (out[d] - 1) / 2 + 1;
        }
        break;
      case OpKind::kQConv:
      case OpKind::kQConvToFloat: {
        check.tensor(op.weight, "weight", torch::kInt8, 4);
        check.tensor(op.weight_scale, "weight_scale", torch::kDouble, 1);
        check.tensor(op.bias, "bias", torch::kFloat, 1);
        const int64_t out_channels = op.weight.size(0);
        check.require(out_channels > 0 && op.weight.size(1) > 0 && op.weight.size(2) == op.weight.size(3) &&
                          op.weight.size(2) > 0,
                      "weight must be [O, I, k, k] with O, I, k > 0");
        check.require(op.weight_scale.size(0) == out_channels && op.bias.size(0) == out_channels,
                      "weight_scale and bias must have one entry per output channel");
        check.require(
            (op.weight_scale > 0).all().item<bool>() && op.weight_scale.isfinite().all().item<bool>(),
            "weight_scale must be positive and finite");
        check.finite(op.bias, "bias");
        check.require(op.weight_bits >= 2 && op.weight_bits <= 8,
                      "weight_bits must be in [2, 8], got " + std::to_string(op.weight_bits));
        // Symmetric codes with the BatchNorm signs folded in: |code| <= 2^(bits-1) - 1 (never -2^(bits-1)).
        const int64_t limit = (int64_t{1} << (op.weight_bits - 1)) - 1;
        const auto low = op.weight.min().item<int64_t>(), high = op.weight.max().item<int64_t>();
        check.require(low >= -limit && high <= limit,
                      "weight codes must be in [-" + std::to_string(limit) + ", " + std::to_string(limit) +
                          "] for weight_bits " + std::to_string(op.weight_bits) + ", got [" +
                          std::to_string(low) + ", " + std::to_string(high) + "]");
        if (op.kind == OpKind::kQConv) check.codes_out();
        channels_in(op.weight.size(1));
        grouped_out(out_channels);
        out = conv_shape(check, in, op.weight, op.stride, op.padding);
        break;
      }
      case OpKind::kTvSmooth:
        check.tensor(op.tau, "tau", torch::kFloat, 1);
        check.require(op.tau.size(0) > 0, "tau must have one entry per channel");
        check.finite(op.tau, "tau");
        check.require((op.tau >= 0).all().item<bool>(), "tau must be >= 0");
        check.require(in[0] == kUnknown || op.tau.size(0) == in[0],
                      "tau has " + std::to_string(op.tau.size(0)) + " channels, but its input " +
                          value_text(op.inputs[0], with_meta) + " has " + std::to_string(in[0]));
        check.require(op.tv_iters >= 1 && op.tv_iters <= 100,
                      "tv_iters must be in [1, 100], got " + std::to_string(op.tv_iters));
        check.require(std::isfinite(op.tv_eps) && op.tv_eps > 0, "tv_eps must be positive and finite");
        check.require(op.tv_weight == "charbonnier" || op.tv_weight == "perona_malik",
                      "tv_weight must be charbonnier or perona_malik, got '" + op.tv_weight + "'");
        break;
      case OpKind::kQuantize:
        check.codes_out();
        break;
      case OpKind::kAdd:
      case OpKind::kAddToFloat: {
        if (op.kind == OpKind::kAdd) check.codes_out();
        const Shape& other = shapes[static_cast<size_t>(op.inputs[1])];
        for (size_t d = 0; d < 3; ++d) {
          check.require(in[d] == kUnknown || other[d] == kUnknown || in[d] == other[d],
                        "its inputs differ in shape: " + value_text(op.inputs[0], with_meta) + " is " +
                            shape_text(in) + ", " + value_text(op.inputs[1], with_meta) + " is " +
                            shape_text(other));
          if (out[d] == kUnknown) out[d] = other[d];
        }
        break;
      }
      case OpKind::kConcat: {
        const Shape& other = shapes[static_cast<size_t>(op.inputs[1])];
        for (size_t d = 1; d < 3; ++d) {
          check.require(in[d] == kUnknown || other[d] == kUnknown || in[d] == other[d],
                        "its inputs differ in height or width: " + value_text(op.inputs[0], with_meta) +
                            " is " + shape_text(in) + ", " + value_text(op.inputs[1], with_meta) + " is " +
                            shape_text(other));
          if (out[d] == kUnknown) out[d] = other[d];
        }
        out[0] = in[0] == kUnknown || other[0] == kUnknown ? kUnknown : in[0] + other[0];
        break;
      }
      case OpKind::kAvgPool:
        for (size_t d = 1; d < 3; ++d) {
          check.require(in[d] == kUnknown || in[d] >= op.stride,
                        "a " + std::to_string(op.stride) + "x" + std::to_string(op.stride) +
                            " pooling window does not fit its " + shape_text(in) + " input");
          out[d] = in[d] == kUnknown ? kUnknown : in[d] / op.stride;
        }
        break;
      case OpKind::kFloatHead:
        check.tensor(op.weight, "weight", torch::kFloat, 2);
        check.tensor(op.bias, "bias", torch::kFloat, 1);
        check.require(op.weight.size(0) > 0, "weight must be [classes, C] with classes > 0");
        check.require(op.bias.size(0) == op.weight.size(0), "bias must have one entry per class");
        check.finite(op.weight, "weight");
        check.finite(op.bias, "bias");
        channels_in(op.weight.size(1));
        check.require(classes == kUnknown || op.weight.size(0) == classes,
                      "weight has " + std::to_string(op.weight.size(0)) +
                          " classes, but meta.num_classes is " + std::to_string(classes));
        check.require(i + 1 == ops.size(), "the head must be the last operation");
        out = {op.weight.size(0), 1, 1};
        break;
    }
    shapes.push_back(out);
  }
  if (ops.back().kind != OpKind::kFloatHead) {
    throw std::runtime_error(where + ": the last operation must be float_head, got " +
                             op_kind_name(ops.back().kind));
  }
}

/// A JSON value in a message, cut short.
std::string json_text(const nlohmann::json& value) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return text.size() > 60 ? text.substr(0, 57) + "..." : text;
}

}  // namespace

const char* op_kind_name(OpKind kind) {
  for (const auto& [k, name] : kKindNames) {
    if (k == kind) return name;
  }
  return "unknown";
}

OpKind op_kind_from_name(const std::string& name) {
  for (const auto& [kind, n] : kKindNames) {
    if (name == n) return kind;
  }
  throw std::runtime_error("unknown operation kind '" + name + "'");
}

void IntGraph::validate(const std::string& where) const {
  check_graph(*this, where, {kUnknown, kUnknown, kUnknown}, kUnknown);
}

void IntGraph::validate_with_meta(const std::string& where) const {
  const auto fail = [&](const std::string& key, const std::string& what) {
    throw std::runtime_error(where + ": meta" + (key.empty() ? "" : "." + key) + ": " + what);
  };
  if (meta.is_null()) fail("", "missing (a .pdeqint file carries meta: config, input_shape, num_classes)");
  if (!meta.is_object()) fail("", "expected an object, got " + json_text(meta));
  const auto config = meta.find("config");
  if (config == meta.end()) fail("config", "missing");
  if (!config->is_object()) fail("config", "expected an object, got " + json_text(*config));
  try {
    config::parse_config(*config, where + ": meta.config");
  } catch (const config::ConfigError& e) {
    throw std::runtime_error(e.what());  // a damaged file, not a config the user wrote
  }
  const auto shape = meta.find("input_shape");
  if (shape == meta.end()) fail("input_shape", "missing");
  const std::string shape_rule =
      "expected [C, H, W], integers in [1, " + std::to_string(kMaxInputDim) + "], got ";
  if (!shape->is_array() || shape->size() != 3) fail("input_shape", shape_rule + json_text(*shape));
  // An integer entry, huge unsigned values saturated (they fail the range checks below).
  const auto integer = [](const nlohmann::json& entry) {
    if (!entry.is_number_unsigned()) return entry.get<int64_t>();
    return static_cast<int64_t>(std::min<uint64_t>(entry.get<uint64_t>(), INT64_MAX));
  };
  Shape input{};
  for (size_t d = 0; d < 3; ++d) {
    const auto& entry = (*shape)[d];
    if (!entry.is_number_integer()) fail("input_shape", shape_rule + json_text(*shape));
    input[d] = integer(entry);
    if (input[d] < 1 || input[d] > kMaxInputDim) fail("input_shape", shape_rule + json_text(*shape));
  }
  const auto classes = meta.find("num_classes");
  if (classes == meta.end()) fail("num_classes", "missing");
  if (!classes->is_number_integer() || integer(*classes) < 1) {
    fail("num_classes", "expected an integer >= 1, got " + json_text(*classes));
  }
  check_graph(*this, where, input, integer(*classes));
}

nn::TVSmoothFuncOptions tv_smooth_options(const IntOp& op) {
  return nn::TVSmoothFuncOptions()
      .iters(op.tv_iters)
      .eps(op.tv_eps)
      .weight(op.tv_weight == "perona_malik" ? nn::TVWeight::kPeronaMalik : nn::TVWeight::kCharbonnier);
}

int64_t IntGraph::parameter_count() const {
  int64_t count = 0;
  for (const auto& op : ops) {
    for (const auto* t : {&op.weight, &op.weight_scale, &op.bias, &op.tau}) {
      if (t->defined()) count += t->numel();
    }
  }
  return count;
}

}  // namespace pdeq::deploy
