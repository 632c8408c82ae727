#include <pdeq/deploy/int_graph.h>

#include <array>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace pdeq::deploy {
namespace {

constexpr std::array<std::pair<OpKind, const char*>, 6> kKindNames{{{OpKind::kFloatStem, "float_stem"},
                                                                    {OpKind::kQuantize, "quantize"},
                                                                    {OpKind::kQConv, "qconv"},
                                                                    {OpKind::kAdd, "add"},
                                                                    {OpKind::kAddToFloat, "add_to_float"},
                                                                    {OpKind::kFloatHead, "float_head"}}};

/// Which kinds of value an op reads and writes, to check the wiring of a loaded file.
enum class ValueType { kFloat, kCodes, kAny };

ValueType output_type(OpKind kind) {
  switch (kind) {
    case OpKind::kFloatStem:
    case OpKind::kAddToFloat:
    case OpKind::kFloatHead:
      return ValueType::kFloat;
    default:
      return ValueType::kCodes;
  }
}

std::vector<ValueType> input_types(OpKind kind) {
  switch (kind) {
    case OpKind::kFloatStem:
    case OpKind::kQuantize:
      return {ValueType::kFloat};
    case OpKind::kQConv:
      return {ValueType::kCodes};
    case OpKind::kAdd:
    case OpKind::kAddToFloat:
      return {ValueType::kCodes, ValueType::kCodes};
    case OpKind::kFloatHead:
      return {ValueType::kAny};
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
  if (ops.empty()) throw std::runtime_error(where + ": the graph has no operations");
  std::vector<ValueType> values{ValueType::kFloat};  // value 0: the image
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
    switch (op.kind) {
      case OpKind::kFloatStem:
        check.tensor(op.weight, "weight", torch::kFloat, 4);
        check.tensor(op.bias, "bias", torch::kFloat, 1);
        check.require(op.bias.size(0) == op.weight.size(0), "bias must have one entry per output channel");
        break;
      case OpKind::kQConv: {
        check.tensor(op.weight, "weight", torch::kInt8, 4);
        check.tensor(op.weight_scale, "weight_scale", torch::kDouble, 1);
        check.tensor(op.bias, "bias", torch::kFloat, 1);
        const int64_t out = op.weight.size(0);
        check.require(out > 0 && op.weight.size(2) == op.weight.size(3) && op.weight.size(2) > 0,
                      "weight must be [O, I, k, k] with O, k > 0");
        check.require(op.weight_scale.size(0) == out && op.bias.size(0) == out,
                      "weight_scale and bias must have one entry per output channel");
        check.require(
            (op.weight_scale > 0).all().item<bool>() && op.weight_scale.isfinite().all().item<bool>(),
            "weight_scale must be positive and finite");
        check.require(op.weight.numel() == 0 || op.weight.abs().max().item<int>() <= 127,
                      "weight codes must be in [-127, 127]");
        check.require(op.weight_bits >= 2 && op.weight_bits <= 8,
                      "weight_bits must be in [2, 8], got " + std::to_string(op.weight_bits));
        check.codes_out();
        break;
      }
      case OpKind::kQuantize:
      case OpKind::kAdd:
        check.codes_out();
        break;
      case OpKind::kAddToFloat:
        break;
      case OpKind::kFloatHead:
        check.tensor(op.weight, "weight", torch::kFloat, 2);
        check.tensor(op.bias, "bias", torch::kFloat, 1);
        check.require(op.bias.size(0) == op.weight.size(0), "bias must have one entry per class");
        check.require(i + 1 == ops.size(), "the head must be the last operation");
        break;
    }
  }
  if (ops.back().kind != OpKind::kFloatHead) {
    throw std::runtime_error(where + ": the last operation must be float_head, got " +
                             op_kind_name(ops.back().kind));
  }
}

int64_t IntGraph::parameter_count() const {
  int64_t count = 0;
  for (const auto& op : ops) {
    for (const auto* t : {&op.weight, &op.weight_scale, &op.bias}) {
      if (t->defined()) count += t->numel();
    }
  }
  return count;
}

}  // namespace pdeq::deploy
