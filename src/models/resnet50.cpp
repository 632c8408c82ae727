#include <pdeq/models/resnet50.h>

#include <pdeq/models/layers.h>

#include <torch/nn/functional/pooling.h>

#include <array>
#include <cmath>
#include <string>

namespace pdeq::models {
namespace {

// torchvision's ImageNet ResNets: {width, stride} of the four stages; outputs are 4x the width.
constexpr std::array<int64_t, 4> kWidths{64, 128, 256, 512};
constexpr std::array<int64_t, 4> kStrides{1, 2, 2, 2};

Classifier imagenet_resnet(const std::array<int64_t, 4>& blocks, const ModelOptions& options) {
  std::vector<StageOptions> stages;
  for (size_t i = 0; i < 4; ++i) stages.push_back({kWidths[i], blocks[i], kStrides[i]});
  return std::make_shared<ImageNetResNetImpl>(std::move(stages), options);
}

}  // namespace

// ---- Bottleneck ----

BottleneckImpl::BottleneckImpl(BlockOptions options_) : options(std::move(options_)) { reset(); }

void BottleneckImpl::reset() {
  const auto& o = options;
  TORCH_CHECK(o.in_channels() > 0, "in_channels must be positive, but got ", o.in_channels());
  TORCH_CHECK(o.out_channels() > 0 && o.out_channels() % kBottleneckExpansion == 0,
              "out_channels must be a positive multiple of 4, but got ", o.out_channels());
  TORCH_CHECK(o.stride() > 0, "stride must be positive, but got ", o.stride());
  TORCH_CHECK(std::isfinite(o.step_size()), "step_size must be finite, but got ", o.step_size());
  TORCH_CHECK(o.act_quant().channels() == 0,
              "act_quant channels must be 0 (one alpha per activation tensor), but got ",
              o.act_quant().channels());

  const int64_t in = o.in_channels();
  const int64_t out = o.out_channels();
  const int64_t width = out / kBottleneckExpansion;
  tv_in = make_tv_smooth(o.tv(), /*inner=*/false, in);
  if (tv_in) register_module("tv_in", tv_in);
  act_in = register_module("act_in", quant::FakeQuantize(o.act_quant()));
  conv1 = register_module(
      "conv1",
      nn::QConv2d(nn::QConv2dOptions(in, width, 1).weight_quant(weight_quant_for(o.weight_quant(), width))));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(width));
  tv_mid1 = make_tv_smooth(o.tv(), /*inner=*/true, width);
  if (tv_mid1) register_module("tv_mid1", tv_mid1);
  act_mid1 = register_module("act_mid1", quant::FakeQuantize(o.act_quant()));
  conv2 = register_module("conv2", nn::QConv2d(nn::QConv2dOptions(width, width, 3)
                                                   .stride(o.stride())
                                                   .padding(1)
                                                   .weight_quant(weight_quant_for(o.weight_quant(), width))));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(width));
  tv_mid2 = make_tv_smooth(o.tv(), /*inner=*/true, width);
  if (tv_mid2) register_module("tv_mid2", tv_mid2);
  act_mid2 = register_module("act_mid2", quant::FakeQuantize(o.act_quant()));
  const auto wq = weight_quant_for(o.weight_quant(), out);
  conv3 = register_module("conv3", nn::QConv2d(nn::QConv2dOptions(width, out, 1).weight_quant(wq)));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(out));
  if (o.stride() != 1 || in != out) {
    shortcut_conv = register_module(
        "shortcut_conv", nn::QConv2d(nn::QConv2dOptions(in, out, 1).stride(o.stride()).weight_quant(wq)));
    shortcut_bn = register_module("shortcut_bn", torch::nn::BatchNorm2d(out));
  } else {
    shortcut_conv = nullptr;
    shortcut_bn = nullptr;
  }
  reset_parameters();
}

void BottleneckImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  for (auto* conv : {&conv1, &conv2, &conv3, &shortcut_conv}) {
    if (!conv->is_empty()) (*conv)->reset_parameters();
  }
  for (auto* bn : {&bn1, &bn2, &bn3, &shortcut_bn}) {
    if (!bn->is_empty()) {
      (*bn)->weight.fill_(1.0);
      (*bn)->bias.zero_();
    }
  }
  for (auto* tv : {&tv_in, &tv_mid1, &tv_mid2}) {
    if (!tv->is_empty()) (*tv)->reset_parameters();
  }
}

