#include <pdeq/models/mobilenetv2.h>

#include <pdeq/models/layers.h>

#include <array>
#include <cmath>
#include <initializer_list>
#include <string>

namespace pdeq::models {
namespace {

constexpr int64_t kStemChannels = 16;

void check_options(const InvertedResidualOptions& o) {
  TORCH_CHECK(o.in_channels() > 0, "in_channels must be positive, but got ", o.in_channels());
  TORCH_CHECK(o.out_channels() > 0, "out_channels must be positive, but got ", o.out_channels());
  TORCH_CHECK(o.stride() == 1 || o.stride() == 2, "stride must be 1 or 2, but got ", o.stride());
  TORCH_CHECK(o.expand_ratio() >= 1, "expand_ratio must be at least 1, but got ", o.expand_ratio());
  TORCH_CHECK(std::isfinite(o.step_size()), "step_size must be finite, but got ", o.step_size());
  TORCH_CHECK(o.act_quant().channels() == 0,
              "act_quant channels must be 0 (one alpha per activation tensor), but got ",
              o.act_quant().channels());
}

void reset_norms(std::initializer_list<torch::nn::BatchNorm2d*> norms) {
  for (auto* bn : norms) {
    (*bn)->weight.fill_(1.0);
    (*bn)->bias.zero_();
  }
}

}  // namespace

std::vector<InvertedResidualStage> cifar_mobilenetv2_stages() {
  // {t, c, n, s} per stage (Sandler et al. 2018, Table 2), with the reference's stride 1 in the second stage
  // and a stride-1 stem for 32x32 inputs.
  return {{1, 16, 1, 1}, {6, 24, 2, 1},  {6, 32, 3, 2}, {6, 64, 4, 2},
          {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
}

InvertedResidualOptions::InvertedResidualOptions(int64_t in_channels, int64_t out_channels, int64_t stride,
                                                 int64_t expand_ratio)
    : in_channels_(in_channels), out_channels_(out_channels), stride_(stride), expand_ratio_(expand_ratio) {}

// ---- InvertedResidual ----

InvertedResidualImpl::InvertedResidualImpl(InvertedResidualOptions options_) : options(std::move(options_)) {
  reset();
}

void InvertedResidualImpl::reset() {
  const auto& o = options;
  check_options(o);
  const int64_t in = o.in_channels(), out = o.out_channels(), hidden = o.in_channels() * o.expand_ratio();
  tv_in = make_tv_smooth(o.tv(), /*inner=*/false, in);
  if (tv_in) register_module("tv_in", tv_in);
  act_in = register_module("act_in", quant::FakeQuantize(o.act_quant()));
  conv1 =
      register_module("conv1", nn::QConv2d(nn::QConv2dOptions(in, hidden, 1).weight_quant(o.weight_quant())));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(hidden));
  tv_mid = make_tv_smooth(o.tv(), /*inner=*/true, hidden);
  if (tv_mid) register_module("tv_mid", tv_mid);
  act_mid = register_module("act_mid", quant::FakeQuantize(after_relu(o.act_quant())));
  conv2 = register_module("conv2", nn::QConv2d(nn::QConv2dOptions(hidden, hidden, 3)
                                                   .stride(o.stride())
                                                   .padding(1)
                                                   .groups(hidden)
                                                   .weight_quant(o.weight_quant())));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(hidden));
  tv_out = make_tv_smooth(o.tv(), /*inner=*/true, hidden);
  if (tv_out) register_module("tv_out", tv_out);
  act_out = register_module("act_out", quant::FakeQuantize(after_relu(o.act_quant())));
  conv3 = register_module("conv3",
                          nn::QConv2d(nn::QConv2dOptions(hidden, out, 1).weight_quant(o.weight_quant())));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(out));
  reset_parameters();
}

void InvertedResidualImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  for (auto* conv : {&conv1, &conv2, &conv3}) (*conv)->reset_parameters();
  reset_norms({&bn1, &bn2, &bn3});
  for (auto* tv : {&tv_in, &tv_mid, &tv_out}) {
    if (!tv->is_empty()) (*tv)->reset_parameters();
  }
}

