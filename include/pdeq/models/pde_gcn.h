// Diffusive PDE-GCN (Eliasof, Haber, Treister 2021) with quantized activations, as studied by Ben-Yair et
// al. 2022 ("Quantized convolutional neural networks through the lens of PDEs", graph experiments).
#pragma once

#include <pdeq/models/graph_model.h>

#include <torch/arg.h>
#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/modulelist.h>

namespace pdeq::models {

/// Options of one diffusive layer.
struct PdeGcnLayerOptions {
  explicit PdeGcnLayerOptions(int64_t channels) : channels_(channels) {}
  TORCH_ARG(int64_t, channels);
  /// Step size h of x <- x - h G^T K^T s(K G x).
  TORCH_ARG(double, step_size) = 1.0;
  /// true: K^T closes the layer (symmetric, forward-stable); false: a second matrix K2 (not stable).
  TORCH_ARG(bool, symmetric) = true;
  /// Dropout inside the layer (training only): on x before the gradient, or on G x (see dropout_on_edges).
  TORCH_ARG(double, dropout) = 0.0;
  /// false: dropout on the nodes x (a dropped entry of node u zeroes it on all of u's edges); true: on the
  /// edge gradient G x, each edge independently, as the authors' code (dropout of gradX).
  TORCH_ARG(bool, dropout_on_edges) = false;
  TORCH_ARG(EdgeActivation, activation) = EdgeActivation::kTanh;
  /// Quantizer of K (and K2); bits >= 32 keep them in full precision.
  TORCH_ARG(quant::FakeQuantizeOptions, weight_quant) = quant::QuantTarget::kWeight;
  /// Activation quantizers, each with its own learned a, at up to three places (a disabled one is not
  /// registered): x, the layer input, which also carries the residual x - h(...) to the next layer;
  /// G x, the edge gradient before K (where one version of the authors' code quantizes); e = s(K G x).
  TORCH_ARG(quant::FakeQuantizeOptions, act_quant) = quant::QuantTarget::kActivation;
  TORCH_ARG(bool, quantize_input) = true;
  TORCH_ARG(bool, quantize_gradient) = false;
  TORCH_ARG(bool, quantize_edges) = true;
};

/// One diffusive layer on node features x [N, C] (defaults):
///   x <- Qa(x); e = tanh(K G dropout(x)) [E, C]; e <- Qa(e); x <- x - h G^T K^T e   (symmetric)
/// or x - h G^T K2 e (non-symmetric). K and K2 are C x C, identity-initialised. With s monotone, the
/// symmetric layer is -G^T K^T s(K G x), a negative semi-definite (diffusive) step: stable for small h.
/// Options move the dropout to G x, quantize G x, leave x or e unquantized, and make s a ReLU.
class PdeGcnLayerImpl : public torch::nn::Cloneable<PdeGcnLayerImpl> {
 public:
  explicit PdeGcnLayerImpl(PdeGcnLayerOptions options);
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  torch::Tensor forward(const torch::Tensor& x, const nn::GraphOperator& graph);

  PdeGcnLayerOptions options;
  torch::Tensor K, K2;  ///< K2 undefined when symmetric
  /// x_quant, g_quant, e_quant: null when their quantize_* option is off.
  quant::FakeQuantize x_quant{nullptr}, g_quant{nullptr}, e_quant{nullptr}, k_quant{nullptr},
      k2_quant{nullptr};
};
TORCH_MODULE(PdeGcnLayer);

/// Options of the whole network.
struct PdeGcnOptions {
  PdeGcnOptions(int64_t in_features, int64_t num_classes)
      : in_features_(in_features), num_classes_(num_classes) {}
  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, num_classes);
  TORCH_ARG(int64_t, channels) = 64;
  TORCH_ARG(int64_t, layers) = 16;
  TORCH_ARG(double, step_size) = 1.0;
  TORCH_ARG(bool, symmetric) = true;
  TORCH_ARG(double, dropout) = 0.6;        ///< after the opening, in every layer, before the closing
  TORCH_ARG(double, input_dropout) = 0.6;  ///< on the input features
  /// Biases of the opening and closing linear maps (the authors' 1x1 convolutions have none).
  TORCH_ARG(bool, bias) = true;
  TORCH_ARG(GraphInit, init) = GraphInit::kLinear;
  TORCH_ARG(bool, dropout_on_edges) = false;  ///< see PdeGcnLayerOptions
  TORCH_ARG(EdgeActivation, activation) = EdgeActivation::kTanh;
  TORCH_ARG(quant::FakeQuantizeOptions, weight_quant) = quant::QuantTarget::kWeight;
  TORCH_ARG(quant::FakeQuantizeOptions, act_quant) = quant::QuantTarget::kActivation;
  TORCH_ARG(bool, quantize_input) = true;
  TORCH_ARG(bool, quantize_gradient) = false;
  TORCH_ARG(bool, quantize_edges) = true;
};

/// dropout -> opening linear (F -> C) + ReLU -> dropout -> L PdeGcnLayers -> dropout -> closing linear
/// (C -> classes). Parameters: "open_weight", "open_bias", "layers.<i>.K" (".K2"), quantizer scales
/// "layers.<i>.*_quant.alpha", "close_weight", "close_bias" (the biases undefined and unregistered when
/// bias is false). The trace records "layer<i>" (each layer's output).
///
/// Example:
///   PdeGcn net(PdeGcnOptions(1433, 7).layers(16).step_size(0.5));
///   auto logits = net->forward(cora.features, G);   // [2708, 7]
class PdeGcnImpl : public GraphModelImpl {
 public:
  explicit PdeGcnImpl(PdeGcnOptions options);
  torch::Tensor forward_traced(const nn::NodeFeatures& features, const nn::GraphOperator& graph,
                               ActivationTrace* trace) override;

  PdeGcnOptions options;
  torch::Tensor open_weight, open_bias, close_weight, close_bias;
  torch::nn::ModuleList layers;
};
TORCH_MODULE(PdeGcn);

/// The registry's "pde_gcn": PdeGcn with symmetric layers, the GraphModelOptions applied.
GraphModel pde_gcn(const GraphModelOptions& options);
/// The registry's "pde_gcn_nonsym": the same with a separate closing matrix per layer (not symmetric).
GraphModel pde_gcn_nonsym(const GraphModelOptions& options);

}  // namespace pdeq::models
