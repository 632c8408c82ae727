#include <pdeq/train/optimizer.h>

#include <pdeq/quant/quantizer_set.h>

#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>
#include <torch/optim/sgd.h>

#include <unordered_set>

namespace pdeq::train {
namespace {

/// The optimiser's options with a given lr and weight decay.
std::unique_ptr<torch::optim::OptimizerOptions> options_for(const OptimizerOptions& c, double lr,
                                                            double weight_decay) {
  if (c.kind == OptimizerKind::kSgd) {
    return std::make_unique<torch::optim::SGDOptions>(
        torch::optim::SGDOptions(lr).momentum(c.momentum).nesterov(c.nesterov).weight_decay(weight_decay));
  }
  if (c.kind == OptimizerKind::kAdam) {
    return std::make_unique<torch::optim::AdamOptions>(
        torch::optim::AdamOptions(lr).betas({c.beta1, c.beta2}).weight_decay(weight_decay));
  }
  return std::make_unique<torch::optim::AdamWOptions>(
      torch::optim::AdamWOptions(lr).betas({c.beta1, c.beta2}).weight_decay(weight_decay));
}

}  // namespace

std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& model,
                                                        const OptimizerOptions& options) {
  std::unordered_set<const void*> scales;
  for (const auto& alpha : quant::QuantizerSet(model).scale_parameters()) {
    scales.insert(alpha.unsafeGetTensorImpl());
  }
  std::vector<torch::Tensor> scale_params, layer_params, decayed, undecayed;
  for (const auto& item : model.named_parameters()) {
    const auto& p = item.value();
    if (options.scale_group.enabled && scales.count(p.unsafeGetTensorImpl()) > 0) {
      scale_params.push_back(p);
    } else if (options.layer_group.enabled && item.key().rfind(options.layer_group.prefix, 0) == 0) {
      layer_params.push_back(p);
    } else if (!options.decay_scales_norms_biases && p.dim() <= 1) {
      undecayed.push_back(p);
    } else {
      decayed.push_back(p);
    }
  }
  auto lr_of = [&](const ParamGroupOptions& g) { return g.lr > 0 ? g.lr : options.lr; };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  auto add = [&](std::vector<torch::Tensor>& params, double lr, double weight_decay) {
    if (!params.empty()) groups.emplace_back(params, options_for(options, lr, weight_decay));
  };
  add(decayed, options.lr, options.weight_decay);
  add(undecayed, options.lr, 0.0);
  add(layer_params, lr_of(options.layer_group), options.layer_group.weight_decay);
  add(scale_params, lr_of(options.scale_group), options.scale_group.weight_decay);
  TORCH_CHECK_VALUE(!groups.empty(), "the model has no parameters to optimise");
  // Each group's options as built above. LibTorch 2.x's constructor merges a group's options with the
  // defaults, taking the default wherever the group's value equals the options class's own default (a
  // group's weight decay 0 would become the run's decay, an Adam group's lr 1e-3 the run's lr); 1.13 keeps
  // them as given. Setting them again after construction gives both versions the groups as configured.
  std::vector<std::unique_ptr<torch::optim::OptimizerOptions>> group_options;
  for (const auto& group : groups) group_options.push_back(group.options().clone());
  const auto defaults = options_for(options, options.lr, options.weight_decay);
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (options.kind == OptimizerKind::kSgd) {
    optimizer = std::make_unique<torch::optim::SGD>(std::move(groups),
                                                    static_cast<const torch::optim::SGDOptions&>(*defaults));
  } else if (options.kind == OptimizerKind::kAdam) {
    optimizer = std::make_unique<torch::optim::Adam>(
        std::move(groups), static_cast<const torch::optim::AdamOptions&>(*defaults));
  } else {
    optimizer = std::make_unique<torch::optim::AdamW>(
        std::move(groups), static_cast<const torch::optim::AdamWOptions&>(*defaults));
  }
  for (size_t i = 0; i < group_options.size(); ++i) {
    optimizer->param_groups()[i].set_options(std::move(group_options[i]));
  }
  return optimizer;
}

}  // namespace pdeq::train
