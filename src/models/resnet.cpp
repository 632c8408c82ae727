#include <pdeq/models/resnet.h>

#include <pdeq/models/layers.h>

#include <array>
#include <string>

namespace pdeq::models {
namespace {

/// One stage as torchvision's _make_layer builds it: only the first block strides and changes the width.
/// `dilation`: the network's dilation before this stage; updated to the one after it.
torch::nn::Sequential make_stage(int64_t in_channels, const StageOptions& stage, const ResNetOptions& net,
                                 int64_t& dilation) {
  const ModelOptions& model = net.model();
  const int64_t out_channels = stage.channels * net.expansion();
  const int64_t previous = dilation;
  int64_t stride = stage.stride;
  if (stage.dilate) {
    dilation *= stride;
    stride = 1;
  }
  torch::nn::Sequential blocks;
  for (int64_t i = 0; i < stage.blocks; ++i) {
    BlockOptions block(i == 0 ? in_channels : out_channels, out_channels, i == 0 ? stride : 1);
    block.dilation(i == 0 ? previous : dilation)
        .step_size(model.step_size)
        .transition(net.transition())
        .transpose_impl(model.transpose_impl)
        .weight_quant(model.weight_quant)
        .act_quant(model.act_quant)
        .tv(model.tv);
    blocks->push_back(i == 0 ? net.first_block()(block) : net.block()(block));
  }
  return blocks;
}

/// {width, stride} of each stage; the block counts differ per depth and come with the variant.
struct StageRow {
  int64_t channels;
  int64_t stride;
};

// Thin CIFAR ResNets (He et al. 2016, Sec. 4.2): depth 6n+2, three stages of n blocks, 32 -> 16 -> 8 pixels.
constexpr std::array<StageRow, 3> kThinStages{{{16, 1}, {32, 2}, {64, 2}}};
// torchvision's four ImageNet stages, also those of the wide CIFAR ResNets (kuangliu/pytorch-cifar), which
// keep the 3x3 stride-1 stem and no max-pool unless ModelOptions::stem asks for the ImageNet one.
constexpr std::array<StageRow, 4> kImageNetStages{{{64, 1}, {128, 2}, {256, 2}, {512, 2}}};

template <size_t N>
std::vector<StageOptions> with_blocks(const std::array<StageRow, N>& rows,
                                      const std::array<int64_t, N>& blocks) {
  std::vector<StageOptions> stages;
  for (size_t i = 0; i < N; ++i) stages.push_back({rows[i].channels, blocks[i], rows[i].stride});
  return stages;
}

/// The plain ResNet of BasicBlocks, or with ModelOptions::stable the paper's symmetric one: each stage opens
/// with an ordinary BasicBlock at h = 1 (it changes the width, which a symmetric step cannot), the other
/// blocks are symmetric.
Classifier basic_resnet(std::vector<StageOptions> stages, const ModelOptions& options) {
  ResNetOptions net(std::move(stages), options);
  if (options.stable) {
    net.first_block([](const BlockOptions& block) { return basic_block(BlockOptions(block).step_size(1.0)); })
        .block(symmetric_block);
  }
  return std::make_shared<ResNetImpl>(std::move(net));
}

Classifier thin_resnet(int64_t depth, const ModelOptions& options) {
  TORCH_INTERNAL_ASSERT((depth - 2) % 6 == 0, "thin ResNet depth must be 6n+2, but got ", depth);
  const int64_t n = (depth - 2) / 6;
  return basic_resnet(with_blocks(kThinStages, {n, n, n}), options);
}

Classifier bottleneck_resnet(const std::array<int64_t, 4>& blocks, ModelOptions options) {
  options.stem = Stem::kImageNet;
  return std::make_shared<ResNetImpl>(ResNetOptions(with_blocks(kImageNetStages, blocks), options)
                                          .first_block(bottleneck_block)
                                          .block(bottleneck_block)
                                          .expansion(kBottleneckExpansion));
}

}  // namespace

ResNetOptions::ResNetOptions(std::vector<StageOptions> stages, ModelOptions model)
    : stages_(std::move(stages)), model_(std::move(model)) {}

ResNetImpl::ResNetImpl(ResNetOptions options_) : options(std::move(options_)) { reset(); }

void ResNetImpl::reset() {
  const auto& m = options.model();
  TORCH_CHECK(m.num_classes > 0, "num_classes must be positive, but got ", m.num_classes);
  TORCH_CHECK(m.in_channels > 0, "in_channels must be positive, but got ", m.in_channels);
  TORCH_CHECK(!options.stages().empty(), "stages must not be empty, but got 0 stages");
  TORCH_CHECK(static_cast<bool>(options.block()) && static_cast<bool>(options.first_block()),
              "block factories must be set, but got an empty function");
  TORCH_CHECK(options.expansion() > 0, "expansion must be positive, but got ", options.expansion());
  for (const auto& stage : options.stages()) {
    TORCH_CHECK(stage.channels > 0 && stage.blocks > 0 && stage.stride > 0,
                "stage channels, blocks and stride must be positive, but got {", stage.channels, ", ",
                stage.blocks, ", ", stage.stride, "}");
  }

  const int64_t stem = options.stages().front().channels;
  // The stem stays in float, as in the reference (and most QAT work): it sees the raw image and is tiny.
  const bool imagenet = m.stem == Stem::kImageNet;
  conv1 = register_module("conv1",
                          torch::nn::Conv2d(torch::nn::Conv2dOptions(m.in_channels, stem, imagenet ? 7 : 3)
                                                .stride(imagenet ? 2 : 1)
                                                .padding(imagenet ? 3 : 1)
                                                .bias(false)));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(stem));
  layers.clear();
  int64_t channels = stem, dilation = 1;
  for (size_t i = 0; i < options.stages().size(); ++i) {
    const auto& stage = options.stages()[i];
    layers.push_back(
        register_module("layer" + std::to_string(i + 1), make_stage(channels, stage, options, dilation)));
    channels = stage.channels * options.expansion();
  }
  fc = nullptr;
  if (options.classifier()) fc = register_module("fc", torch::nn::Linear(channels, m.num_classes));
  reset_parameters();
}