void BottleneckImpl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::Bottleneck(" << options.in_channels() << ", " << options.out_channels();
  if (options.stride() != 1) stream << ", stride=" << options.stride();
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
  const auto shortcut = has_projection() ? shortcut_bn(shortcut_conv(x_q)) : x_q;
  return torch::sub(shortcut, h, options.step_size()).relu_();
}

// ---- ImageNetResNet ----

ImageNetResNetImpl::ImageNetResNetImpl(std::vector<StageOptions> stages_, ModelOptions model_)
    : stages(std::move(stages_)), model(std::move(model_)) {
  reset();
}

void ImageNetResNetImpl::reset() {
  TORCH_CHECK(model.num_classes > 0, "num_classes must be positive, but got ", model.num_classes);
  TORCH_CHECK(model.in_channels > 0, "in_channels must be positive, but got ", model.in_channels);
  TORCH_CHECK(!stages.empty(), "stages must not be empty, but got 0 stages");
  for (const auto& stage : stages) {
    TORCH_CHECK(stage.channels > 0 && stage.blocks > 0 && stage.stride > 0,
                "stage channels, blocks and stride must be positive, but got {", stage.channels, ", ",
                stage.blocks, ", ", stage.stride, "}");
  }
  // The stem stays in float, as in the CIFAR ResNets.
  const int64_t stem = 64;
  conv1 = register_module(
      "conv1", torch::nn::Conv2d(
                   torch::nn::Conv2dOptions(model.in_channels, stem, 7).stride(2).padding(3).bias(false)));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(stem));
  layers.clear();
  int64_t channels = stem;
  for (size_t i = 0; i < stages.size(); ++i) {
    const auto& stage = stages[i];
    const int64_t out = stage.channels * kBottleneckExpansion;
    torch::nn::Sequential blocks;
    for (int64_t b = 0; b < stage.blocks; ++b) {
      BlockOptions block(b == 0 ? channels : out, out, b == 0 ? stage.stride : 1);
      block.step_size(model.step_size)
          .weight_quant(model.weight_quant)
          .act_quant(model.act_quant)
          .tv(model.tv);
      blocks->push_back(Bottleneck(block));
    }
    layers.push_back(register_module("layer" + std::to_string(i + 1), blocks));
    channels = out;
  }
  fc = register_module("fc", torch::nn::Linear(channels, model.num_classes));
  reset_parameters();
}

void ImageNetResNetImpl::reset_parameters() { reset_classifier_parameters(*this); }

void ImageNetResNetImpl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::ImageNetResNet(stages=[";
  for (size_t i = 0; i < stages.size(); ++i) {
    stream << (i ? ", " : "") << stages[i].channels << "x" << stages[i].blocks;
    if (stages[i].stride != 1) stream << "/" << stages[i].stride;
  }
  stream << "], num_classes=" << model.num_classes;
  if (model.in_channels != 3) stream << ", in_channels=" << model.in_channels;
  if (model.step_size != 1.0) stream << ", step_size=" << model.step_size;
  if (model.tv) stream << ", tv=true";
  stream << ")";
}

torch::Tensor ImageNetResNetImpl::forward_traced(const torch::Tensor& x, ActivationTrace* trace) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == model.in_channels, "input must be [N, ", model.in_channels,
              ", H, W], but got ", x.sizes());
  auto out = bn1(conv1(x));
  out.relu_();
  out = torch::max_pool2d(out, {3, 3}, {2, 2}, {1, 1});
  if (trace) trace->record("stem", out);
  out = forward_stages(layers, out, trace);
  return fc(out.mean({2, 3}));
}

// ---- Variants ----

Classifier resnet50(const ModelOptions& options) { return imagenet_resnet({3, 4, 6, 3}, options); }
Classifier resnet101(const ModelOptions& options) { return imagenet_resnet({3, 4, 23, 3}, options); }
Classifier resnet152(const ModelOptions& options) { return imagenet_resnet({3, 8, 36, 3}, options); }

}  // namespace pdeq::models
