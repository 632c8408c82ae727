// Optimiser construction from the train config.
#pragma once

#include <pdeq/config/config.h>

#include <torch/nn/module.h>
#include <torch/optim/sgd.h>

#include <memory>

namespace pdeq::train {

/// SGD with momentum (optionally Nesterov). With decay_scales_norms_biases = false, the 0/1-dimensional
/// parameters (quantizer scales alpha, BatchNorm affine parameters, biases) form a second group without
/// decay.
std::unique_ptr<torch::optim::SGD> make_optimizer(torch::nn::Module& model,
                                                  const config::TrainConfig& config);

}  // namespace pdeq::train