void ResNetImpl::reset_parameters() { reset_classifier_parameters(*this); }

void ResNetImpl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::ResNet(stages=[";
  for (size_t i = 0; i < options.stages().size(); ++i) {
    const auto& stage = options.stages()[i];
    stream << (i ? ", " : "") << stage.channels << "x" << stage.blocks;
    if (stage.stride != 1) stream << (stage.dilate ? "/d" : "/") << stage.stride;
  }
  stream << "]";
  if (options.classifier()) stream << ", num_classes=" << options.model().num_classes;
  if (options.expansion() != 1) stream << ", expansion=" << options.expansion();
  if (options.model().in_channels != 3) stream << ", in_channels=" << options.model().in_channels;
  if (options.model().step_size != 1.0) stream << ", step_size=" << options.model().step_size;
  if (options.model().tv) stream << ", tv=true";
  if (options.model().stem == Stem::kImageNet) stream << ", stem=imagenet";
  stream << ")";
}

torch::Tensor ResNetImpl::forward_traced(const torch::Tensor& x, ActivationTrace* trace) {
  TORCH_CHECK(fc, "this ResNet is a backbone without a classifier; call forward_features");
  // Global average pool over whatever resolution is left (8x8 for CIFAR, 7x7 for 28x28 or 224x224 inputs).
  return fc(forward_features(x, trace).mean({2, 3}));
}

torch::Tensor ResNetImpl::forward_features(const torch::Tensor& x, ActivationTrace* trace) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == options.model().in_channels, "input must be [N, ",
              options.model().in_channels, ", H, W], but got ", x.sizes());
  auto out = bn1(conv1(x));
  const bool imagenet = options.model().stem == Stem::kImageNet;
  // The first block's input quantizer clips at 0 itself (not through the ImageNet stem's max-pool).
  const bool relu_absorbed = !imagenet && stages_absorb_input_relu(layers);
  if (!relu_absorbed) out.relu_();
  if (imagenet) out = torch::max_pool2d(out, {3, 3}, {2, 2}, {1, 1});
  if (trace) trace->record("stem", relu_absorbed ? torch::relu(out) : out);
  return forward_stages(layers, out, trace);
}

// ---- Variants ----

Classifier resnet20(const ModelOptions& options) { return thin_resnet(20, options); }
Classifier resnet32(const ModelOptions& options) { return thin_resnet(32, options); }
Classifier resnet44(const ModelOptions& options) { return thin_resnet(44, options); }
Classifier resnet56(const ModelOptions& options) { return thin_resnet(56, options); }
Classifier resnet110(const ModelOptions& options) { return thin_resnet(110, options); }

Classifier resnet18(const ModelOptions& options) {
  return basic_resnet(with_blocks(kImageNetStages, {2, 2, 2, 2}), options);
}

Classifier resnet34(const ModelOptions& options) {
  return basic_resnet(with_blocks(kImageNetStages, {3, 4, 6, 3}), options);
}

Classifier resnet50(const ModelOptions& options) { return bottleneck_resnet({3, 4, 6, 3}, options); }
Classifier resnet101(const ModelOptions& options) { return bottleneck_resnet({3, 4, 23, 3}, options); }
Classifier resnet152(const ModelOptions& options) { return bottleneck_resnet({3, 8, 36, 3}, options); }

namespace {

/// Stages 3 and 4 (output stride 8) or stage 4 (16) dilated instead of strided.
std::vector<StageOptions> dilated(std::vector<StageOptions> stages, int64_t output_stride) {
  TORCH_CHECK(output_stride == 8 || output_stride == 16, "output_stride must be 8 or 16, but got ",
              output_stride);
  stages[3].dilate = true;
  if (output_stride == 8) stages[2].dilate = true;
  return stages;
}

}  // namespace

std::shared_ptr<ResNetImpl> resnet18_backbone(ModelOptions options, int64_t output_stride) {
  options.stem = Stem::kImageNet;
  return std::make_shared<ResNetImpl>(
      ResNetOptions(dilated(with_blocks(kImageNetStages, {2, 2, 2, 2}), output_stride), options)
          .classifier(false));
}

std::shared_ptr<ResNetImpl> resnet50_backbone(ModelOptions options, int64_t output_stride) {
  options.stem = Stem::kImageNet;
  return std::make_shared<ResNetImpl>(
      ResNetOptions(dilated(with_blocks(kImageNetStages, {3, 4, 6, 3}), output_stride), options)
          .first_block(bottleneck_block)
          .block(bottleneck_block)
          .expansion(kBottleneckExpansion)
          .classifier(false));
}

}  // namespace pdeq::models
