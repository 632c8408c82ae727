// Graph convolutional network (Kipf & Welling 2017), the float baseline, with optional fake quantization.
#pragma once

#include <pdeq/models/graph_model.h>

#include <torch/arg.h>

#include <vector>

namespace pdeq::models {

struct GcnOptions {
  GcnOptions(int64_t in_features, int64_t num_classes)
      : in_features_(in_features), num_classes_(num_classes) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, num_classes);
  TORCH_ARG(int64_t, hidden) = 16;
  /// Graph convolutions (2 in the paper).
  TORCH_ARG(int64_t, layers) = 2;
  /// Before every graph convolution (the input features included), as Kipf's code.
  TORCH_ARG(double, dropout) = 0.5;
  TORCH_ARG(quant::FakeQuantizeOptions, weight_quant) = quant::QuantTarget::kWeight;
  /// Quantizer of every hidden ReLU output (unsigned by default).
  TORCH_ARG(quant::FakeQuantizeOptions, act_quant) = quant::QuantTarget::kActivation;
};

/// H_{l+1} = relu(Â dropout(H_l) Q(W_l) + b_l), Â = D^-1/2 (A + I) D^-1/2, no ReLU on the last layer
/// (logits). Glorot-uniform weights, zero biases. Parameters "weight<l>", "bias<l>"; the trace records
/// "layer<l>".
///
/// Example:
///   Gcn gcn(GcnOptions(1433, 7));
///   auto logits = gcn->forward(cora.features, G);
class GcnImpl : public GraphModelImpl {
 public:
  explicit GcnImpl(GcnOptions options);
  torch::Tensor forward_traced(const nn::NodeFeatures& features, const nn::GraphOperator& graph,
                               ActivationTrace* trace) override;

  GcnOptions options;
  std::vector<torch::Tensor> weights, biases;
  std::vector<quant::FakeQuantize> weight_quants, act_quants;
};
TORCH_MODULE(Gcn);

/// The registry's "gcn": Gcn with hidden size GraphModelOptions::channels and its layers, dropout and
/// quantizers.
GraphModel gcn(const GraphModelOptions& options);

}  // namespace pdeq::models
