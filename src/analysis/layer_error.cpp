#include <pdeq/analysis/layer_error.h>

#include <cmath>
#include <stdexcept>

namespace pdeq::analysis {

void LayerErrorAccumulator::add(const models::ActivationTrace& trace,
                                const models::ActivationTrace& reference) {
  if (trace.names != reference.names || trace.activations.size() != trace.names.size() ||
      reference.activations.size() != reference.names.size()) {
    throw std::invalid_argument("the two traces must record the same layers, but got " +
                                std::to_string(trace.names.size()) + " and " +
                                std::to_string(reference.names.size()) + " layers with different names");
  }
  if (names_.empty()) {
    names_ = trace.names;
    squared_sum_.assign(names_.size(), 0.0);
    count_.assign(names_.size(), 0.0);
  } else if (names_ != trace.names) {
    throw std::invalid_argument("every batch must trace the same layers as the first one");
  }
  for (size_t l = 0; l < names_.size(); ++l) {
    const auto& a = trace.activations[l];
    const auto& r = reference.activations[l];
    if (!a.sizes().equals(r.sizes())) {
      throw std::invalid_argument("layer " + names_[l] + " has different shapes in the two passes");
    }
    squared_sum_[l] += (a.to(torch::kFloat64) - r.to(torch::kFloat64)).pow(2).sum().item<double>();
    count_[l] += static_cast<double>(a.numel());
  }
}

std::vector<double> LayerErrorAccumulator::rms() const {
  std::vector<double> out(names_.size(), 0.0);
  for (size_t l = 0; l < names_.size(); ++l) {
    out[l] = count_[l] > 0 ? std::sqrt(squared_sum_[l] / count_[l]) : 0.0;
  }
  return out;
}

double LayerErrorAccumulator::mean_over_differing_layers() const {
  double sum = 0.0;
  int64_t layers = 0;
  for (const double e : rms()) {
    if (e > 0.0) {
      sum += e;
      ++layers;
    }
  }
  return layers > 0 ? sum / static_cast<double>(layers) : 0.0;
}

}  // namespace pdeq::analysis