void InvertedResidualImpl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::InvertedResidual(" << options.in_channels() << ", " << options.out_channels()
         << ", stride=" << options.stride() << ", expand_ratio=" << options.expand_ratio() << ")";
}

torch::Tensor InvertedResidualImpl::forward(const torch::Tensor& x) {
  // The convolutions read the quantized maps as operands (bfloat16 under autocast), the residual sum exactly.
  const auto x_q = act_in->forward_for_conv(tv_in ? tv_in(x) : x, /*exact=*/has_residual());
  auto u = bn1(conv1(x_q.conv));
  relu_unless_absorbed(u, tv_mid ? nullptr : act_mid.get());
  if (tv_mid) u = tv_mid(u);
  auto v = bn2(conv2(act_mid->forward_for_conv(u).conv));
  relu_unless_absorbed(v, tv_out ? nullptr : act_out.get());
  if (tv_out) v = tv_out(v);
  auto z = bn3(conv3(act_out->forward_for_conv(v).conv));
  return has_residual() ? torch::sub(x_q.exact, z, options.step_size()) : z;
}

// ---- SymmetricInvertedResidual ----

SymmetricInvertedResidualImpl::SymmetricInvertedResidualImpl(InvertedResidualOptions options_)
    : options(std::move(options_)) {
  reset();
}

void SymmetricInvertedResidualImpl::reset() {
  const auto& o = options;
  check_options(o);
  TORCH_CHECK(o.in_channels() == o.out_channels() && o.stride() == 1,
              "a symmetric inverted residual keeps width and resolution, but got ", o.in_channels(), " -> ",
              o.out_channels(), " channels at stride ", o.stride());
  const int64_t c = o.in_channels(), hidden = c * o.expand_ratio();
  tv_in = make_tv_smooth(o.tv(), /*inner=*/false, c);
  if (tv_in) register_module("tv_in", tv_in);
  act_in = register_module("act_in", quant::FakeQuantize(o.act_quant()));
  conv1 =
      register_module("conv1", nn::QConv2d(nn::QConv2dOptions(c, hidden, 1).weight_quant(o.weight_quant())));
  conv2 = register_module(
      "conv2",
      nn::QConv2d(nn::QConv2dOptions(hidden, hidden, 3).groups(hidden).weight_quant(o.weight_quant())));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(hidden));
  tv_mid = make_tv_smooth(o.tv(), /*inner=*/true, hidden);
  if (tv_mid) register_module("tv_mid", tv_mid);
  act_mid = register_module("act_mid", quant::FakeQuantize(after_relu(o.act_quant())));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(c));
  reset_parameters();
}

void SymmetricInvertedResidualImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  conv1->reset_parameters();
  conv2->reset_parameters();
  reset_norms({&bn1, &bn2});
  for (auto* tv : {&tv_in, &tv_mid}) {
    if (!tv->is_empty()) (*tv)->reset_parameters();
  }
}

void SymmetricInvertedResidualImpl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::SymmetricInvertedResidual(" << options.in_channels()
         << ", expand_ratio=" << options.expand_ratio() << ", step_size=" << options.step_size() << ")";
}

torch::Tensor SymmetricInvertedResidualImpl::branch(const torch::Tensor& x_q) {
  // Each weight is quantized once and used by K and by K^T.
  const auto k1 = conv1->quantized_weight();
  const auto k2 = conv2->quantized_weight();
  const int64_t hidden = k2.size(0);
  // K2 without padding ({0, 0} would be ambiguous with conv2d's string padding overload).
  const std::array<int64_t, 2> unpadded{0, 0};
  auto u = bn1(torch::conv2d(torch::conv2d(x_q, k1), k2, {}, {1, 1}, unpadded, {1, 1}, hidden));
  relu_unless_absorbed(u, tv_mid ? nullptr : act_mid.get());
  if (tv_mid) u = tv_mid(u);
  const auto impl = options.transpose_impl();
  auto z = nn::functional::conv2d_adjoint(act_mid->forward_for_conv(u).conv, k2, /*padding=*/0, hidden, impl);
  return bn2(nn::functional::conv2d_adjoint(z, k1, /*padding=*/0, 1, impl));
}

