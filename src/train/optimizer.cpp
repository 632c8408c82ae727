#include <pdeq/train/optimizer.h>

namespace pdeq::train {

std::unique_ptr<torch::optim::SGD> make_optimizer(torch::nn::Module& model,
                                                  const config::TrainConfig& config) {
  TORCH_CHECK_VALUE(config.optimizer == "sgd", "optimizer must be sgd, but got '", config.optimizer, "'");
  auto options = torch::optim::SGDOptions(config.lr)
                     .momentum(config.momentum)
                     .nesterov(config.nesterov)
                     .weight_decay(config.weight_decay);
  std::vector<torch::Tensor> decayed, undecayed;
  for (const auto& parameter : model.parameters()) {
    const bool exempt = !config.decay_scales_norms_biases && parameter.dim() <= 1;
    (exempt ? undecayed : decayed).push_back(parameter);
  }
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decayed, std::make_unique<torch::optim::SGDOptions>(options));
  if (!undecayed.empty()) {
    auto no_decay = options;
    no_decay.weight_decay(0.0);
    groups.emplace_back(undecayed, std::make_unique<torch::optim::SGDOptions>(no_decay));
  }
  return std::make_unique<torch::optim::SGD>(std::move(groups), options);
}

}  // namespace pdeq::train
