// The interface every image classifier of pdeq implements, so trainers and analyses need no per-model code.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

namespace pdeq::models {

/// Per-block outputs recorded during one forward pass (analysis of quantization error by depth).
struct ActivationTrace {
  std::vector<std::string> names;  ///< e.g. "stem", "layer1.0", ...
  std::vector<torch::Tensor> activations;
  void record(std::string name, const torch::Tensor& activation) {
    names.push_back(std::move(name));
    activations.push_back(activation);
  }
};

/// Images [N, C, H, W] (float, normalised) -> logits [N, num_classes].
class ClassifierImpl : public torch::nn::Module {
 public:
  torch::Tensor forward(const torch::Tensor& x) { return forward_traced(x, nullptr); }
  /// Forward that also records every block's output into `trace` when it is not null.
  virtual torch::Tensor forward_traced(const torch::Tensor& x, ActivationTrace* trace) = 0;
};

using Classifier = std::shared_ptr<ClassifierImpl>;

}  // namespace pdeq::models
