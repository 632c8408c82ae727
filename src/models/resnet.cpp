#include <pdeq/models/resnet.h>

#include <pdeq/models/layers.h>

#include <pdeq/nn/conv2d.h>
#include <pdeq/nn/conv_adjoint.h>

#include <array>
#include <cmath>
#include <string>

namespace pdeq::models {
namespace {

/// One stage as torchvision's _make_layer builds it: only the first block strides and changes the width.
torch::nn::Sequential make_stage(int64_t in_channels, const StageOptions& stage, const ResNetOptions& net) {
  const ModelOptions& model = net.model();
  torch::nn::Sequential blocks;
  for (int64_t i = 0; i < stage.blocks; ++i) {
    BlockOptions block(i == 0 ? in_channels : stage.channels, stage.channels, i == 0 ? stage.stride : 1);
    block.step_size(model.step_size)
        .transition(net.transition())
        .transpose_impl(model.transpose_impl)
        .weight_quant(model.weight_quant)
        .act_quant(model.act_quant)
        .tv(model.tv);
    blocks->push_back(i == 0 ? net.first_block()(block) : net.block()(block));
  }
  return blocks;
}

void check_block_options(const BlockOptions& o) {
  TORCH_CHECK(o.in_channels() > 0, "in_channels must be positive, but got ", o.in_channels());
  TORCH_CHECK(o.out_channels() > 0, "out_channels must be positive, but got ", o.out_channels());
  TORCH_CHECK(o.stride() > 0, "stride must be positive, but got ", o.stride());
  TORCH_CHECK(std::isfinite(o.step_size()), "step_size must be finite, but got ", o.step_size());
  TORCH_CHECK(o.act_quant().channels() == 0,
              "act_quant channels must be 0 (one alpha per activation tensor), but got ",
              o.act_quant().channels());
  if (o.transition() == Transition::kConcatPool) {
    TORCH_CHECK(o.out_channels() >= o.in_channels(),
                "out_channels must be >= in_channels with concatenation transitions, but got ",
                o.out_channels(), " < ", o.in_channels());
    TORCH_CHECK(o.stride() == 1 || o.stride() == 2,
                "stride must be 1 or 2 (2x2 average pooling) with concatenation transitions, but got ",
                o.stride());
  }
}

/// StableNet's transition: widen by the first C_out - C_in channels of the quantized input, then pool 2x2.
torch::Tensor concat_and_pool(torch::Tensor y, const torch::Tensor& x_q, const BlockOptions& o) {
  const int64_t grow = o.out_channels() - o.in_channels();
  if (grow > 0) y = torch::cat({y, x_q.narrow(1, 0, grow)}, 1);
  if (o.stride() == 2) y = torch::avg_pool2d(y, {2, 2});
  return y;
}

/// {channels, stride} of each stage; the block counts differ per depth and come with the variant.
struct StageRow {
  int64_t channels;
  int64_t stride;
};

// Thin CIFAR ResNets (He et al. 2016, Sec. 4.2): depth 6n+2, three stages of n blocks, 32 -> 16 -> 8 pixels.
constexpr std::array<StageRow, 3> kThinStages{{{16, 1}, {32, 2}, {64, 2}}};
// Wide CIFAR ResNets (kuangliu/pytorch-cifar): ImageNet widths, a 3x3 stride-1 stem and no max-pool.
constexpr std::array<StageRow, 4> kWideStages{{{64, 1}, {128, 2}, {256, 2}, {512, 2}}};

template <size_t N>
std::vector<StageOptions> with_blocks(const std::array<StageRow, N>& rows,
                                      const std::array<int64_t, N>& blocks) {
  std::vector<StageOptions> stages;
  for (size_t i = 0; i < N; ++i) stages.push_back({rows[i].channels, blocks[i], rows[i].stride});
  return stages;
}

/// The plain ResNet, or with ModelOptions::stable the paper's symmetric one: each stage opens with an
/// ordinary BasicBlock at h = 1 (it changes the width, which a symmetric step cannot), the other blocks are
/// symmetric.
Classifier make_resnet(std::vector<StageOptions> stages, const ModelOptions& options) {
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
  return make_resnet(with_blocks(kThinStages, {n, n, n}), options);
}

}  // namespace

// ---- BasicBlock ----

BlockOptions::BlockOptions(int64_t in_channels, int64_t out_channels, int64_t stride)
    : in_channels_(in_channels), out_channels_(out_channels), stride_(stride) {}

BasicBlockImpl::BasicBlockImpl(BlockOptions options_) : options(std::move(options_)) { reset(); }

void BasicBlockImpl::reset() {
  const auto& o = options;
  check_block_options(o);

  const int64_t in = o.in_channels();
  // With concatenation transitions the residual step itself stays at C_in channels and full resolution.
  const bool concat = o.transition() == Transition::kConcatPool;
  const int64_t out = concat ? in : o.out_channels();
  const int64_t stride = concat ? 1 : o.stride();
  const auto wq = weight_quant_for(o.weight_quant(), out);
  tv_in = make_tv_smooth(o.tv(), /*inner=*/false, in);
  if (tv_in) register_module("tv_in", tv_in);
  act_in = register_module("act_in", quant::FakeQuantize(o.act_quant()));
  conv1 = register_module(
      "conv1", nn::QConv2d(nn::QConv2dOptions(in, out, 3).stride(stride).padding(1).weight_quant(wq)));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(out));
  tv_mid = make_tv_smooth(o.tv(), /*inner=*/true, out);
  if (tv_mid) register_module("tv_mid", tv_mid);
  act_mid = register_module("act_mid", quant::FakeQuantize(o.act_quant()));
  conv2 = register_module("conv2", nn::QConv2d(nn::QConv2dOptions(out, out, 3).padding(1).weight_quant(wq)));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(out));
  if (stride != 1 || in != out) {
    // The reference quantizes the projection's weight like every other block conv.
    shortcut_conv = register_module(
        "shortcut_conv", nn::QConv2d(nn::QConv2dOptions(in, out, 1).stride(o.stride()).weight_quant(wq)));
    shortcut_bn = register_module("shortcut_bn", torch::nn::BatchNorm2d(out));
  } else {
    shortcut_conv = nullptr;
    shortcut_bn = nullptr;
  }
  reset_parameters();
}

void BasicBlockImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  for (auto* conv : {&conv1, &conv2, &shortcut_conv}) {
    if (!conv->is_empty()) (*conv)->reset_parameters();
  }
  for (auto* tv : {&tv_in, &tv_mid}) {
    if (!tv->is_empty()) (*tv)->reset_parameters();
  }
  for (auto* bn : {&bn1, &bn2, &shortcut_bn}) {
    if (!bn->is_empty()) {
      (*bn)->weight.fill_(1.0);
      (*bn)->bias.zero_();
    }
  }
}

void BasicBlockImpl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::BasicBlock(" << options.in_channels() << ", " << options.out_channels();
  if (options.stride() != 1) stream << ", stride=" << options.stride();
  if (options.step_size() != 1.0) stream << ", step_size=" << options.step_size();
  if (options.tv()) stream << ", tv=true";
  if (options.transition() == Transition::kConcatPool) stream << ", transition=concat_pool";
  stream << ")";
}

torch::Tensor BasicBlockImpl::branch(const torch::Tensor& x_q) {
  // In-place ReLU is safe: batch norm's backward needs its input, not its output.
  auto h = bn1(conv1(x_q));
  relu_unless_absorbed(h, tv_mid ? nullptr : act_mid.get());
  if (tv_mid) h = tv_mid(h);
  return bn2(conv2(act_mid->forward_for_conv(h).conv));
}

torch::Tensor BasicBlockImpl::shortcut(const torch::Tensor& x_q) {
  return has_projection() ? shortcut_bn(shortcut_conv(x_q)) : x_q;
}

torch::Tensor BasicBlockImpl::forward(const torch::Tensor& x) { return step(x, /*output_relu=*/true); }

bool BasicBlockImpl::defers_output_relu() const { return options.transition() != Transition::kConcatPool; }

torch::Tensor BasicBlockImpl::forward_before_relu(const torch::Tensor& x) {
  TORCH_CHECK(defers_output_relu(), "a concat-pool block's output is not a ReLU of one tensor");
  return step(x, /*output_relu=*/false);
}

const quant::FakeQuantizeImpl* BasicBlockImpl::input_quantizer() const {
  return tv_in ? nullptr : act_in.get();
}

torch::Tensor BasicBlockImpl::step(const torch::Tensor& x, bool output_relu) {
  // Branch and shortcut both read the quantized input, as the reference does (its act1_quantizer replaces
  // `data` before either path): the identity path then carries quantized values too, so the whole block
  // runs on low-precision inputs, which is the setting whose stability the paper analyses.
  // conv1 reads x_q as its operand (bfloat16 under autocast); the shortcut reads the exact values, also a
  // projection's: two bfloat16 readers of one tensor would have autograd add their gradients in bfloat16.
  const bool concat = options.transition() == Transition::kConcatPool;
  const auto x_q = act_in->forward_for_conv(tv_in ? tv_in(x) : x, /*exact=*/true);
  // Out of place: for the identity shortcut x_q is saved by conv1 for the backward pass.
  auto y = torch::sub(shortcut(x_q.exact), branch(x_q.conv), options.step_size());
  if (!output_relu) return y;
  y.relu_();
  return concat ? concat_and_pool(y, x_q.exact, options) : y;
}

