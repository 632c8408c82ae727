// GCN baseline (Kipf & Welling 2017): relu(Â X W) layers, quantizable.
#include <pdeq/models/gcn.h>

#include <pdeq/nn/dropout.h>

#include <torch/nn/init.h>
#include <torch/torch.h>

namespace pdeq::models {
namespace nnf = nn::functional;

GcnImpl::GcnImpl(GcnOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.in_features() >= 1, "in_features must be positive, but got ", options.in_features());
  TORCH_CHECK(options.num_classes() >= 2, "num_classes must be at least 2, but got ", options.num_classes());
  TORCH_CHECK(options.hidden() >= 1, "hidden must be positive, but got ", options.hidden());
  TORCH_CHECK(options.layers() >= 1, "layers must be at least 1, but got ", options.layers());
  TORCH_CHECK(options.dropout() >= 0 && options.dropout() < 1, "dropout must be in [0, 1), but got ",
              options.dropout());
  torch::NoGradGuard no_grad;
  for (int64_t l = 0; l < options.layers(); ++l) {
    const int64_t in = l == 0 ? options.in_features() : options.hidden();
    const int64_t out = l + 1 == options.layers() ? options.num_classes() : options.hidden();
    auto w = register_parameter("weight" + std::to_string(l), torch::empty({in, out}));
    torch::nn::init::xavier_uniform_(w);
    weights.push_back(w);
    biases.push_back(register_parameter("bias" + std::to_string(l), torch::zeros({out})));
    weight_quants.push_back(
        register_module("weight_quant" + std::to_string(l), quant::FakeQuantize(options.weight_quant())));
    if (l + 1 < options.layers()) {
      act_quants.push_back(
          register_module("act_quant" + std::to_string(l), quant::FakeQuantize(options.act_quant())));
    }
  }
}

torch::Tensor GcnImpl::forward_traced(const nn::NodeFeatures& features, const nn::GraphOperator& graph,
                                      ActivationTrace* trace) {
  const double p = options.dropout();
  torch::Tensor h;
  for (int64_t l = 0; l < options.layers(); ++l) {
    const auto w = weight_quants[static_cast<size_t>(l)](weights[static_cast<size_t>(l)]);
    const auto xw = l == 0 ? features.dropout(p, is_training()).matmul(w)
                           : torch::mm(nnf::dropout(h, p, is_training()), w);
    h = graph.propagate(xw) + biases[static_cast<size_t>(l)];
    if (l + 1 < options.layers()) h = act_quants[static_cast<size_t>(l)](torch::relu(h));
    if (trace != nullptr) trace->record("layer" + std::to_string(l), h);
  }
  return h;
}

GraphModel gcn(const GraphModelOptions& o) {
  return std::make_shared<GcnImpl>(GcnOptions(o.in_features, o.num_classes)
                                       .hidden(o.channels)
                                       .layers(o.layers)
                                       .dropout(o.dropout)
                                       .weight_quant(o.weight_quant)
                                       .act_quant(o.act_quant));
}

}  // namespace pdeq::models
