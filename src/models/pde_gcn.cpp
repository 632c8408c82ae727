// Diffusive PDE-GCN: layers x <- x - h G^T K^T tanh(K G x) with fake-quantized activations.
#include <pdeq/models/pde_gcn.h>

#include <pdeq/nn/dropout.h>

#include <torch/nn/init.h>
#include <torch/torch.h>

#include <cmath>

namespace pdeq::models {
namespace nnf = nn::functional;

PdeGcnLayerImpl::PdeGcnLayerImpl(PdeGcnLayerOptions options_) : options(std::move(options_)) { reset(); }

void PdeGcnLayerImpl::reset() {
  TORCH_CHECK(options.channels() >= 1, "channels must be positive, but got ", options.channels());
  TORCH_CHECK(options.step_size() > 0, "step_size must be positive, but got ", options.step_size());
  TORCH_CHECK(options.dropout() >= 0 && options.dropout() < 1, "dropout must be in [0, 1), but got ",
              options.dropout());
  const int64_t c = options.channels();
  K = register_parameter("K", torch::empty({c, c}));
  K2 = options.symmetric() ? torch::Tensor() : register_parameter("K2", torch::empty({c, c}));
  if (options.quantize_input())
    x_quant = register_module("x_quant", quant::FakeQuantize(options.act_quant()));
  if (options.quantize_gradient())
    g_quant = register_module("g_quant", quant::FakeQuantize(options.act_quant()));
  if (options.quantize_edges())
    e_quant = register_module("e_quant", quant::FakeQuantize(options.act_quant()));
  k_quant = register_module("k_quant", quant::FakeQuantize(options.weight_quant()));
  if (!options.symmetric())
    k2_quant = register_module("k2_quant", quant::FakeQuantize(options.weight_quant()));
  reset_parameters();
}

void PdeGcnLayerImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  K.copy_(torch::eye(options.channels()));
  if (K2.defined()) K2.copy_(torch::eye(options.channels()));
}

void PdeGcnLayerImpl::pretty_print(std::ostream& stream) const {
  stream << "pdeq::models::PdeGcnLayer(" << options.channels() << ", step_size=" << options.step_size();
  if (!options.symmetric()) stream << ", symmetric=false";
  if (options.dropout() > 0) stream << ", dropout=" << options.dropout();
  if (options.dropout_on_edges()) stream << ", dropout_on_edges=true";
  if (options.activation() == EdgeActivation::kReLU) stream << ", activation=relu";
  if (!options.quantize_input()) stream << ", quantize_input=false";
  if (options.quantize_gradient()) stream << ", quantize_gradient=true";
  if (!options.quantize_edges()) stream << ", quantize_edges=false";
  stream << ")";
}

torch::Tensor PdeGcnLayerImpl::forward(const torch::Tensor& x_in, const nn::GraphOperator& graph) {
  const auto x = x_quant ? x_quant(x_in) : x_in;
  const auto k = k_quant(K);
  torch::Tensor pre;  // K G dropout(x) [E, C]
  if (options.dropout_on_edges() || g_quant) {
    // Dropout or a quantizer on G x itself: the gradient first, then the channel mixing on the E edges.
    const double node_p = options.dropout_on_edges() ? 0.0 : options.dropout();
    const double edge_p = options.dropout_on_edges() ? options.dropout() : 0.0;
    auto g = nnf::dropout(graph.grad(nnf::dropout(x, node_p, is_training())), edge_p, is_training());
    if (g_quant) g = g_quant(g);
    pre = torch::mm(g, k.t());
  } else {
    // K acts on channels and G on nodes, so K G z = G (z K^T) (rows are nodes/edges): the channel mixing runs
    // on the N nodes instead of the E edges.
    pre = graph.grad(torch::mm(nnf::dropout(x, options.dropout(), is_training()), k.t()));
  }
  auto e = options.activation() == EdgeActivation::kReLU ? torch::relu(pre) : torch::tanh(pre);
  if (e_quant) e = e_quant(e);
  // G^T (K^T e) = (G^T e) K. Symmetric: K^T closes the layer, (G^T e) K; non-symmetric: K2, (G^T e) K2^T.
  const auto d = graph.div(e);
  const auto closed = options.symmetric() ? torch::mm(d, k) : torch::mm(d, k2_quant(K2).t());
  return x - options.step_size() * closed;
}

