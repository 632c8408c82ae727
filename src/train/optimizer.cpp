#include <pdeq/train/optimizer.h>

#include <pdeq/quant/quantizer_set.h>

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <unordered_set>

namespace pdeq::train {
namespace {

/// The optimiser's options with a given lr and weight decay.
std::unique_ptr<torch::optim::OptimizerOptions> options_for(const config::TrainConfig& c, double lr,
                                                            double weight_decay) {
  if (c.optimizer == "sgd") {
    return std::make_unique<torch::optim::SGDOptions>(
        torch::optim::SGDOptions(lr).momentum(c.momentum).nesterov(c.nesterov).weight_decay(weight_decay));
  }
  if (c.optimizer == "adam") {
    return std::make_unique<torch::optim::AdamOptions>(
        torch::optim::AdamOptions(lr).betas({c.beta1, c.beta2}).weight_decay(weight_decay));
  }
  TORCH_CHECK_VALUE(c.optimizer == "adamw", "optimizer must be sgd, adam or adamw, but got '", c.optimizer,
                    "'");
  return std::make_unique<torch::optim::AdamWOptions>(
      torch::optim::AdamWOptions(lr).betas({c.beta1, c.beta2}).weight_decay(weight_decay));
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& model,
                                                        const config::TrainConfig& config) {
  std::unordered_set<const void*> scales;
  for (const auto& alpha : quant::QuantizerSet(model).scale_parameters()) {
    scales.insert(alpha.unsafeGetTensorImpl());
  }
  std::vector<torch::Tensor> scale_params, layer_params, decayed, undecayed;
  for (const auto& item : model.named_parameters()) {
    const auto& p = item.value();
    if (config.scale_group.enabled && scales.count(p.unsafeGetTensorImpl()) > 0) {
      scale_params.push_back(p);
    } else if (config.layer_group.enabled && item.key().rfind(config.layer_group.prefix, 0) == 0) {
      layer_params.push_back(p);
    } else if (!config.decay_scales_norms_biases && p.dim() <= 1) {
      undecayed.push_back(p);
    } else {
      decayed.push_back(p);
    }
  }
  auto lr_of = [&](const config::ParamGroupConfig& g) { return g.lr > 0 ? g.lr : config.lr; };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto add = [&](std::vector<torch::Tensor>& params, double lr, double weight_decay) {
    if (!params.empty()) groups.emplace_back(params, options_for(config, lr, weight_decay));
  };
  add(decayed, config.lr, config.weight_decay);
  add(undecayed, config.lr, 0.0);
  add(layer_params, lr_of(config.layer_group), config.layer_group.weight_decay);
  add(scale_params, lr_of(config.scale_group), config.scale_group.weight_decay);
  TORCH_CHECK_VALUE(!groups.empty(), "the model has no parameters to optimise");
  const auto defaults = options_for(config, config.lr, config.weight_decay);
  if (config.optimizer == "sgd") {
    return std::make_unique<torch::optim::SGD>(std::move(groups),
                                               static_cast<const torch::optim::SGDOptions&>(*defaults));
  }
  if (config.optimizer == "adam") {
    return std::make_unique<torch::optim::Adam>(std::move(groups),
                                                static_cast<const torch::optim::AdamOptions&>(*defaults));
  }
  return std::make_unique<torch::optim::AdamW>(std::move(groups),
                                               static_cast<const torch::optim::AdamWOptions&>(*defaults));
}

}  // namespace pdeq::train
