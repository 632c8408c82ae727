// The optimiser of every task: SGD, Adam or AdamW with parameter groups.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <memory>
#include <string>

namespace pdeq::train {

enum class OptimizerKind { kSgd, kAdam, kAdamW };

/// A group of parameters with its own learning rate and weight decay.
struct ParamGroupOptions {
  bool enabled = false;
  std::string prefix;  ///< layer groups: parameters whose qualified name starts with this
  double lr = 0.0;     ///< 0: the optimiser's lr
  double weight_decay = 0.0;
};

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kSgd;
  double lr = 0.1;
  double momentum = 0.9;  ///< SGD
  bool nesterov = false;  ///< SGD
  double weight_decay = 1e-4;
  bool decay_scales_norms_biases = true;  ///< false: no weight decay on 0/1-dim parameters
  double beta1 = 0.9;                     ///< Adam, AdamW
  double beta2 = 0.999;
  ParamGroupOptions scale_group;  ///< every quantizer clipping scale (no prefix)
  ParamGroupOptions layer_group;
};

/// SGD (momentum, optionally Nesterov), Adam or AdamW, with parameter groups, in this order of precedence:
///   1. scale_group.enabled: every quantizer clipping scale (FakeQuantize alpha) — own lr and decay;
///   2. layer_group.enabled: parameters whose qualified name starts with layer_group.prefix;
///   3. the rest at lr / weight_decay; with decay_scales_norms_biases = false, their 0/1-dim
///      parameters (scales, BatchNorm affine, biases) form a group without decay.
/// A group lr of 0 means `lr`. Empty groups are left out. Adam's weight decay is the L2 term added to the
/// gradient (torch.optim.Adam), AdamW's the decoupled one.
std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Module& model,
                                                        const OptimizerOptions& options);

}  // namespace pdeq::train
