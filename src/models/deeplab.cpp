#include <pdeq/models/deeplab.h>

#include <pdeq/models/layers.h>

#include <torch/nn/functional/upsampling.h>

#include <string>

namespace pdeq::models {
namespace F = torch::nn::functional;

DeepLabV3Options::DeepLabV3Options(DeepLabBackbone backbone, ModelOptions model)
    : backbone_(backbone), model_(std::move(model)) {}

DeepLabV3Impl::DeepLabV3Impl(DeepLabV3Options options_) : options(std::move(options_)) { reset(); }

void DeepLabV3Impl::reset() {
  const auto& m = options.model();
  const int64_t a = options.aspp_channels();
  TORCH_CHECK(m.num_classes > 0, "num_classes must be positive, but got ", m.num_classes);
  TORCH_CHECK(a > 0, "aspp_channels must be positive, but got ", a);
  TORCH_CHECK(options.rates().size() == 3, "rates must hold 3 dilations, but got ", options.rates().size());
  for (int64_t r : options.rates()) TORCH_CHECK(r > 0, "rates must be positive, but got ", r);
  TORCH_CHECK(options.dropout() >= 0 && options.dropout() < 1, "dropout must be in [0, 1), but got ",
              options.dropout());

  const bool resnet50 = options.backbone() == DeepLabBackbone::kResNet50;
  backbone = register_module("backbone", resnet50 ? resnet50_backbone(m, options.output_stride())
                                                  : resnet18_backbone(m, options.output_stride()));
  const int64_t in = resnet50 ? 512 * kBottleneckExpansion : 512;

  tv_in = make_tv_smooth(m.tv, /*inner=*/false, in);
  if (tv_in) register_module("tv_in", tv_in);
  act_in = register_module("act_in", quant::FakeQuantize(after_relu(m.act_quant)));
  const auto conv = [&](int64_t c_in, int64_t c_out, int64_t k, int64_t dilation) {
    return nn::QConv2d(nn::QConv2dOptions(c_in, c_out, k)
                           .padding(k == 3 ? dilation : 0)
                           .dilation(dilation)
                           .weight_quant(weight_quant_for(m.weight_quant, c_out)));
  };
  aspp_convs.clear();
  aspp_bns.clear();
  for (int64_t i = 0; i < 5; ++i) {
    const bool atrous = i >= 1 && i <= 3;
    aspp_convs.push_back(register_module(
        "aspp" + std::to_string(i),
        conv(in, a, atrous ? 3 : 1, atrous ? options.rates()[static_cast<size_t>(i - 1)] : 1)));
    aspp_bns.push_back(register_module("aspp" + std::to_string(i) + "_bn", torch::nn::BatchNorm2d(a)));
  }
  // The pooled features are means of quantized values, off the grid: quantized again for the 1x1 conv.
  act_pool = register_module("act_pool", quant::FakeQuantize(after_relu(m.act_quant)));
  tv_project = make_tv_smooth(m.tv, /*inner=*/true, 5 * a);
  if (tv_project) register_module("tv_project", tv_project);
  act_project = register_module("act_project", quant::FakeQuantize(after_relu(m.act_quant)));
  project = register_module("project", conv(5 * a, a, 1, 1));
  project_bn = register_module("project_bn", torch::nn::BatchNorm2d(a));
  dropout = register_module("dropout", torch::nn::Dropout(options.dropout()));
  tv_head = make_tv_smooth(m.tv, /*inner=*/true, a);
  if (tv_head) register_module("tv_head", tv_head);
  act_head = register_module("act_head", quant::FakeQuantize(after_relu(m.act_quant)));
  head = register_module("head", conv(a, a, 3, 1));
  head_bn = register_module("head_bn", torch::nn::BatchNorm2d(a));
  // Full precision, as the classifiers' fc: the logits are the output.
  classifier = register_module("classifier",
                               torch::nn::Conv2d(torch::nn::Conv2dOptions(a, m.num_classes, 1).bias(true)));
  reset_parameters();
}

void DeepLabV3Impl::reset_parameters() { reset_classifier_parameters(*this); }

void DeepLabV3Impl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::DeepLabV3(backbone="
         << (options.backbone() == DeepLabBackbone::kResNet50 ? "resnet50" : "resnet18")
         << ", num_classes=" << options.model().num_classes << ", output_stride=" << options.output_stride()
         << ", rates=[" << options.rates()[0] << ", " << options.rates()[1] << ", " << options.rates()[2]
         << "], aspp_channels=" << options.aspp_channels();
  if (options.model().tv) stream << ", tv=true";
  stream << ")";
}

torch::Tensor DeepLabV3Impl::forward_traced(const torch::Tensor& x, ActivationTrace* trace) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == options.model().in_channels, "input must be [N, ",
              options.model().in_channels, ", H, W], but got ", x.sizes());
  const auto features = backbone->forward_features(x, trace);
  const auto f_q = act_in(tv_in ? tv_in(features) : features);
  std::vector<torch::Tensor> branches;
  for (size_t i = 0; i < 4; ++i) branches.push_back(aspp_bns[i](aspp_convs[i](f_q)).relu_());
  const auto pooled = aspp_bns[4](aspp_convs[4](act_pool(f_q.mean({2, 3}, /*keepdim=*/true)))).relu_();
  branches.push_back(pooled.expand({-1, -1, f_q.size(2), f_q.size(3)}));
  auto h = torch::cat(branches, 1);
  if (tv_project) h = tv_project(h);
  h = dropout(project_bn(project(act_project(h))).relu_());
  if (trace) trace->record("aspp", h);
  if (tv_head) h = tv_head(h);
  h = head_bn(head(act_head(h))).relu_();
  if (trace) trace->record("head", h);
  return F::interpolate(classifier(h), F::InterpolateFuncOptions()
                                           .size(std::vector<int64_t>{x.size(2), x.size(3)})
                                           .mode(torch::kBilinear)
                                           .align_corners(false));
}

Classifier deeplabv3_resnet50(const ModelOptions& options) {
  return std::make_shared<DeepLabV3Impl>(DeepLabV3Options(DeepLabBackbone::kResNet50, options));
}

Classifier deeplabv3_resnet18(const ModelOptions& options) {
  return std::make_shared<DeepLabV3Impl>(DeepLabV3Options(DeepLabBackbone::kResNet18, options)
                                             .output_stride(16)
                                             .rates({6, 12, 18})
                                             .aspp_channels(128));
}

}  // namespace pdeq::models
