#include <pdeq/deploy/int_model.h>

#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/pooling.h>

#include <algorithm>
#include <stdexcept>

namespace pdeq::deploy {
namespace {

/// Calls a registered operator boxed (the quantized ops have no typed C++ API in LibTorch 1.13).
c10::IValue call_op(const char* name, const char* overload, std::vector<c10::IValue> stack) {
  const auto op = c10::Dispatcher::singleton().findSchemaOrThrow(name, overload);
  op.callBoxed(&stack);
  return stack.at(0);
}

/// Codes above qmax clipped (activation quantizers below 8 bits: [0, 2^b - 1]); 8-bit outputs pass.
torch::Tensor clamp_codes(torch::Tensor q, int64_t qmax) {
  if (qmax >= 255) return q;
  // clamp (not clamp_max) has a quantized kernel in LibTorch 1.13.
  return torch::clamp(q, c10::nullopt, static_cast<double>(qmax - q.q_zero_point()) * q.q_scale());
}

torch::Tensor prepare(const torch::Tensor& v) { return v.is_quantized() ? v.dequantize() : v; }

}  // namespace

std::string select_quantized_engine() {
  const auto engines = at::globalContext().supportedQEngines();
  if (std::find(engines.begin(), engines.end(), at::QEngine::ONEDNN) == engines.end()) {
    throw std::runtime_error("this LibTorch has no oneDNN quantized engine; integer inference needs it");
  }
  at::globalContext().setQEngine(at::QEngine::ONEDNN);
  return "onednn";
}

IntegerModel::IntegerModel(IntGraph graph) : graph_(std::move(graph)) {
  graph_.validate("integer model");
  select_quantized_engine();
  torch::NoGradGuard no_grad;
  for (const auto& op : graph_.ops) {
    if (op.kind != OpKind::kQConv) {
      packed_.emplace_back();
      continue;
    }
    const auto qweight = at::_make_per_channel_quantized_tensor(
        op.weight, op.weight_scale, torch::zeros({op.weight.size(0)}, torch::kLong), 0);
    const c10::List<int64_t> stride{op.stride, op.stride}, padding{op.padding, op.padding}, dilation{1, 1};
    packed_.push_back(
        call_op("quantized::conv2d_prepack", "", {qweight, op.bias, stride, padding, dilation, int64_t{1}}));
  }
}

torch::Tensor IntegerModel::forward(const torch::Tensor& images, const Observer& observer) const {
  TORCH_CHECK(images.dim() == 4, "images must be [N, C, H, W], but got ", images.sizes());
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> values{images.to(torch::kFloat)};
  values.reserve(graph_.ops.size() + 1);
  for (size_t i = 0; i < graph_.ops.size(); ++i) {
    const IntOp& op = graph_.ops[i];
    const auto input = [&](size_t j) -> const torch::Tensor& {
      return values[static_cast<size_t>(op.inputs[j])];
    };
    torch::Tensor y;
    switch (op.kind) {
      case OpKind::kFloatStem:
        y = torch::conv2d(input(0), op.weight, op.bias, op.stride, op.padding);
        y.relu_();
        if (op.max_pool) y = torch::max_pool2d(y, {3, 3}, {2, 2}, {1, 1});
        break;
      case OpKind::kQuantize:
        // Channels-last codes: the layout oneDNN's int8 convolutions work in (no reorder per layer).
        y = clamp_codes(torch::quantize_per_tensor(input(0).contiguous(at::MemoryFormat::ChannelsLast),
                                                   op.out_scale, op.out_zero_point, torch::kQUInt8),
                        op.qmax);
        break;
      case OpKind::kQConv:
        y = clamp_codes(call_op(op.relu ? "quantized::conv2d_relu" : "quantized::conv2d", "new",
                                {input(0), packed_[i], op.out_scale, op.out_zero_point})
                            .toTensor(),
                        op.qmax);
        break;
      case OpKind::kAdd:
        y = clamp_codes(call_op(op.relu ? "quantized::add_relu" : "quantized::add", "",
                                {input(0), input(1), op.out_scale, op.out_zero_point})
                            .toTensor(),
                        op.qmax);
        break;
      case OpKind::kAddToFloat:
        y = input(0).dequantize() + input(1).dequantize();
        if (op.relu) y.relu_();
        break;
      case OpKind::kFloatHead:
        y = torch::linear(prepare(input(0)).mean({2, 3}), op.weight, op.bias);
        break;
    }
    if (observer) observer(op, y);
    values.push_back(std::move(y));
  }
  return values.back();
}

}  // namespace pdeq::deploy
