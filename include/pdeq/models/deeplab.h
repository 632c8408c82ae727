// DeepLabV3 (Chen et al. 2017, "Rethinking atrous convolution"; torchvision's layout) on a dilated ResNet
// backbone, quantized like the classifiers, with TV smoothing at the same sites as their blocks.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/models/model_options.h>
#include <pdeq/models/resnet.h>
#include <pdeq/nn/qconv.h>
#include <pdeq/nn/tv_smoothing.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/arg.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>

#include <ostream>
#include <vector>

namespace pdeq::models {

enum class DeepLabBackbone {
  kResNet18,  ///< BasicBlocks, 512 output channels (the CPU-sized one)
  kResNet50,  ///< Bottlenecks, 2048 output channels (torchvision's deeplabv3_resnet50)
};

struct DeepLabV3Options {
  DeepLabV3Options(DeepLabBackbone backbone, ModelOptions model = {});
  TORCH_ARG(DeepLabBackbone, backbone);
  /// Classes (num_classes), quantizer templates and TV sites; the stem is always the ImageNet one.
  TORCH_ARG(ModelOptions, model);
  /// 8 (stages 3 and 4 dilated) or 16 (stage 4 dilated).
  TORCH_ARG(int64_t, output_stride) = 8;
  /// Dilations of the three atrous ASPP branches: 12, 24, 36 at output stride 8 (torchvision's), 6, 12, 18 at
  /// 16 (the paper's).
  TORCH_ARG(std::vector<int64_t>, rates) = std::vector<int64_t>{12, 24, 36};
  /// Width of every ASPP branch, of the projection and of the head's 3x3 convolution.
  TORCH_ARG(int64_t, aspp_channels) = 256;
  /// Dropout after the ASPP projection (torchvision's 0.5).
  TORCH_ARG(double, dropout) = 0.5;
};

/// DeepLabV3: features f = backbone(x) (ReLU output, stride output_stride), then
///   f_q = Q_a(T(f)),
///   ASPP: b_0 = ReLU(BN(K_0 f_q)) (1x1), b_i = ReLU(BN(K_i *_{r_i} f_q)) (3x3, dilation r_i, i = 1..3),
///         b_4 = broadcast(ReLU(BN(K_4 Q_a(mean_{h,w} f_q)))) (image pooling),
///   p = Dropout(ReLU(BN(K_p Q_a(T(concat b_0..b_4))))) (1x1 projection),
///   h = ReLU(BN(K_h Q_a(T(p)))) (3x3),  logits = W h + b (1x1, float, as the classifiers' fc),
///   output = bilinear upsampling of logits to the input's H x W (align_corners false).
/// K_* are quantized convolutions; T the TV smoothing of ModelOptions::tv (tv_in on the backbone output as at
/// a block input, tv_project and tv_head as inside a block) or the identity. Images [N, 3, H, W] -> logits
/// [N, num_classes, H, W]. forward_traced records the backbone's blocks, then "aspp" (the projection's
/// output) and "head".
///
/// Parameters at full precision equal torchvision's deeplabv3_resnet50(num_classes=21, aux_loss=False):
/// 39,638,869, and 257 more per class.
class DeepLabV3Impl : public ClassifierImpl {
 public:
  explicit DeepLabV3Impl(DeepLabV3Options options);
  void reset();
  /// The backbone as the ResNets, the head as the classifiers (reset_classifier_parameters).
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward_traced(const torch::Tensor& x, ActivationTrace* trace) override;

  DeepLabV3Options options;
  std::shared_ptr<ResNetImpl> backbone;
  nn::TVSmooth tv_in{nullptr};
  quant::FakeQuantize act_in{nullptr};
  std::vector<nn::QConv2d> aspp_convs;  ///< "aspp.0" (1x1), "aspp.1".."aspp.3" (atrous), "aspp.4" (pooling)
  std::vector<torch::nn::BatchNorm2d> aspp_bns;
  quant::FakeQuantize act_pool{nullptr};
  nn::TVSmooth tv_project{nullptr};
  quant::FakeQuantize act_project{nullptr};
  nn::QConv2d project{nullptr};
  torch::nn::BatchNorm2d project_bn{nullptr};
  torch::nn::Dropout dropout{nullptr};
  nn::TVSmooth tv_head{nullptr};
  quant::FakeQuantize act_head{nullptr};
  nn::QConv2d head{nullptr};
  torch::nn::BatchNorm2d head_bn{nullptr};
  torch::nn::Conv2d classifier{nullptr};
};

/// torchvision's deeplabv3_resnet50: output stride 8, rates 12/24/36, 256-channel ASPP.
Classifier deeplabv3_resnet50(const ModelOptions& options);
/// The CPU-sized twin: ResNet-18 backbone, output stride 16, rates 6/12/18, 128-channel ASPP.
Classifier deeplabv3_resnet18(const ModelOptions& options);

}  // namespace pdeq::models
