#include <pdeq/models/basic_block.h>

namespace pdeq::models {

BasicBlockImpl::BasicBlockImpl(BlockOptions options_) : options(std::move(options_)) { reset(); }

void BasicBlockImpl::reset() {
  const auto& o = options;
  check_block_options(o);

  const int64_t in = o.in_channels();
  // With concatenation transitions the residual step itself stays at C_in channels and full resolution.
  const bool concat = o.transition() == Transition::kConcatPool;
  const int64_t out = concat ? in : o.out_channels();
  const int64_t stride = concat ? 1 : o.stride();
  const auto wq = weight_quant_for(o.weight_quant(), out);
  tv_in = make_tv_smooth(o.tv(), /*inner=*/false, in);
  if (tv_in) register_module("tv_in", tv_in);
  act_in = register_module("act_in", quant::FakeQuantize(after_relu(o.act_quant())));
  conv1 = register_module("conv1", nn::QConv2d(nn::QConv2dOptions(in, out, 3)
                                                   .stride(stride)
                                                   .padding(o.dilation())
                                                   .dilation(o.dilation())
                                                   .weight_quant(wq)));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(out));
  tv_mid = make_tv_smooth(o.tv(), /*inner=*/true, out);
  if (tv_mid) register_module("tv_mid", tv_mid);
  act_mid = register_module("act_mid", quant::FakeQuantize(after_relu(o.act_quant())));
  conv2 = register_module(
      "conv2",
      nn::QConv2d(
          nn::QConv2dOptions(out, out, 3).padding(o.dilation()).dilation(o.dilation()).weight_quant(wq)));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(out));
  shortcut = ProjectionShortcut(*this, in, out, stride, o.weight_quant());
  reset_parameters();
}

void BasicBlockImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  conv1->reset_parameters();
  conv2->reset_parameters();
  shortcut.reset_parameters();
  for (auto* tv : {&tv_in, &tv_mid}) {
    if (!tv->is_empty()) (*tv)->reset_parameters();
  }
  for (auto* bn : {&bn1, &bn2}) {
    (*bn)->weight.fill_(1.0);
    (*bn)->bias.zero_();
  }
}

void BasicBlockImpl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::BasicBlock(" << options.in_channels() << ", " << options.out_channels();
  if (options.stride() != 1) stream << ", stride=" << options.stride();
  if (options.dilation() != 1) stream << ", dilation=" << options.dilation();
  if (options.step_size() != 1.0) stream << ", step_size=" << options.step_size();
  if (options.tv()) stream << ", tv=true";
  if (options.transition() == Transition::kConcatPool) stream << ", transition=concat_pool";
  stream << ")";
}

torch::Tensor BasicBlockImpl::branch(const torch::Tensor& x_q) {
  // In-place ReLU is safe: batch norm's backward needs its input, not its output.
  auto h = bn1(conv1(x_q));
  relu_unless_absorbed(h, tv_mid ? nullptr : act_mid.get());
  if (tv_mid) h = tv_mid(h);
  return bn2(conv2(act_mid->forward_for_conv(h).conv));
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) { return step(x, /*output_relu=*/true); }

bool BasicBlockImpl::defers_output_relu() const { return options.transition() != Transition::kConcatPool; }

torch::Tensor BasicBlockImpl::forward_before_relu(const torch::Tensor& x) {
  TORCH_CHECK(defers_output_relu(), "a concat-pool block's output is not a ReLU of one tensor");
  return step(x, /*output_relu=*/false);
}

const quant::FakeQuantizeImpl* BasicBlockImpl::input_quantizer() const {
  return tv_in ? nullptr : act_in.get();
}

torch::Tensor BasicBlockImpl::step(const torch::Tensor& x, bool output_relu) {
  // Branch and shortcut both read the quantized input, as the reference does (its act1_quantizer replaces
  // `data` before either path): the identity path then carries quantized values too, so the whole block
  // runs on low-precision inputs, which is the setting whose stability the paper analyses.
  // conv1 reads x_q as its operand (bfloat16 under autocast); the shortcut reads the exact values, also a
  // projection's: two bfloat16 readers of one tensor would have autograd add their gradients in bfloat16.
  const bool concat = options.transition() == Transition::kConcatPool;
  const auto x_q = act_in->forward_for_conv(tv_in ? tv_in(x) : x, /*exact=*/true);
  // Out of place: for the identity shortcut x_q is saved by conv1 for the backward pass.
  auto y = torch::sub(shortcut(x_q.exact), branch(x_q.conv), options.step_size());
  if (!output_relu) return y;
  y.relu_();
  return concat ? concat_and_pool(y, x_q.exact, options) : y;
}

torch::nn::AnyModule basic_block(const BlockOptions& options) {
  return torch::nn::AnyModule(BasicBlock(options));
}

}  // namespace pdeq::models
