// QuantizerSet: every FakeQuantize below a module, addressed as one.
#include <pdeq/quant/quantizer_set.h>

namespace pdeq::quant {

QuantizerSet::QuantizerSet(torch::nn::Module& root) {
  // named_modules() lists the root itself first (under the empty name), then descendants depth-first in
  // registration order, which is the order a model's forward normally uses them.
  for (const auto& item : root.named_modules()) {
    if (auto impl = std::dynamic_pointer_cast<FakeQuantizeImpl>(item.value())) {
      quantizers_.emplace_back(item.key(), FakeQuantize(impl));
    }
  }
}

void QuantizerSet::set_weight_bits(int64_t bits) {
  for (auto& [name, quantizer] : quantizers_) {
    if (quantizer->is_weight()) {
      quantizer->set_bits(bits);
    }
  }
}

void QuantizerSet::set_activation_bits(int64_t bits) {
  for (auto& [name, quantizer] : quantizers_) {
    if (!quantizer->is_weight()) {
      quantizer->set_bits(bits);
    }
  }
}

std::vector<std::pair<std::string, FakeQuantize>> QuantizerSet::weights() const {
  std::vector<std::pair<std::string, FakeQuantize>> out;
  for (const auto& entry : quantizers_) {
    if (entry.second->is_weight()) {
      out.push_back(entry);
    }
  }
  return out;
}

std::vector<std::pair<std::string, FakeQuantize>> QuantizerSet::activations() const {
  std::vector<std::pair<std::string, FakeQuantize>> out;
  for (const auto& entry : quantizers_) {
    if (!entry.second->is_weight()) {
      out.push_back(entry);
    }
  }
  return out;
}

std::vector<std::pair<std::string, double>> QuantizerSet::scales() const {
  std::vector<std::pair<std::string, double>> out;
  out.reserve(quantizers_.size());
  for (const auto& [name, quantizer] : quantizers_) {
    out.emplace_back(name, quantizer->alpha.detach().mean().item<double>());
  }
  return out;
}

std::vector<torch::Tensor> QuantizerSet::scale_parameters() const {
  std::vector<torch::Tensor> out;
  out.reserve(quantizers_.size());
  for (const auto& entry : quantizers_) {
    out.push_back(entry.second->alpha);
  }
  return out;
}

}  // namespace pdeq::quant
