#include <pdeq/deploy/int_model.h>

#include <pdeq/nn/tv_smoothing.h>

#include <ATen/Context.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/nn/functional/conv.h>
#include <torch/nn/functional/pooling.h>

#include <algorithm>
#include <cstring>
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
  if (name == "exact-float") return ResidualMode::kExactFloat;
  if (name == "int8") return ResidualMode::kInt8;
  throw std::invalid_argument("residual mode must be exact, exact-float or int8, but got '" + name + "'");
}

std::string to_string(ResidualMode mode) {
  switch (mode) {
    case ResidualMode::kExact:
      return "exact";
    case ResidualMode::kExactFloat:
      return "exact-float";
    case ResidualMode::kInt8:
      break;
  }
  return "int8";
}

/// A residual add whose branch convolution (and projection shortcut) run on oneDNN's int8 kernels with int32
/// sums, the per-channel scale, the add, ReLU/clipping and the rounding to the next grid fused.
struct IntegerModel::FusedAdd {
  int64_t input = 0;  ///< value: the branch convolution's input codes
  std::unique_ptr<OnednnInt8Conv> conv;
  int64_t shortcut = -1;  ///< value added (identity shortcut), or -1 with a projection
  /// The shortcut's codes are copied into the codes output and summed there; else the sum is a float tensor
  /// (in output units) that holds the shortcut or the projection's output before the branch adds to it.
  bool shortcut_in_dst = false;
  int64_t projection_input = -1;               ///< value: the projection's input codes
  std::unique_ptr<OnednnInt8Conv> projection;  ///< float output, in the add's output units
  double out_scale = 0.0;                      ///< codes output: the add's scale; float output: 0
  int64_t qmax = 255;                          ///< codes output
};

namespace {

/// The spec of a convolution whose output is in units of `unit` (the next grid's step, or 1 for float).
Int8ConvSpec int8_spec(const IntOp& conv, double input_scale, double unit) {
  Int8ConvSpec spec;
  spec.out_channels = conv.weight.size(0);
  spec.in_channels = conv.weight.size(1) * conv.groups;
  spec.groups = conv.groups;
  spec.kernel = conv.weight.size(2);
  spec.stride = conv.stride;
  spec.padding = conv.padding;
  const auto weight = conv.weight.contiguous();
  spec.weight.assign(weight.data_ptr<int8_t>(), weight.data_ptr<int8_t>() + weight.numel());
  const auto multiplier = (conv.weight_scale * (input_scale / unit)).to(torch::kFloat).contiguous();
  spec.multiplier.assign(multiplier.data_ptr<float>(), multiplier.data_ptr<float>() + multiplier.numel());
  const auto offset = (conv.bias.to(torch::kDouble) / unit).to(torch::kFloat).contiguous();
  spec.offset.assign(offset.data_ptr<float>(), offset.data_ptr<float>() + offset.numel());
  return spec;
}

/// The weight codes as float (or double) weights whose convolution of integer codes sums exactly: integers
/// are exact in fp32 up to 2^24 and |sum of codes x weights| <= 255 * max|w| * fan-in.
torch::Tensor exact_sum_weight(const IntOp& conv) {
  const double bound =
      255.0 * conv.weight.abs().max().item<double>() * static_cast<double>(conv.weight[0].numel());
  const auto dtype = bound < 16777216.0 ? torch::kFloat : torch::kDouble;
  return conv.weight.to(dtype).contiguous(at::MemoryFormat::ChannelsLast);
}

/// [N, C_out, H', W'] of `conv` on the codes `x` [N, C_in, H, W].
std::vector<int64_t> output_shape(const OnednnInt8Conv& conv, const torch::Tensor& x) {
  return {x.size(0), conv.spec().out_channels, conv.output_size(x.size(2)), conv.output_size(x.size(3))};
}

/// `conv` on the channels-last codes `x`, into the channels-last `out` (its dtype as the spec says).
void run_on(const OnednnInt8Conv& conv, const torch::Tensor& x, const torch::Tensor& out) {
  conv.run(x.size(0), x.size(2), x.size(3), reinterpret_cast<const uint8_t*>(x.data_ptr()), out.data_ptr());
}

/// An uninitialised channels-last tensor of quint8 codes (zero point 0) or of floats.
torch::Tensor empty_output(const std::vector<int64_t>& shape, bool codes, double scale) {
  return codes ? at::_empty_affine_quantized(shape, torch::TensorOptions().dtype(torch::kQUInt8), scale, 0,
                                             at::MemoryFormat::ChannelsLast)
               : torch::empty(shape, torch::TensorOptions().memory_format(at::MemoryFormat::ChannelsLast));
}

}  // namespace

