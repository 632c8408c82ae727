#include <pdeq/models/symmetric_block.h>

#include <pdeq/models/shortcut.h>
#include <pdeq/nn/conv2d.h>
#include <pdeq/nn/conv_adjoint.h>

namespace pdeq::models {

SymmetricBlockImpl::SymmetricBlockImpl(BlockOptions options_) : options(std::move(options_)) { reset(); }

void SymmetricBlockImpl::reset() {
  const auto& o = options;
  check_block_options(o);
  TORCH_CHECK(o.dilation() == 1, "a symmetric block has no dilated form, but got dilation ", o.dilation());
  TORCH_CHECK(
      o.transition() == Transition::kConcatPool || (o.in_channels() == o.out_channels() && o.stride() == 1),
      "a symmetric block keeps its width and resolution unless its transition is kConcatPool, but got ",
      o.in_channels(), " -> ", o.out_channels(), " channels at stride ", o.stride());
  const int64_t c = o.in_channels();
  tv_in = make_tv_smooth(o.tv(), /*inner=*/false, c);
  if (tv_in) register_module("tv_in", tv_in);
  act_in = register_module("act_in", quant::FakeQuantize(after_relu(o.act_quant())));
  conv = register_module("conv", nn::QConv2d(nn::QConv2dOptions(c, c, 3).padding(1).weight_quant(
                                     weight_quant_for(o.weight_quant(), c))));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(c));
  tv_mid = make_tv_smooth(o.tv(), /*inner=*/true, c);
  if (tv_mid) register_module("tv_mid", tv_mid);
  act_mid = register_module("act_mid", quant::FakeQuantize(after_relu(o.act_quant())));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(c));
  reset_parameters();
}

void SymmetricBlockImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  conv->reset_parameters();
  for (auto* tv : {&tv_in, &tv_mid}) {
    if (!tv->is_empty()) (*tv)->reset_parameters();
  }
  for (auto* bn : {&bn1, &bn2}) {
    (*bn)->weight.fill_(1.0);
    (*bn)->bias.zero_();
  }
}

void SymmetricBlockImpl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::SymmetricBlock(" << options.in_channels() << ", " << options.out_channels();
  if (options.stride() != 1) stream << ", stride=" << options.stride();
  stream << ", step_size=" << options.step_size();
  if (options.tv()) stream << ", tv=true";
  stream << ")";
}

torch::Tensor SymmetricBlockImpl::branch(const torch::Tensor& x_q) {
  // K is quantized once and shared by K and K^T, so both products see the same low-precision weight.
  const auto k = conv->quantized_weight();
  auto h = bn1(nn::functional::conv2d(x_q, k, {}, {1, 1}, {1, 1}, {1, 1}, 1));
  relu_unless_absorbed(h, tv_mid ? nullptr : act_mid.get());
  if (tv_mid) h = tv_mid(h);
  return bn2(nn::functional::conv2d_adjoint(act_mid->forward_for_conv(h).conv, k, /*padding=*/1, /*groups=*/1,
                                            options.transpose_impl()));
}

torch::Tensor SymmetricBlockImpl::forward(const torch::Tensor& x) { return step(x, /*output_relu=*/true); }

bool SymmetricBlockImpl::defers_output_relu() const {
  return options.transition() != Transition::kConcatPool;
}

torch::Tensor SymmetricBlockImpl::forward_before_relu(const torch::Tensor& x) {
  TORCH_CHECK(defers_output_relu(), "a concat-pool block's output is not a ReLU of one tensor");
  return step(x, /*output_relu=*/false);
}

const quant::FakeQuantizeImpl* SymmetricBlockImpl::input_quantizer() const {
  return tv_in ? nullptr : act_in.get();
}

torch::Tensor SymmetricBlockImpl::step(const torch::Tensor& x, bool output_relu) {
  const auto x_q = act_in->forward_for_conv(tv_in ? tv_in(x) : x, /*exact=*/true);
  auto y = torch::sub(x_q.exact, branch(x_q.conv), options.step_size());
  if (!output_relu) return y;
  y.relu_();
  return options.transition() == Transition::kConcatPool ? concat_and_pool(y, x_q.exact, options) : y;
}

torch::nn::AnyModule symmetric_block(const BlockOptions& options) {
  return torch::nn::AnyModule(SymmetricBlock(options));
}

}  // namespace pdeq::models
