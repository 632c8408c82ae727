#include <pdeq/deploy/compare.h>

#include <pdeq/quant/quantizer_set.h>

#include <algorithm>

namespace pdeq::deploy {

ModelComparison::ModelComparison(models::ClassifierImpl& reference) : reference_(reference) {
  for (auto& [name, quantizer] : quant::QuantizerSet(reference_).activations()) {
    quantizer->observer = [this, name = name](const torch::Tensor&, const torch::Tensor& y) {
      compare_layer(name, y);
    };
    observed_.push_back(name);
  }
}

ModelComparison::~ModelComparison() {
  for (auto& [name, quantizer] : quant::QuantizerSet(reference_).activations()) quantizer->observer = nullptr;
}

torch::Tensor ModelComparison::add_batch(const IntegerModel& model, const torch::Tensor& images,
                                         const torch::Tensor& labels) {
  torch::NoGradGuard no_grad;
  integer_codes_.clear();
  const auto logits = model.forward(images, [this](const IntOp& op, const torch::Tensor& y) {
    if (y.is_quantized()) integer_codes_[op.name] = y;
  });
  const bool was_training = reference_.is_training();
  reference_.eval();
  const auto reference_logits = reference_.forward(images);  // its quantizers call compare_layer
  reference_.train(was_training);
  integer_codes_.clear();

  const auto predicted = logits.argmax(1), reference_predicted = reference_logits.argmax(1);
  samples_ += images.size(0);
  agree_ += predicted.eq(reference_predicted).sum().item<double>();
  max_logit_difference_ =
      std::max(max_logit_difference_, (logits - reference_logits).abs().max().item<double>());
  if (labels.defined()) {
    correct_ += predicted.eq(labels).sum().item<double>();
    reference_correct_ += reference_predicted.eq(labels).sum().item<double>();
  } else {
    labelled_ = false;
  }
  return logits;
}

void ModelComparison::compare_layer(const std::string& name, const torch::Tensor& reference) {
  const auto it = integer_codes_.find(name);
  if (it == integer_codes_.end()) return;
  const auto& q = it->second;
  const auto steps = (q.dequantize() - reference).abs() / q.q_scale();
  auto& diff = layers_[name];
  diff.max_steps = std::max(diff.max_steps, steps.max().item<double>());
  diff.mismatched += steps.gt(0.5).sum().item<double>();
  diff.total += static_cast<double>(steps.numel());
  integer_codes_.erase(it);  // each quantizer runs once per forward
}

nlohmann::json ModelComparison::report(const IntGraph& graph) const {
  const double n = static_cast<double>(std::max<int64_t>(samples_, 1));
  nlohmann::json result = {
      {"samples", samples_}, {"agreement", agreement()}, {"max_logit_difference", max_logit_difference_}};
  if (labelled_) {
    result["accuracy"] = correct_ / n;
    result["fake_quant_accuracy"] = reference_correct_ / n;
    result["accuracy_difference"] = (correct_ - reference_correct_) / n;
  }
  nlohmann::json layers = nlohmann::json::array();
  double worst = 0.0;
  for (const auto& op : graph.ops) {
    const auto it = layers_.find(op.name);
    if (it == layers_.end()) continue;
    worst = std::max(worst, it->second.max_steps);
    layers.push_back({{"name", op.name},
                      {"max_step_difference", it->second.max_steps},
                      {"mismatched_fraction", it->second.mismatched / std::max(it->second.total, 1.0)}});
  }
  result["layers"] = layers;
  result["max_step_difference"] = worst;
  return result;
}

}  // namespace pdeq::deploy
