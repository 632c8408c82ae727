// Agreement between an integer model and the fake-quant network it was exported from.
#pragma once

#include <pdeq/deploy/int_model.h>
#include <pdeq/models/classifier.h>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace pdeq::deploy {

/// Runs the integer model and the fake-quant `reference` (eval mode) on the same batches and accumulates:
/// accuracies, the fraction of equal predictions, the largest logit difference, and per activation layer
/// (matched by the fake quantizer's name, see IntOp::name) the largest difference in quantization steps and
/// the fraction of codes that differ. Observes the reference's activation quantizers while it lives.
///
/// Example:
///   pdeq::deploy::ModelComparison compare(*reference);
///   compare.add_batch(model, images, labels);
///   compare.report(model.graph())["agreement"];
class ModelComparison {
 public:
  explicit ModelComparison(models::ClassifierImpl& reference);
  ~ModelComparison();
  ModelComparison(const ModelComparison&) = delete;
  ModelComparison& operator=(const ModelComparison&) = delete;

  /// Both models on `images`; `labels` may be undefined (no accuracies then). Returns the integer logits.
  torch::Tensor add_batch(const IntegerModel& model, const torch::Tensor& images,
                          const torch::Tensor& labels);

  /// samples, accuracy, fake_quant_accuracy, accuracy_difference, agreement, max_logit_difference, layers
  /// [{name, max_step_difference, mismatched_fraction}] in graph order, max_step_difference.
  nlohmann::json report(const IntGraph& graph) const;
  double agreement() const { return samples_ > 0 ? agree_ / static_cast<double>(samples_) : 0.0; }

 private:
  struct LayerDiff {
    double max_steps = 0.0;
    double mismatched = 0.0;
    double total = 0.0;
  };
  models::ClassifierImpl& reference_;
  std::vector<std::string> observed_;
  /// The integer model's codes of the batch being compared, per quantizer name; each fake quantizer's output
  /// is compared with them as it is computed (not kept: a batch's float activations can be gigabytes).
  std::map<std::string, torch::Tensor> integer_codes_;
  std::map<std::string, LayerDiff> layers_;
  void compare_layer(const std::string& name, const torch::Tensor& reference);
  double correct_ = 0.0, reference_correct_ = 0.0, agree_ = 0.0, max_logit_difference_ = 0.0;
  int64_t samples_ = 0;
  bool labelled_ = true;
};

}  // namespace pdeq::deploy
