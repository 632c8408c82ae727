#include <pdeq/models/layers.h>

#include <pdeq/nn/qconv.h>
#include <pdeq/nn/tv_smoothing.h>

#include <torch/nn/init.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <memory>
#include <string>
#include <utility>

namespace pdeq::models {

quant::FakeQuantizeOptions weight_quant_for(quant::FakeQuantizeOptions options, int64_t out_channels) {
  if (options.channels() != 0) options.channels(out_channels);
  return options;
}

quant::FakeQuantizeOptions after_relu(quant::FakeQuantizeOptions options) {
  return options.absorb_relu(true);
}

nn::TVSmooth make_tv_smooth(const std::optional<TVOptions>& tv, bool inner, int64_t channels) {
  if (!tv || !(inner ? tv->block_inner : tv->block_input)) return nullptr;
  return nn::TVSmooth(nn::TVSmoothOptions(tv->smooth).channels(channels));
}

namespace {

ReluOutputBlock* as_relu_output_block(const std::shared_ptr<torch::nn::Module>& block) {
  return dynamic_cast<ReluOutputBlock*>(block.get());
}

bool absorbs_relu(const ReluOutputBlock* block) {
  const auto* quantizer = block == nullptr ? nullptr : block->input_quantizer();
  return quantizer != nullptr && quantizer->absorbs_relu();
}

}  // namespace

torch::Tensor forward_stages(std::vector<torch::nn::Sequential>& stages, torch::Tensor x,
                             ActivationTrace* trace) {
  // Flattened, so that the last block of a stage sees the first block of the next one; names are built
  // only for a trace (this runs every step).
  struct Entry {
    torch::nn::AnyModule* module;
    size_t stage, index;  // position for the trace name layer<stage + 1>.<index>
  };
  std::vector<Entry> blocks;
  for (size_t i = 0; i < stages.size(); ++i) {
    size_t j = 0;
    for (auto& block : *stages[i]) blocks.push_back({&block, i, j++});
  }
  for (size_t k = 0; k < blocks.size(); ++k) {
    auto* block = as_relu_output_block(blocks[k].module->ptr());
    const bool defer = block != nullptr && block->defers_output_relu() && k + 1 < blocks.size() &&
                       absorbs_relu(as_relu_output_block(blocks[k + 1].module->ptr()));
    x = defer ? block->forward_before_relu(x) : blocks[k].module->forward(x);
    if (trace) {
      trace->record("layer" + std::to_string(blocks[k].stage + 1) + "." + std::to_string(blocks[k].index),
                    defer ? torch::relu(x) : x);
    }
  }
  return x;
}

bool stages_absorb_input_relu(std::vector<torch::nn::Sequential>& stages) {
  if (stages.empty() || stages.front()->is_empty()) return false;
  return absorbs_relu(as_relu_output_block((*stages.front())[0]));
}

void relu_unless_absorbed(torch::Tensor& h, const quant::FakeQuantizeImpl* next) {
  if (next == nullptr || !next->absorbs_relu()) h.relu_();
}

void reset_classifier_parameters(torch::nn::Module& root) {
  torch::NoGradGuard no_grad;
  root.apply([](torch::nn::Module& module) {
    if (auto* conv = module.as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, /*a=*/0, torch::kFanOut, torch::kReLU);
    } else if (auto* qconv = module.as<nn::QConv2d>()) {
      qconv->reset_parameters();
    } else if (auto* tv = module.as<nn::TVSmooth>()) {
      tv->reset_parameters();
    } else if (auto* bn = module.as<torch::nn::BatchNorm2d>()) {
      bn->weight.fill_(1.0);
      bn->bias.zero_();
    } else if (auto* linear = module.as<torch::nn::Linear>()) {
      linear->reset_parameters();
    }
  });
}

}  // namespace pdeq::models
