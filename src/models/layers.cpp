#include <pdeq/models/layers.h>

#include <pdeq/nn/qconv.h>
#include <pdeq/nn/tv_smoothing.h>

#include <torch/nn/init.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <string>

namespace pdeq::models {

quant::FakeQuantizeOptions weight_quant_for(quant::FakeQuantizeOptions options, int64_t out_channels) {
  if (options.channels() != 0) options.channels(out_channels);
  return options;
}

torch::Tensor forward_stages(std::vector<torch::nn::Sequential>& stages, torch::Tensor x,
                             ActivationTrace* trace) {
  for (size_t i = 0; i < stages.size(); ++i) {
    int64_t j = 0;
    for (auto& block : *stages[i]) {
      x = block.forward(x);
      if (trace) trace->record("layer" + std::to_string(i + 1) + "." + std::to_string(j), x);
      ++j;
    }
  }
  return x;
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
