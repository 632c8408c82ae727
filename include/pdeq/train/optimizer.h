// Optimiser construction from the train config: the one factory for every task.
#pragma once

#include <pdeq/config/config.h>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <memory>

namespace pdeq::train {

/// SGD (momentum, optionally Nesterov), Adam or AdamW (train.optimizer), with parameter groups, in this
/// order of precedence:
///   1. train.scale_group.enabled: every quantizer clipping scale (FakeQuantize alpha) — own lr and decay;
///   2. train.layer_group.enabled: parameters whose qualified name starts with layer_group.prefix;
///   3. the rest at train.lr / train.weight_decay; with decay_scales_norms_biases = false, their 0/1-dim
///      parameters (scales, BatchNorm affine, biases) form a group without decay.
/// A group lr of 0 means train.lr. Empty groups are left out. Adam's weight decay is the L2 term added to the
/// gradient (torch.optim.Adam), AdamW's the decoupled one.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& model,
                                                        const config::TrainConfig& config);

}  // namespace pdeq::train