IntegerModel::IntegerModel(IntGraph graph, ResidualMode mode) : graph_(std::move(graph)), mode_(mode) {
  graph_.validate("integer model");
  select_quantized_engine();
  torch::NoGradGuard no_grad;
  const auto& ops = graph_.ops;
  exact_weight_.resize(ops.size());
  fused_.resize(ops.size());
  run_by_add_.assign(ops.size(), false);
  std::vector<int> uses(ops.size() + 1, 0);
  for (const auto& op : ops) {
    for (const int64_t value : op.inputs) ++uses[static_cast<size_t>(value)];
  }
  // Value v > 0 is op v-1's output.
  const auto producer = [&](int64_t value) -> const IntOp* {
    return value < 1 ? nullptr : &ops[static_cast<size_t>(value - 1)];
  };
  const bool exact = mode_ != ResidualMode::kInt8;
  // The convolutions that feed a residual add: the branch's last one and a projection shortcut, each read by
  // the add only (a block input that a convolution wrote, which the block's first convolution also reads,
  // stays codes).
  const auto add_inputs = [&](const IntOp& add, std::vector<int64_t>& convs, std::vector<int64_t>& others) {
    for (const int64_t value : add.inputs) {
      const bool feeds_only_the_add = producer(value) != nullptr && producer(value)->kind == OpKind::kQConv &&
                                      uses[static_cast<size_t>(value)] == 1;
      (feeds_only_the_add ? convs : others).push_back(value);
    }
  };
  for (const auto& add : ops) {
    if (!exact || (add.kind != OpKind::kAdd && add.kind != OpKind::kAddToFloat)) continue;
    std::vector<int64_t> convs, others;
    add_inputs(add, convs, others);
    // The convolutions feeding the add keep whole accumulators (see ResidualMode::kExact).
    for (const int64_t value : convs) {
      exact_weight_[static_cast<size_t>(value - 1)] = exact_sum_weight(*producer(value));
    }
  }
  // Convolutions into float (before TV smoothing) keep whole sums in every mode.
  for (size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].kind == OpKind::kQConvToFloat) exact_weight_[i] = exact_sum_weight(ops[i]);
  }
  const auto is_codes_with_zero_point_0 = [&](int64_t value) {
    const IntOp* p = producer(value);
    if (p == nullptr || p->out_zero_point != 0) return false;
    return p->kind == OpKind::kQuantize || p->kind == OpKind::kAdd ||
           (p->kind == OpKind::kQConv && !exact_weight_[static_cast<size_t>(value - 1)].defined());
  };
  for (size_t i = 0; i < ops.size(); ++i) {
    const IntOp& add = ops[i];
    if (add.kind != OpKind::kAdd && add.kind != OpKind::kAddToFloat) continue;
    std::vector<int64_t> convs, others;
    add_inputs(add, convs, others);
    if (mode_ != ResidualMode::kExact || !onednn_int8_available() || convs.empty()) continue;
    // Fusable: every convolution feeds only this add, has no ReLU of its own and reads codes with zero point
    // 0; codes outputs have zero point 0 (oneDNN's clipping at [0, qmax] is the quantizer's clamp).
    const bool fits = std::all_of(convs.begin(), convs.end(),
                                  [&](int64_t value) {
                                    const IntOp& conv = *producer(value);
                                    return uses[static_cast<size_t>(value)] == 1 && !conv.relu &&
                                           is_codes_with_zero_point_0(conv.inputs[0]);
                                  }) &&
                      (add.kind == OpKind::kAddToFloat || add.out_zero_point == 0);
    if (!fits) continue;
    const bool codes_output = add.kind == OpKind::kAdd;
    const double unit = codes_output ? add.out_scale : 1.0;
    const auto input_scale = [&](int64_t value) { return producer(producer(value)->inputs[0])->out_scale; };
    auto fused = std::make_shared<FusedAdd>();
    fused->out_scale = codes_output ? add.out_scale : 0.0;
    fused->qmax = add.qmax;
    const int64_t main = convs.back();
    const IntOp& main_conv = *producer(main);
    fused->input = main_conv.inputs[0];
    Int8ConvSpec spec = int8_spec(main_conv, input_scale(main), unit);
    if (convs.size() == 2) {
      const IntOp& projection = *producer(convs.front());
      fused->projection_input = projection.inputs[0];
      Int8ConvSpec projection_spec = int8_spec(projection, input_scale(convs.front()), unit);
      projection_spec.codes_output = false;
      fused->projection = std::make_unique<OnednnInt8Conv>(std::move(projection_spec));
    } else {
      fused->shortcut = others.at(0);
      fused->shortcut_in_dst = codes_output && is_codes_with_zero_point_0(fused->shortcut);
    }
    if (fused->shortcut_in_dst) {
      // One kernel: the clip at [0, qmax] is the add's ReLU and the quantizer's clamp (codes are unsigned).
      spec.codes_output = true;
      spec.qmax = add.qmax;
      spec.accumulate_scale = static_cast<float>(producer(fused->shortcut)->out_scale / add.out_scale);
    } else {
      // Float sum in output units; codes are rounded from it afterwards.
      spec.codes_output = false;
      spec.relu = add.relu && !codes_output;
      spec.accumulate_scale = 1.0f;
    }
    fused->conv = std::make_unique<OnednnInt8Conv>(std::move(spec));
    for (const int64_t value : convs) run_by_add_[static_cast<size_t>(value - 1)] = true;
    fused_[i] = std::move(fused);
  }
  // The other convolutions write codes; on oneDNN too, so that exact mode does not round through LibTorch's
  // requantisation (and skips its per-call conversions).
  int8_conv_.resize(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    const IntOp& op = ops[i];
    const bool to_codes = op.kind == OpKind::kQConv && !exact_weight_[i].defined() && op.out_zero_point == 0;
    if (mode_ != ResidualMode::kExact || !onednn_int8_available() ||
        !(to_codes || op.kind == OpKind::kQConvToFloat) || !is_codes_with_zero_point_0(op.inputs[0])) {
      continue;
    }
    Int8ConvSpec spec = int8_spec(op, producer(op.inputs[0])->out_scale, to_codes ? op.out_scale : 1.0);
    spec.codes_output = to_codes;
    // Codes: without ReLU the clip at 0 cuts negative sums that LibTorch's requantisation also clamps to
    // the zero point 0: the same codes.
    spec.qmax = op.qmax;
    spec.relu = op.relu;
    int8_conv_[i] = std::make_shared<OnednnInt8Conv>(std::move(spec));
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    const IntOp& op = ops[i];
    if (op.kind != OpKind::kQConv || exact_weight_[i].defined() || int8_conv_[i]) {
      packed_.emplace_back();
      continue;
    }
    const auto qweight = at::_make_per_channel_quantized_tensor(
        op.weight, op.weight_scale, torch::zeros({op.weight.size(0)}, torch::kLong), 0);
    const c10::List<int64_t> stride{op.stride, op.stride}, padding{op.padding, op.padding}, dilation{1, 1};
    packed_.push_back(
        call_op("quantized::conv2d_prepack", "", {qweight, op.bias, stride, padding, dilation, op.groups}));
  }
  // The op after which each value is read no more (a fused add reads its convolutions' inputs itself).
  last_use_.assign(ops.size() + 1, 0);
  for (size_t i = 0; i < ops.size(); ++i) {
    if (run_by_add_[i]) continue;
    for (const int64_t value : ops[i].inputs) last_use_[static_cast<size_t>(value)] = i;
    if (const auto& fused = fused_[i]) {
      for (const int64_t value : {fused->input, fused->projection_input, fused->shortcut}) {
        if (value >= 0) last_use_[static_cast<size_t>(value)] = i;
      }
    }
  }
}

