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

/// Float values of codes (LibTorch 1.13 without FBGEMM dequantizes element by element; this is vectorised).
torch::Tensor prepare(const torch::Tensor& v) {
  if (!v.is_quantized()) return v;
  auto values = v.int_repr().to(torch::kFloat);
  if (v.q_zero_point() != 0) values.sub_(v.q_zero_point());
  return values.mul_(v.q_scale());
}

/// quint8 codes round(v / scale) + zero_point, clamped to [0, qmax] (what quantize_per_tensor computes, which
/// LibTorch 1.13 without FBGEMM does element by element).
torch::Tensor quantize_codes(const torch::Tensor& v, double scale, int64_t zero_point, int64_t qmax) {
  auto codes = (v / scale).round_();
  if (zero_point != 0) codes.add_(zero_point);
  codes = codes.clamp_(0, static_cast<double>(std::min<int64_t>(qmax, 255))).to(torch::kByte);
  return at::_make_per_tensor_quantized_tensor(codes, scale, zero_point);
}

}  // namespace

std::string select_quantized_engine() {
  const auto engines = at::globalContext().supportedQEngines();
  if (std::find(engines.begin(), engines.end(), at::QEngine::ONEDNN) == engines.end()) {
    throw std::runtime_error("this LibTorch has no oneDNN quantized engine; integer inference needs it");
  }
  at::globalContext().setQEngine(at::QEngine::ONEDNN);
  return "onednn";
}

ResidualMode parse_residual_mode(const std::string& name) {
  if (name == "exact") return ResidualMode::kExact;
  if (name == "int8") return ResidualMode::kInt8;
  throw std::invalid_argument("residual mode must be exact or int8, but got '" + name + "'");
}

std::string to_string(ResidualMode mode) { return mode == ResidualMode::kExact ? "exact" : "int8"; }

IntegerModel::IntegerModel(IntGraph graph, ResidualMode mode) : graph_(std::move(graph)), mode_(mode) {
  graph_.validate("integer model");
  select_quantized_engine();
  torch::NoGradGuard no_grad;
  exact_weight_.resize(graph_.ops.size());
  if (mode_ == ResidualMode::kExact) {
    for (const auto& op : graph_.ops) {
      if (op.kind != OpKind::kAdd && op.kind != OpKind::kAddToFloat) continue;
      for (const int64_t value : op.inputs) {
        const auto producer = static_cast<size_t>(value - 1);  // value 0 is the images
        if (value < 1 || graph_.ops[producer].kind != OpKind::kQConv) continue;
        const IntOp& conv = graph_.ops[producer];
        // |sum of codes x weights| <= 255 * max|w| * fan-in: integers are exact in fp32 up to 2^24.
        const double bound =
            255.0 * conv.weight.abs().max().item<double>() * static_cast<double>(conv.weight[0].numel());
        const auto dtype = bound < 16777216.0 ? torch::kFloat : torch::kDouble;
        exact_weight_[producer] = conv.weight.to(dtype).contiguous(at::MemoryFormat::ChannelsLast);
      }
    }
  }
  for (size_t i = 0; i < graph_.ops.size(); ++i) {
    const IntOp& op = graph_.ops[i];
    if (op.kind != OpKind::kQConv || exact_weight_[i].defined()) {
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
        y = quantize_codes(input(0).contiguous(at::MemoryFormat::ChannelsLast), op.out_scale,
                           op.out_zero_point, op.qmax);
        break;
      case OpKind::kQConv:
        if (exact_weight_[i].defined()) {
          // value = s_x * s_w[o] * sum (x - z_x) w + bias[o], the sum exact (see the constructor).
          const auto& x = input(0);
          const auto& weight = exact_weight_[i];
          auto codes = x.int_repr().to(weight.scalar_type());
          if (x.q_zero_point() != 0) codes.sub_(x.q_zero_point());
          y = torch::conv2d(codes, weight, {}, op.stride, op.padding).to(torch::kFloat);
          // One float rounding of the exact sum, as the fake-quant convolution's own.
          y.mul_((op.weight_scale * x.q_scale()).to(torch::kFloat).view({1, -1, 1, 1}))
              .add_(op.bias.view({1, -1, 1, 1}));
          if (op.relu) y.relu_();
          break;
        }
        y = clamp_codes(call_op(op.relu ? "quantized::conv2d_relu" : "quantized::conv2d", "new",
                                {input(0), packed_[i], op.out_scale, op.out_zero_point})
                            .toTensor(),
                        op.qmax);
        break;
      case OpKind::kAdd:
        if (!input(0).is_quantized() || !input(1).is_quantized()) {
          auto sum = prepare(input(0)) + prepare(input(1));
          if (op.relu) sum.relu_();
          y = quantize_codes(sum, op.out_scale, op.out_zero_point, op.qmax);
          break;
        }
        y = clamp_codes(call_op(op.relu ? "quantized::add_relu" : "quantized::add", "",
                                {input(0), input(1), op.out_scale, op.out_zero_point})
                            .toTensor(),
                        op.qmax);
        break;
      case OpKind::kAddToFloat:
        y = prepare(input(0)) + prepare(input(1));
        if (op.relu) y.relu_();
        break;
      case OpKind::kFloatHead:
        y = torch::linear(prepare(input(0)).mean({2, 3}), op.weight, op.bias);
        break;
      case OpKind::kConcat:
        y = torch::cat({prepare(input(0)), prepare(input(1))}, 1);
        break;
      case OpKind::kAvgPool:
        y = torch::avg_pool2d(input(0), {op.stride, op.stride});
        break;
    }
    if (observer) observer(op, y);
    values.push_back(std::move(y));
  }
  return values.back();
}

}  // namespace pdeq::deploy