torch::Tensor SymmetricInvertedResidualImpl::forward(const torch::Tensor& x) {
  // K2 is unpadded, so K2 K1 x needs maps of at least 3x3 (32x32 inputs give 4x4 in the last stages).
  TORCH_CHECK(x.dim() == 4 && x.size(2) >= 3 && x.size(3) >= 3,
              "a symmetric inverted residual needs [N, C, H, W] maps of at least 3x3, but got ", x.sizes());
  const auto x_q = act_in->forward_for_conv(tv_in ? tv_in(x) : x, /*exact=*/true);
  return torch::sub(x_q.exact, branch(x_q.conv), options.step_size());
}

// ---- MobileNetV2 ----

MobileNetV2Impl::MobileNetV2Impl(ModelOptions options_, std::vector<InvertedResidualStage> stages_,
                                 int64_t head_channels_)
    : options(std::move(options_)), stages(std::move(stages_)), head_channels(head_channels_) {
  reset();
}

void MobileNetV2Impl::reset() {
  const auto& m = options;
  TORCH_CHECK(m.num_classes > 0, "num_classes must be positive, but got ", m.num_classes);
  TORCH_CHECK(m.in_channels > 0, "in_channels must be positive, but got ", m.in_channels);
  TORCH_CHECK(!stages.empty(), "MobileNetV2 needs at least one stage");
  TORCH_CHECK(head_channels > 0, "head_channels must be positive, but got ", head_channels);
  for (const auto& stage : stages) {
    TORCH_CHECK(stage.channels > 0 && stage.blocks > 0, "every stage needs channels > 0 and blocks > 0");
  }
  // Stem and head stay in float, as in the reference.
  conv1 = register_module(
      "conv1",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(m.in_channels, kStemChannels, 3).padding(1).bias(false)));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(kStemChannels));
  layers.clear();
  int64_t channels = kStemChannels;
  for (size_t s = 0; s < stages.size(); ++s) {
    const auto& stage = stages[s];
    torch::nn::Sequential blocks;
    for (int64_t i = 0; i < stage.blocks; ++i) {
      InvertedResidualOptions block(i == 0 ? channels : stage.channels, stage.channels,
                                    i == 0 ? stage.stride : 1, stage.expand_ratio);
      block.step_size(m.step_size)
          .transpose_impl(m.transpose_impl)
          .weight_quant(m.weight_quant)
          .act_quant(m.act_quant)
          .tv(m.tv);
      if (m.stable && i > 0) {
        blocks->push_back(SymmetricInvertedResidual(block));
      } else {
        // In the stable net the first blocks are ordinary steps with h = 1, as the reference.
        blocks->push_back(InvertedResidual(m.stable ? block.step_size(1.0) : block));
      }
    }
    layers.push_back(register_module("layer" + std::to_string(s + 1), blocks));
    channels = stage.channels;
  }
  head_conv = register_module(
      "head_conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, head_channels, 1).bias(false)));
  head_bn = register_module("head_bn", torch::nn::BatchNorm2d(head_channels));
  fc = register_module("fc", torch::nn::Linear(head_channels, m.num_classes));
  reset_parameters();
}

void MobileNetV2Impl::reset_parameters() { reset_classifier_parameters(*this); }

void MobileNetV2Impl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::MobileNetV2(num_classes=" << options.num_classes;
  if (options.in_channels != 3) stream << ", in_channels=" << options.in_channels;
  if (options.stable) stream << ", stable=true, step_size=" << options.step_size;
  stream << ")";
}

torch::Tensor MobileNetV2Impl::forward_traced(const torch::Tensor& x, ActivationTrace* trace) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == options.in_channels, "input must be [N, ", options.in_channels,
              ", H, W], but got ", x.sizes());
  auto out = bn1(conv1(x));
  out.relu_();
  if (trace) trace->record("stem", out);
  out = forward_stages(layers, out, trace);
  out = head_bn(head_conv(out));
  out.relu_();
  if (trace) trace->record("head", out);
  return fc(out.mean({2, 3}));
}

Classifier mobilenetv2(const ModelOptions& options) { return std::make_shared<MobileNetV2Impl>(options); }

}  // namespace pdeq::models