torch::Tensor IntegerModel::run_fused_add(const FusedAdd& fused, const IntOp& add,
                                          const std::vector<torch::Tensor>& values) {
  const auto channels_last = [](const torch::Tensor& t) {
    return t.contiguous(at::MemoryFormat::ChannelsLast);
  };
  const auto codes = [&](int64_t value) {
    auto x = channels_last(values[static_cast<size_t>(value)]);
    TORCH_CHECK(x.is_quantized() && x.scalar_type() == torch::kQUInt8, "fused add '", add.name,
                "': expected uint8 codes");
    return x;
  };
  const auto x = codes(fused.input);
  const auto shape = output_shape(*fused.conv, x);
  if (fused.shortcut_in_dst) {
    const auto s = codes(fused.shortcut);
    TORCH_CHECK(s.sizes() == c10::IntArrayRef(shape), "fused add '", add.name, "': shortcut ", s.sizes(),
                " vs branch ", shape);
    auto y = empty_output(shape, /*codes=*/true, fused.out_scale);
    std::memcpy(y.data_ptr(), s.data_ptr(), static_cast<size_t>(s.numel()));
    run_on(*fused.conv, x, y);
    return y;
  }
  torch::Tensor sum;
  if (fused.projection) {
    sum = empty_output(shape, /*codes=*/false, 0.0);
    run_on(*fused.projection, codes(fused.projection_input), sum);
  } else {
    const auto& shortcut = values[static_cast<size_t>(fused.shortcut)];
    TORCH_CHECK(shortcut.sizes() == c10::IntArrayRef(shape), "fused add '", add.name, "': shortcut ",
                shortcut.sizes(), " vs branch ", shape);
    sum = prepare(shortcut);
    if (fused.out_scale > 0) sum = sum / fused.out_scale;
    sum = sum.contiguous(at::MemoryFormat::ChannelsLast);
  }
  run_on(*fused.conv, x, sum);
  if (fused.out_scale == 0) return sum;
  // Round half to even, as the fused kernels and the fake quantizer do; the clamp is ReLU and the grid's top.
  const auto rounded = sum.clamp_(0, static_cast<double>(fused.qmax)).round_().to(torch::kByte);
  return at::_make_per_tensor_quantized_tensor(rounded, fused.out_scale, 0);
}

