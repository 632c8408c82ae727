#include <pdeq/deploy/graph_builder.h>

#include <pdeq/compat/torch.h>

#include <algorithm>
#include <cmath>

namespace pdeq::deploy {
namespace {

int64_t first(const torch::ExpandingArray<2>& value) { return (*value)[0]; }

/// The square padding of a convolution's options (pdeq's models spell it out; "same"/"valid" are not used).
int64_t explicit_padding(const torch::nn::detail::conv_padding_t<2>& padding, const char* what) {
  const auto* values = compat::get_if<torch::ExpandingArray<2>>(&padding);
  TORCH_INTERNAL_ASSERT(values != nullptr, what, " padding must be explicit");
  return first(*values);
}

}  // namespace

void CalibrationRange::update(const torch::Tensor& t) {
  lo = std::min(lo, t.min().item<double>());
  hi = std::max(hi, t.max().item<double>());
}

CalibrationRange CalibrationRange::widened(double margin, double floor, double ceiling) const {
  const double width = hi - lo;
  return {std::max(lo - margin * width, floor), std::min(hi + margin * width, ceiling)};
}

std::pair<double, int64_t> affine_codes(double lo, double hi) {
  lo = std::min(lo, 0.0);
  hi = std::max(hi, 0.0);
  const double scale = hi > lo ? (hi - lo) / 255.0 : 1.0;
  const int64_t zero_point = std::clamp<int64_t>(std::llround(-lo / scale), 0, 255);
  return {scale, zero_point};
}

ConvGeometry conv_geometry(const nn::QConv2dImpl& conv) {
  const auto& o = conv.options;
  TORCH_CHECK_VALUE(o.dilation() == 1, "dilated convolutions (dilation ", o.dilation(),
                    ") cannot be exported");
  return {o.stride(), o.padding(), o.groups()};
}

int64_t GraphBuilder::add(IntOp op) {
  op.output = static_cast<int64_t>(graph.ops.size()) + 1;
  graph.ops.push_back(std::move(op));
  return graph.ops.back().output;
}

int64_t GraphBuilder::float_stem(const torch::nn::Conv2dImpl& conv, const torch::nn::BatchNorm2dImpl& bn,
                                 bool max_pool) {
  const auto affine = batch_norm_affine(bn);
  IntOp stem;
  stem.kind = OpKind::kFloatStem;
  stem.name = "stem";
  stem.inputs = {0};
  torch::Tensor shift = affine.shift;
  if (conv.bias.defined()) shift = shift + conv.bias.detach().to(torch::kDouble) * affine.scale;
  stem.weight =
      (conv.weight.detach().to(torch::kDouble) * affine.scale.view({-1, 1, 1, 1})).to(torch::kFloat);
  stem.bias = shift.to(torch::kFloat);
  stem.stride = first(conv.options.stride());
  stem.padding = explicit_padding(conv.options.padding(), "stem");
  stem.groups = conv.options.groups();
  stem.relu = true;
  stem.max_pool = max_pool;
  return add(std::move(stem));
}

int64_t GraphBuilder::qconv(int64_t input, const FoldedConv& folded, const WeightCodes& weight,
                            const ConvGeometry& at, bool relu, double scale, int64_t zero_point, int64_t qmax,
                            std::string name) {
  IntOp op;
  op.kind = OpKind::kQConv;
  op.name = std::move(name);
  op.inputs = {input};
  op.weight = folded.codes;
  op.weight_scale = folded.weight_scale;
  op.bias = folded.bias;
  op.stride = at.stride;
  op.padding = at.padding;
  op.groups = at.groups;
  op.relu = relu;
  op.out_scale = scale;
  op.out_zero_point = zero_point;
  op.qmax = qmax;
  op.weight_bits = weight.bits;
  return add(std::move(op));
}

int64_t GraphBuilder::qconv_to_float(int64_t input, const FoldedConv& folded, const WeightCodes& weight,
                                     const ConvGeometry& at, bool relu, std::string name) {
  const int64_t v = qconv(input, folded, weight, at, relu, 1.0, 0, 255, std::move(name));
  graph.ops.back().kind = OpKind::kQConvToFloat;
  return v;
}

int64_t GraphBuilder::float_conv(int64_t input, const torch::Tensor& weight, const torch::Tensor& bias,
                                 const ConvGeometry& at, bool relu, std::string name) {
  IntOp op;
  op.kind = OpKind::kFloatConv;
  op.name = std::move(name);
  op.inputs = {input};
  op.weight = weight.to(torch::kFloat).contiguous();
  op.bias = bias.to(torch::kFloat).contiguous();
  op.stride = at.stride;
  op.padding = at.padding;
  op.groups = at.groups;
  op.relu = relu;
  return add(std::move(op));
}

int64_t GraphBuilder::tv_smooth(int64_t input, const nn::TVSmoothImpl& tv, std::string name) {
  IntOp op;
  op.kind = OpKind::kTvSmooth;
  op.name = std::move(name);
  op.inputs = {input};
  op.tau = tv.step_sizes().detach().to(torch::kFloat).contiguous();
  const auto options = tv.func_options();
  op.tv_iters = options.iters();
  op.tv_eps = options.eps();
  op.tv_weight = options.weight() == nn::TVWeight::kPeronaMalik ? "perona_malik" : "charbonnier";
  return add(std::move(op));
}

int64_t GraphBuilder::quantize(int64_t input, const ActivationGrid& grid, std::string name) {
  IntOp op;
  op.kind = OpKind::kQuantize;
  op.name = std::move(name);
  op.inputs = {input};
  op.out_scale = grid.scale;
  op.out_zero_point = grid.zero_point;
  op.qmax = grid.qmax;
  return add(std::move(op));
}

int64_t GraphBuilder::conv_relu_codes(int64_t input, const FoldedConv& folded, const WeightCodes& weight,
                                      const ConvGeometry& at, const nn::TVSmooth& tv,
                                      const ActivationGrid& grid, const std::string& block,
                                      const std::string& quantizer, const std::string& smoother) {
  if (!tv) {
    return qconv(input, folded, weight, at, true, grid.scale, grid.zero_point, grid.qmax,
                 block + "." + quantizer);
  }
  const int64_t h = qconv_to_float(input, folded, weight, at, true, block + "." + quantizer + ".conv");
  return quantize(tv_smooth(h, *tv, block + "." + smoother), grid, block + "." + quantizer);
}

int64_t GraphBuilder::head(int64_t input, const torch::nn::LinearImpl& fc) {
  IntOp op;
  op.kind = OpKind::kFloatHead;
  op.name = "fc";
  op.inputs = {input};
  op.weight = fc.weight.detach().to(torch::kFloat).clone();
  op.bias = fc.bias.detach().to(torch::kFloat).clone();
  return add(std::move(op));
}

}  // namespace pdeq::deploy