PdeGcnImpl::PdeGcnImpl(PdeGcnOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.in_features() >= 1, "in_features must be positive, but got ", options.in_features());
  TORCH_CHECK(options.num_classes() >= 2, "num_classes must be at least 2, but got ", options.num_classes());
  TORCH_CHECK(options.layers() >= 0, "layers must be non-negative, but got ", options.layers());
  TORCH_CHECK(options.input_dropout() >= 0 && options.input_dropout() < 1,
              "input_dropout must be in [0, 1), but got ", options.input_dropout());
  const int64_t c = options.channels();
  open_weight = register_parameter("open_weight", torch::empty({c, options.in_features()}));
  if (options.bias()) open_bias = register_parameter("open_bias", torch::empty({c}));
  close_weight = register_parameter("close_weight", torch::empty({options.num_classes(), c}));
  if (options.bias()) close_bias = register_parameter("close_bias", torch::empty({options.num_classes()}));
  // kLinear: torch::nn::Linear's U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias; kGlorot: U(-a, a),
  // a = sqrt(6 / (fan_in + fan_out)), and zero biases. Weight then bias, opening then closing (the draw
  // order).
  torch::NoGradGuard no_grad;
  const auto init = [&](torch::Tensor& weight, torch::Tensor& bias) {
    const auto fan_in = static_cast<double>(weight.size(1));
    const auto fan_out = static_cast<double>(weight.size(0));
    const bool glorot = options.init() == GraphInit::kGlorot;
    const double bound = glorot ? std::sqrt(6.0 / (fan_in + fan_out)) : 1.0 / std::sqrt(fan_in);
    weight.uniform_(-bound, bound);
    if (!bias.defined()) return;
    if (glorot) {
      bias.zero_();
    } else {
      bias.uniform_(-bound, bound);
    }
  };
  init(open_weight, open_bias);
  init(close_weight, close_bias);
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.layers(); ++i) {
    layers->push_back(PdeGcnLayer(PdeGcnLayerOptions(c)
                                      .step_size(options.step_size())
                                      .symmetric(options.symmetric())
                                      .dropout(options.dropout())
                                      .dropout_on_edges(options.dropout_on_edges())
                                      .activation(options.activation())
                                      .weight_quant(options.weight_quant())
                                      .act_quant(options.act_quant())
                                      .quantize_input(options.quantize_input())
                                      .quantize_gradient(options.quantize_gradient())
                                      .quantize_edges(options.quantize_edges())));
  }
}

torch::Tensor PdeGcnImpl::forward_traced(const nn::NodeFeatures& features, const nn::GraphOperator& graph,
                                         ActivationTrace* trace) {
  const auto drop = [&](const torch::Tensor& t) { return nnf::dropout(t, options.dropout(), is_training()); };
  const auto input = features.dropout(options.input_dropout(), is_training());
  auto x = input.matmul(open_weight.t());
  x = torch::relu(options.bias() ? x + open_bias : x);
  x = drop(x);
  for (size_t i = 0; i < layers->size(); ++i) {
    x = layers->ptr<PdeGcnLayerImpl>(i)->forward(x, graph);
    if (trace != nullptr) trace->record("layer" + std::to_string(i), x);
  }
  return options.bias() ? torch::addmm(close_bias, drop(x), close_weight.t())
                        : torch::mm(drop(x), close_weight.t());
}

namespace {

GraphModel make_pde_gcn(const GraphModelOptions& o, bool symmetric) {
  return std::make_shared<PdeGcnImpl>(PdeGcnOptions(o.in_features, o.num_classes)
                                          .channels(o.channels)
                                          .layers(o.layers)
                                          .step_size(o.step_size)
                                          .symmetric(symmetric)
                                          .dropout(o.dropout)
                                          .input_dropout(o.input_dropout)
                                          .bias(o.bias)
                                          .init(o.init)
                                          .activation(o.activation)
                                          .dropout_on_edges(o.dropout_on_edges)
                                          .weight_quant(o.weight_quant)
                                          .act_quant(o.act_quant)
                                          .quantize_input(o.quantize_input)
                                          .quantize_gradient(o.quantize_gradient)
                                          .quantize_edges(o.quantize_edges));
}

}  // namespace

GraphModel pde_gcn(const GraphModelOptions& options) { return make_pde_gcn(options, /*symmetric=*/true); }

GraphModel pde_gcn_nonsym(const GraphModelOptions& options) {
  return make_pde_gcn(options, /*symmetric=*/false);
}

}  // namespace pdeq::models