std::string IntegerModel::residual_kernel() const {
  if (mode_ == ResidualMode::kInt8) return "int8";
  bool fused = false, unfused = false;
  for (size_t i = 0; i < graph_.ops.size(); ++i) {
    const auto kind = graph_.ops[i].kind;
    if (kind != OpKind::kAdd && kind != OpKind::kAddToFloat) continue;
    const bool feeds = std::any_of(graph_.ops[i].inputs.begin(), graph_.ops[i].inputs.end(), [&](int64_t v) {
      return v > 0 && exact_weight_[static_cast<size_t>(v - 1)].defined();
    });
    if (!feeds) continue;
    (fused_[i] ? fused : unfused) = true;
  }
  if (fused && unfused) return "onednn-int32+fp32";
  return fused ? "onednn-int32" : "fp32";
}

torch::Tensor IntegerModel::forward(const torch::Tensor& images, const Observer& observer) const {
  TORCH_CHECK(images.dim() == 4, "images must be [N, C, H, W], but got ", images.sizes());
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> values{images.to(torch::kFloat)};
  values.reserve(graph_.ops.size() + 1);
  for (size_t i = 0; i < graph_.ops.size(); ++i) {
    torch::Tensor y;  // stays undefined for a convolution that its fused add runs
    if (fused_[i]) {
      y = run_fused_add(*fused_[i], graph_.ops[i], values);
    } else if (!run_by_add_[i]) {
      y = run_op(i, values);
    }
    if (observer) observer(graph_.ops[i], y);
    values.push_back(std::move(y));
    // Freed as soon as read for the last time: a batch's activations need not all be alive at once (a
    // MobileNetV2 at batch 500 holds gigabytes of them otherwise).
    for (const int64_t value : graph_.ops[i].inputs) {
      if (last_use_[static_cast<size_t>(value)] == i) values[static_cast<size_t>(value)].reset();
    }
    if (const auto& fused = fused_[i]) {
      for (const int64_t value : {fused->input, fused->projection_input, fused->shortcut}) {
        if (value >= 0 && last_use_[static_cast<size_t>(value)] == i)
          values[static_cast<size_t>(value)].reset();
      }
    }
  }
  return values.back();
}

torch::Tensor IntegerModel::run_op(size_t i, const std::vector<torch::Tensor>& values) const {
  const IntOp& op = graph_.ops[i];
  const auto input = [&](size_t j) -> const torch::Tensor& {
    return values[static_cast<size_t>(op.inputs[j])];
  };
  torch::Tensor y;
  switch (op.kind) {
    case OpKind::kFloatStem:
      y = torch::conv2d(input(0), op.weight, op.bias, op.stride, op.padding, 1, op.groups);
      y.relu_();
      if (op.max_pool) y = torch::max_pool2d(y, {3, 3}, {2, 2}, {1, 1});
      break;
    case OpKind::kFloatConv:
      y = torch::conv2d(input(0), op.weight, op.bias, op.stride, op.padding, 1, op.groups);
      if (op.relu) y.relu_();
      break;
    case OpKind::kQuantize:
      // Channels-last codes: the layout oneDNN's int8 convolutions work in (no reorder per layer).
      y = quantize_codes(input(0).contiguous(at::MemoryFormat::ChannelsLast), op.out_scale, op.out_zero_point,
                         op.qmax);
      break;
    case OpKind::kQConv:
    case OpKind::kQConvToFloat:
      if (int8_conv_[i]) {
        const auto x = input(0).contiguous(at::MemoryFormat::ChannelsLast);
        const auto& conv = *int8_conv_[i];
        y = empty_output(output_shape(conv, x), conv.spec().codes_output, op.out_scale);
        run_on(conv, x, y);
        break;
      }
      if (exact_weight_[i].defined()) {
        // value = s_x * s_w[o] * sum (x - z_x) w + bias[o], the sum exact (see the constructor).
        const auto& x = input(0);
        const auto& weight = exact_weight_[i];
        auto codes = x.int_repr().to(weight.scalar_type());
        if (x.q_zero_point() != 0) codes.sub_(x.q_zero_point());
        y = torch::conv2d(codes, weight, {}, op.stride, op.padding, 1, op.groups).to(torch::kFloat);
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
    case OpKind::kTvSmooth:
      y = nn::functional::tv_smooth(input(0).contiguous(), op.tau, tv_smooth_options(op));
      break;
  }
  return y;
}

}  // namespace pdeq::deploy
