#include <pdeq/models/shortcut.h>

#include <pdeq/models/layers.h>

namespace pdeq::models {

ProjectionShortcut::ProjectionShortcut(torch::nn::Module& block, int64_t in_channels, int64_t out_channels,
                                       int64_t stride, const quant::FakeQuantizeOptions& weight_quant) {
  if (stride == 1 && in_channels == out_channels) return;
  conv = block.register_module("shortcut_conv",
                               nn::QConv2d(nn::QConv2dOptions(in_channels, out_channels, 1)
                                               .stride(stride)
                                               .weight_quant(weight_quant_for(weight_quant, out_channels))));
  bn = block.register_module("shortcut_bn", torch::nn::BatchNorm2d(out_channels));
}

torch::Tensor ProjectionShortcut::operator()(const torch::Tensor& x_q) {
  return is_projection() ? bn(conv(x_q)) : x_q;
}

void ProjectionShortcut::reset_parameters() {
  if (!is_projection()) return;
  torch::NoGradGuard no_grad;
  conv->reset_parameters();
  bn->weight.fill_(1.0);
  bn->bias.zero_();
}

torch::Tensor concat_and_pool(torch::Tensor y, const torch::Tensor& x_q, const BlockOptions& options) {
  const int64_t grow = options.out_channels() - options.in_channels();
  if (grow > 0) y = torch::cat({y, x_q.narrow(1, 0, grow)}, 1);
  if (options.stride() == 2) y = torch::avg_pool2d(y, {2, 2});
  return y;
}

}  // namespace pdeq::models
