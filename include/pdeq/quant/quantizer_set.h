// The one place that owns "all quantizers of a model": bit schedule, eval --abits and analyses use it.
#pragma once

#include <pdeq/quant/fake_quantize.h>

#include <string>
#include <utility>
#include <vector>

namespace pdeq::quant {

/// Collects every FakeQuantize below a module (by qualified name, in registration order).
///
/// Example:
///   QuantizerSet quantizers(*model);
///   quantizers.set_weight_bits(4); quantizers.set_activation_bits(4);
class QuantizerSet {
 public:
  explicit QuantizerSet(torch::nn::Module& root);

  void set_weight_bits(int64_t bits);
  void set_activation_bits(int64_t bits);

  /// (qualified name, quantizer) pairs.
  const std::vector<std::pair<std::string, FakeQuantize>>& all() const { return quantizers_; }
  std::vector<std::pair<std::string, FakeQuantize>> weights() const;
  std::vector<std::pair<std::string, FakeQuantize>> activations() const;
  size_t size() const { return quantizers_.size(); }

  /// Current clipping scales (mean over channels for per-channel quantizers), by name.
  std::vector<std::pair<std::string, double>> scales() const;
  /// Parameters of all quantizers (the alphas), e.g. to exclude them from weight decay.
  std::vector<torch::Tensor> scale_parameters() const;

 private:
  std::vector<std::pair<std::string, FakeQuantize>> quantizers_;
};

}  // namespace pdeq::quant