torch::nn::AnyModule basic_block(const BlockOptions& options) {
  return torch::nn::AnyModule(BasicBlock(options));
}

// ---- SymmetricBlock ----

SymmetricBlockImpl::SymmetricBlockImpl(BlockOptions options_) : options(std::move(options_)) { reset(); }

void SymmetricBlockImpl::reset() {
  const auto& o = options;
  check_block_options(o);
  TORCH_CHECK(
      o.transition() == Transition::kConcatPool || (o.in_channels() == o.out_channels() && o.stride() == 1),
      "a symmetric block keeps its width and resolution unless its transition is kConcatPool, but got ",
      o.in_channels(), " -> ", o.out_channels(), " channels at stride ", o.stride());
  const int64_t c = o.in_channels();
  tv_in = make_tv_smooth(o.tv(), /*inner=*/false, c);
  if (tv_in) register_module("tv_in", tv_in);
  act_in = register_module("act_in", quant::FakeQuantize(o.act_quant()));
  conv = register_module("conv", nn::QConv2d(nn::QConv2dOptions(c, c, 3).padding(1).weight_quant(
                                     weight_quant_for(o.weight_quant(), c))));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(c));
  tv_mid = make_tv_smooth(o.tv(), /*inner=*/true, c);
  if (tv_mid) register_module("tv_mid", tv_mid);
  act_mid = register_module("act_mid", quant::FakeQuantize(o.act_quant()));
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

// ---- ResNet ----

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
  int64_t channels = stem;
  for (size_t i = 0; i < options.stages().size(); ++i) {
    const auto& stage = options.stages()[i];
    layers.push_back(register_module("layer" + std::to_string(i + 1), make_stage(channels, stage, options)));
    channels = stage.channels;
  }
  fc = register_module("fc", torch::nn::Linear(channels, m.num_classes));
  reset_parameters();
}

void ResNetImpl::reset_parameters() { reset_classifier_parameters(*this); }

void ResNetImpl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::ResNet(stages=[";
  for (size_t i = 0; i < options.stages().size(); ++i) {
    const auto& stage = options.stages()[i];
    stream << (i ? ", " : "") << stage.channels << "x" << stage.blocks;
    if (stage.stride != 1) stream << "/" << stage.stride;
  }
  stream << "], num_classes=" << options.model().num_classes;
  if (options.model().in_channels != 3) stream << ", in_channels=" << options.model().in_channels;
  if (options.model().step_size != 1.0) stream << ", step_size=" << options.model().step_size;
  if (options.model().tv) stream << ", tv=true";
  if (options.model().stem == Stem::kImageNet) stream << ", stem=imagenet";
  stream << ")";
}

torch::Tensor ResNetImpl::forward_traced(const torch::Tensor& x, ActivationTrace* trace) {
  TORCH_CHECK(x.dim() == 4 && x.size(1) == options.model().in_channels, "input must be [N, ",
              options.model().in_channels, ", H, W], but got ", x.sizes());
  auto out = bn1(conv1(x));
  const bool imagenet = options.model().stem == Stem::kImageNet;
  // The first block's input quantizer clips at 0 itself (not through the ImageNet stem's max-pool).
  const bool relu_absorbed = !imagenet && stages_absorb_input_relu(layers);
  if (!relu_absorbed) out.relu_();
  if (imagenet) out = torch::max_pool2d(out, {3, 3}, {2, 2}, {1, 1});
  if (trace) trace->record("stem", relu_absorbed ? torch::relu(out) : out);
  out = forward_stages(layers, out, trace);
  // Global average pool over whatever resolution is left (8x8 for CIFAR, 7x7 for 28x28 or 224x224 inputs).
  return fc(out.mean({2, 3}));
}

// ---- Variants ----

Classifier resnet20(const ModelOptions& options) { return thin_resnet(20, options); }
Classifier resnet32(const ModelOptions& options) { return thin_resnet(32, options); }
Classifier resnet44(const ModelOptions& options) { return thin_resnet(44, options); }
Classifier resnet56(const ModelOptions& options) { return thin_resnet(56, options); }
Classifier resnet110(const ModelOptions& options) { return thin_resnet(110, options); }

Classifier resnet18(const ModelOptions& options) {
  return make_resnet(with_blocks(kWideStages, {2, 2, 2, 2}), options);
}

Classifier resnet34(const ModelOptions& options) {
  return make_resnet(with_blocks(kWideStages, {3, 4, 6, 3}), options);
}

}  // namespace pdeq::models
