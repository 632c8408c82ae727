#include <pdeq/nn/qconv.h>

#include <pdeq/nn/conv2d.h>

#include <torch/nn/init.h>
#include <torch/types.h>

#include <cmath>

namespace pdeq::nn {

QConv2dOptions::QConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel_size)
    : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}

QConv2dImpl::QConv2dImpl(QConv2dOptions options_) : options(std::move(options_)) { reset(); }

void QConv2dImpl::reset() {
  const auto& o = options;
  TORCH_CHECK(o.in_channels() > 0, "in_channels must be positive, but got ", o.in_channels());
  TORCH_CHECK(o.out_channels() > 0, "out_channels must be positive, but got ", o.out_channels());
  TORCH_CHECK(o.kernel_size() > 0, "kernel_size must be positive, but got ", o.kernel_size());
  TORCH_CHECK(o.stride() > 0, "stride must be positive, but got ", o.stride());
  TORCH_CHECK(o.padding() >= 0, "padding must be non-negative, but got ", o.padding());
  TORCH_CHECK(o.dilation() > 0, "dilation must be positive, but got ", o.dilation());
  TORCH_CHECK(o.groups() > 0, "groups must be positive, but got ", o.groups());
  TORCH_CHECK(o.in_channels() % o.groups() == 0, "in_channels must be divisible by groups (", o.groups(),
              "), but got ", o.in_channels());
  TORCH_CHECK(o.out_channels() % o.groups() == 0, "out_channels must be divisible by groups (", o.groups(),
              "), but got ", o.out_channels());
  TORCH_CHECK(o.weight_quant().target() == quant::QuantTarget::kWeight,
              "weight_quant target must be kWeight, but got kActivation");
  // -1 asks for one alpha per output channel without repeating the count.
  auto weight_quant_options = o.weight_quant();
  if (weight_quant_options.channels() == -1) weight_quant_options.channels(o.out_channels());
  TORCH_CHECK(weight_quant_options.channels() == 0 || weight_quant_options.channels() == o.out_channels(),
              "weight_quant channels must be 0 (per tensor), -1 or out_channels (", o.out_channels(),
              ") (per channel), but got ", weight_quant_options.channels());

  weight = register_parameter("weight", torch::empty({o.out_channels(), o.in_channels() / o.groups(),
                                                      o.kernel_size(), o.kernel_size()}));
  if (o.bias()) {
    bias = register_parameter("bias", torch::empty({o.out_channels()}));
  } else {
    // Registered undefined, as torch::nn::Conv2d does, so the module's state has the same keys either way.
    bias = register_parameter("bias", torch::Tensor(), /*requires_grad=*/false);
  }
  weight_quant = register_module("weight_quant", quant::FakeQuantize(weight_quant_options));
  reset_parameters();
}

void QConv2dImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_normal_(weight, /*a=*/0, torch::kFanOut, torch::kReLU);
  if (bias.defined()) {
    const double fan_in = static_cast<double>(weight.size(1) * weight.size(2) * weight.size(3));
    const double bound = 1.0 / std::sqrt(fan_in);
    bias.uniform_(-bound, bound);
  }
}

void QConv2dImpl::pretty_print(std::ostream& stream) const {
  const auto& o = options;
  stream << "pdeq::nn::QConv2d(" << o.in_channels() << ", " << o.out_channels()
         << ", kernel_size=" << o.kernel_size();
  if (o.stride() != 1) stream << ", stride=" << o.stride();
  if (o.padding() != 0) stream << ", padding=" << o.padding();
  if (o.dilation() != 1) stream << ", dilation=" << o.dilation();
  if (o.groups() != 1) stream << ", groups=" << o.groups();
  if (o.bias()) stream << ", bias=true";
  // The current bit width (the schedule changes it), not the initial one.
  const int64_t bits = weight_quant ? weight_quant->bits() : o.weight_quant().bits();
  if (bits < quant::kFullPrecisionBits) stream << ", weight_bits=" << bits;
  if (o.weight_quant().channels() != 0) stream << ", per_channel=true";
  stream << ")";
}

torch::Tensor QConv2dImpl::quantized_weight() {
  // A float layer skips the quantizer entirely (no standardisation, no autograd node): float training
  // must cost exactly a plain convolution.
  if (weight_quant->passes_through()) return weight;
  return weight_quant->forward(weight);
}

torch::Tensor QConv2dImpl::forward(const torch::Tensor& x) {
  const int64_t s = options.stride();
  const int64_t p = options.padding();
  const int64_t d = options.dilation();
  return functional::conv2d(x, quantized_weight(), bias, {s, s}, {p, p}, {d, d}, options.groups());
}

}  // namespace pdeq::nn
