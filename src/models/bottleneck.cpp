#include <pdeq/models/bottleneck.h>

#include <pdeq/models/layers.h>

namespace pdeq::models {

BottleneckImpl::BottleneckImpl(BlockOptions options_) : options(std::move(options_)) { reset(); }

void BottleneckImpl::reset() {
  const auto& o = options;
  check_block_options(o);
  TORCH_CHECK(o.out_channels() % kBottleneckExpansion == 0, "out_channels must be a multiple of ",
              kBottleneckExpansion, ", but got ", o.out_channels());
  TORCH_CHECK(o.transition() == Transition::kProjection,
              "a bottleneck block changes width and resolution by projection only, but got kConcatPool");

  const int64_t in = o.in_channels();
  const int64_t out = o.out_channels();
  const int64_t width = out / kBottleneckExpansion;
  tv_in = make_tv_smooth(o.tv(), /*inner=*/false, in);
  if (tv_in) register_module("tv_in", tv_in);
  act_in = register_module("act_in", quant::FakeQuantize(after_relu(o.act_quant())));
  conv1 = register_module(
      "conv1",
      nn::QConv2d(nn::QConv2dOptions(in, width, 1).weight_quant(weight_quant_for(o.weight_quant(), width))));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(width));
  tv_mid1 = make_tv_smooth(o.tv(), /*inner=*/true, width);
  if (tv_mid1) register_module("tv_mid1", tv_mid1);
  act_mid1 = register_module("act_mid1", quant::FakeQuantize(after_relu(o.act_quant())));
  conv2 = register_module("conv2", nn::QConv2d(nn::QConv2dOptions(width, width, 3)
                                                   .stride(o.stride())
                                                   .padding(o.dilation())
                                                   .dilation(o.dilation())
                                                   .weight_quant(weight_quant_for(o.weight_quant(), width))));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(width));
  tv_mid2 = make_tv_smooth(o.tv(), /*inner=*/true, width);
  if (tv_mid2) register_module("tv_mid2", tv_mid2);
  act_mid2 = register_module("act_mid2", quant::FakeQuantize(after_relu(o.act_quant())));
  conv3 = register_module(
      "conv3",
      nn::QConv2d(nn::QConv2dOptions(width, out, 1).weight_quant(weight_quant_for(o.weight_quant(), out))));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(out));
  shortcut = ProjectionShortcut(*this, in, out, o.stride(), o.weight_quant());
  reset_parameters();
}

void BottleneckImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  for (auto* conv : {&conv1, &conv2, &conv3}) (*conv)->reset_parameters();
  shortcut.reset_parameters();
  for (auto* bn : {&bn1, &bn2, &bn3}) {
    (*bn)->weight.fill_(1.0);
    (*bn)->bias.zero_();
  }
  for (auto* tv : {&tv_in, &tv_mid1, &tv_mid2}) {
    if (!tv->is_empty()) (*tv)->reset_parameters();
  }
}

void BottleneckImpl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::Bottleneck(" << options.in_channels() << ", " << options.out_channels();
  if (options.stride() != 1) stream << ", stride=" << options.stride();
  if (options.dilation() != 1) stream << ", dilation=" << options.dilation();
  if (options.step_size() != 1.0) stream << ", step_size=" << options.step_size();
  if (options.tv()) stream << ", tv=true";
  stream << ")";
}

torch::Tensor BottleneckImpl::forward(const torch::Tensor& x) {
  const auto x_q = act_in(tv_in ? tv_in(x) : x);
  // In-place ReLUs are safe: batch norm's backward needs its input, not its output.
  auto h = bn1(conv1(x_q));
  relu_unless_absorbed(h, tv_mid1 ? nullptr : act_mid1.get());
  if (tv_mid1) h = tv_mid1(h);
  h = bn2(conv2(act_mid1(h)));
  relu_unless_absorbed(h, tv_mid2 ? nullptr : act_mid2.get());
  if (tv_mid2) h = tv_mid2(h);
  h = bn3(conv3(act_mid2(h)));
  return torch::sub(shortcut(x_q), h, options.step_size()).relu_();
}

torch::nn::AnyModule bottleneck_block(const BlockOptions& options) {
  return torch::nn::AnyModule(Bottleneck(options));
}

}  // namespace pdeq::models
