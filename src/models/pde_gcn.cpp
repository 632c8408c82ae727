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
  x_quant = register_module("x_quant", quant::FakeQuantize(options.act_quant()));
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
  stream << ")";
}

torch::Tensor PdeGcnLayerImpl::forward(const torch::Tensor& x_in, const nn::GraphOperator& graph) {
  const auto x = x_quant(x_in);
  const auto k = k_quant(K);
  const auto z = nnf::dropout(x, options.dropout(), is_training());
  // K acts on channels and G on nodes, so K G z = G (z K^T) (rows are nodes/edges): the channel mixing runs
  // on the N nodes instead of the E edges. Likewise G^T (K^T e) = (G^T e) K.
  auto e = torch::tanh(graph.grad(torch::mm(z, k.t())));
  e = e_quant(e);
  const auto d = graph.div(e);
  // Symmetric: K^T closes the layer, (G^T e) K; non-symmetric: K2, (G^T e) K2^T.
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
  open_bias = register_parameter("open_bias", torch::empty({c}));
  close_weight = register_parameter("close_weight", torch::empty({options.num_classes(), c}));
  close_bias = register_parameter("close_bias", torch::empty({options.num_classes()}));
  // torch::nn::Linear's initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias.
  torch::NoGradGuard no_grad;
  const double open_bound = 1.0 / std::sqrt(static_cast<double>(options.in_features()));
  const double close_bound = 1.0 / std::sqrt(static_cast<double>(c));
  open_weight.uniform_(-open_bound, open_bound);
  open_bias.uniform_(-open_bound, open_bound);
  close_weight.uniform_(-close_bound, close_bound);
  close_bias.uniform_(-close_bound, close_bound);
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < options.layers(); ++i) {
    layers->push_back(PdeGcnLayer(PdeGcnLayerOptions(c)
                                      .step_size(options.step_size())
                                      .symmetric(options.symmetric())
                                      .dropout(options.dropout())
                                      .weight_quant(options.weight_quant())
                                      .act_quant(options.act_quant())));
  }
}

torch::Tensor PdeGcnImpl::forward_traced(const nn::NodeFeatures& features, const nn::GraphOperator& graph,
                                         ActivationTrace* trace) {
  const auto drop = [&](const torch::Tensor& t) { return nnf::dropout(t, options.dropout(), is_training()); };
  const auto input = features.dropout(options.input_dropout(), is_training());
  auto x = torch::relu(input.matmul(open_weight.t()) + open_bias);
  x = drop(x);
  for (size_t i = 0; i < layers->size(); ++i) {
    x = layers->ptr<PdeGcnLayerImpl>(i)->forward(x, graph);
    if (trace != nullptr) trace->record("layer" + std::to_string(i), x);
  }
  return torch::addmm(close_bias, drop(x), close_weight.t());
}

}  // namespace pdeq::models
