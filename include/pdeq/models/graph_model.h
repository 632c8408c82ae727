// The interface of pdeq's graph (node classification) models and the options their factories take.
#pragma once

#include <pdeq/models/classifier.h>
#include <pdeq/nn/graph_ops.h>
#include <pdeq/nn/node_features.h>
#include <pdeq/quant/fake_quantize.h>

#include <torch/nn/module.h>
#include <torch/types.h>

#include <memory>

namespace pdeq::models {

/// The edge activation s of x <- x - h G^T K^T s(K G x). Both are monotone with s(0) = 0, so the symmetric
/// PDE-GCN layer stays a diffusion (negative semi-definite step) either way.
enum class EdgeActivation { kTanh, kReLU };

/// Initialisation of the opening and closing weights.
enum class GraphInit {
  kLinear,  ///< torch::nn::Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (weights and biases)
  kGlorot,  ///< U(-a, a), a = sqrt(6 / (fan_in + fan_out)) (the authors' reset_parameters); biases 0
};

/// Node features [N, F] (dense or sparse) and a graph -> logits [N, num_classes].
class GraphModelImpl : public torch::nn::Module {
 public:
  torch::Tensor forward(const nn::NodeFeatures& features, const nn::GraphOperator& graph) {
    return forward_traced(features, graph, nullptr);
  }
  /// Forward that also records every layer's output ("layer0", "layer1", ...) into `trace` when not null.
  virtual torch::Tensor forward_traced(const nn::NodeFeatures& features, const nn::GraphOperator& graph,
                                       ActivationTrace* trace) = 0;
};
using GraphModel = std::shared_ptr<GraphModelImpl>;

/// What every graph model factory takes (filled from the config by train/from_config.cpp; see registry.h).
struct GraphModelOptions {
  int64_t in_features = 0;
  int64_t num_classes = 0;
  int64_t channels = 64;       ///< PDE-GCN width / GCN hidden size
  int64_t layers = 16;         ///< PDE-GCN layers / GCN graph convolutions
  double step_size = 1.0;      ///< h of the PDE-GCN layers
  double dropout = 0.6;        ///< inside the network
  double input_dropout = 0.6;  ///< on the input features
  // PDE-GCN only (PdeGcnOptions): opening/closing biases and initialisation, the edge activation, dropout
  // placement and where the activation quantizers sit.
  bool bias = true;
  GraphInit init = GraphInit::kLinear;
  EdgeActivation activation = EdgeActivation::kTanh;
  bool dropout_on_edges = false;
  bool quantize_input = true;
  bool quantize_gradient = false;
  bool quantize_edges = true;
  quant::FakeQuantizeOptions weight_quant{quant::QuantTarget::kWeight};
  quant::FakeQuantizeOptions act_quant{quant::QuantTarget::kActivation};
};

}  // namespace pdeq::models
